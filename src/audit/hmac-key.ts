// Audit HMAC key: AUDIT_HMAC_KEY (base64, >= 32 bytes) or a generated key kept in DATA_DIR/audit-hmac.key (mode 0600).

import { mkdirSync, readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { MIN_SECRET_BYTES, base64Secret } from '../config.js'
import { createFileOnce } from './create-once.js'

const HMAC_KEY_FILE = 'audit-hmac.key'
export const MIN_HMAC_KEY_BYTES = MIN_SECRET_BYTES

function isErrno (err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code
}

/** The audit HMAC key: from AUDIT_HMAC_KEY when set, else read (or first created) beside the local secret in dataDir. */
export function loadOrCreateHmacKey (dataDir: string, fromEnv?: string): Buffer {
  if (fromEnv !== undefined && fromEnv.trim() !== '') return base64Secret(fromEnv, 'AUDIT_HMAC_KEY')
  const path = join(dataDir, HMAC_KEY_FILE)
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const existing = readKeyFile(path)
  if (existing !== undefined) return existing
  // A concurrent starter sees no key or a whole one; when it won the race, its key is the one.
  const key = randomBytes(MIN_HMAC_KEY_BYTES)
  if (createFileOnce(path, `${key.toString('base64')}\n`, 0o600)) return key
  return readKeyFile(path) ?? base64Secret('', 'AUDIT_HMAC_KEY', path)
}

function readKeyFile (path: string): Buffer | undefined {
  try {
    return base64Secret(readFileSync(path, 'utf8'), 'AUDIT_HMAC_KEY', `${path} (used because AUDIT_HMAC_KEY is unset)`)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined
    throw err
  }
}
