// Stable instance id: INSTANCE_ID, else one generated once into DATA_DIR/instance-id so a restart continues the same chain.

import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { join } from 'node:path'

const INSTANCE_ID_FILE = 'instance-id'

function readId (path: string): string | undefined {
  try {
    const id = readFileSync(path, 'utf8').trim()
    if (id === '') throw new Error(`${path} is empty: delete it to generate a new instance id (a new audit chain), or set INSTANCE_ID`)
    return id
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** The instance id kept in dataDir, created on first use as `<hostname>-<8 hex>` (file-safe characters only). */
export function loadOrCreateInstanceId (dataDir: string): string {
  const path = join(dataDir, INSTANCE_ID_FILE)
  const existing = readId(path)
  if (existing !== undefined) return existing
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 40) || 'proxy'
  const id = `${host}-${randomBytes(4).toString('hex')}`
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const fd = openSync(temp, 'wx', 0o644)
  try {
    writeSync(fd, `${id}\n`)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    linkSync(temp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return readId(path) ?? id
  } finally {
    unlinkSync(temp)
  }
  const dirFd = openSync(dataDir, 'r')
  try { fsyncSync(dirFd) } finally { closeSync(dirFd) }
  return id
}
