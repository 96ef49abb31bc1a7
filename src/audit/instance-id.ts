// Stable instance id: INSTANCE_ID, else one generated once into DATA_DIR/instance-id so a restart continues the same chain.

import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { createFileOnce } from './create-once.js'

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
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 40) || 'proxy'
  const id = `${host}-${randomBytes(4).toString('hex')}`
  return createFileOnce(path, `${id}\n`, 0o644) ? id : readId(path) ?? id
}
