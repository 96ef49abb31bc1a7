// Runs the built proxy (dist/cli.js) as a child process, as an operator would, and finds its address in its log.

import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { PROJECT_ROOT } from './fixtures.js'

export interface ChildProxy {
  child: ChildProcess
  url: string
  output: () => string
  exited: Promise<number | null>
}

let built = false

export function ensureBuilt (): void {
  if (built) return
  execFileSync(process.execPath, [join(PROJECT_ROOT, 'scripts', 'build-if-needed.mjs')], { cwd: PROJECT_ROOT, stdio: 'ignore' })
  built = true
}

export async function startChildProxy (env: Record<string, string>, args: string[] = ['serve']): Promise<ChildProxy> {
  ensureBuilt()
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'cli.js'), ...args], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let text = ''
  child.stdout?.on('data', (c: Buffer) => { text += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { text += c.toString() })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start:\n${text}`)), 15000)
    const look = (): void => {
      const m = /Server listening at (https?:\/\/127\.0\.0\.1:\d+)/.exec(text)
      if (m !== null) { clearTimeout(timer); resolve(m[1]) }
    }
    child.stdout?.on('data', look)
    child.on('exit', () => { clearTimeout(timer); reject(new Error(`proxy exited:\n${text}`)) })
  })
  return { child, url, output: () => text, exited }
}
