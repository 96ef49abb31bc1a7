// Starts the real proxy (assembleProxy, the same assembly as `npm start`) on 127.0.0.1:0 and captures its log lines.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { loadConfig } from '../../src/config.js'
import { assembleProxy } from '../../src/proxy.js'
import type { ProxyAssembly } from '../../src/proxy.js'

export interface RunningProxy {
  url: string
  server: ProxyAssembly
  /** Every log line written so far, raw. */
  logs: string[]
  close: () => Promise<void>
}

export async function startProxy (env: Record<string, string>): Promise<RunningProxy> {
  const logs: string[] = []
  const logStream = new Writable({
    write (chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'))
      done()
    }
  })
  // A data folder of its own, removed on close unless the test named one (the test then owns it).
  const dataDir = env.DATA_DIR === undefined ? mkdtempSync(join(tmpdir(), 'speke-proxy-test-')) : undefined
  const fullEnv = { LOG_LEVEL: 'info', ...(dataDir === undefined ? {} : { DATA_DIR: dataDir }), ...env }
  const config = loadConfig({ ...fullEnv, PORT: '0', HOST: '127.0.0.1' })
  const server = await assembleProxy(config, { env: fullEnv, logStream })
  const address = await server.app.listen({ port: 0, host: '127.0.0.1' })
  const close = async (): Promise<void> => {
    await server.close()
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true })
  }
  return { url: address, server, logs, close }
}
