// Audit HMAC key: AUDIT_HMAC_KEY (base64, >= 32 bytes) or a generated key kept in DATA_DIR/audit-hmac.key (mode 0600).

import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'

export const HMAC_KEY_FILE = 'audit-hmac.key'
export const MIN_HMAC_KEY_BYTES = 32

const BASE64 = /^(?:[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+)$/

/** Decodes base64 (or base64url) strictly; undefined when the text is not base64. */
function decodeBase64 (text: string): Buffer | undefined {
  const trimmed = text.trim()
  if (trimmed.length === 0 || !BASE64.test(trimmed)) return undefined
  const bytes = Buffer.from(trimmed, trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64')
  const canonical = (b: string): string => b.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')
  return canonical(bytes.toString('base64url')) === canonical(trimmed) ? bytes : undefined
}

function parseKey (text: string, source: string): Buffer {
  const key = decodeBase64(text)
  if (key === undefined) throw new Error(`${source} is not valid base64; AUDIT_HMAC_KEY must be base64 of at least ${MIN_HMAC_KEY_BYTES} random bytes`)
  if (key.length < MIN_HMAC_KEY_BYTES) throw new Error(`${source} holds ${key.length} bytes; AUDIT_HMAC_KEY must be base64 of at least ${MIN_HMAC_KEY_BYTES} bytes`)
  return key
}

function isErrno (err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code
}

/** The audit HMAC key: from AUDIT_HMAC_KEY when set, else read (or first created) beside the local secret in dataDir. */
export function loadOrCreateHmacKey (dataDir: string, fromEnv?: string): Buffer {
  if (fromEnv !== undefined && fromEnv.trim() !== '') return parseKey(fromEnv, 'AUDIT_HMAC_KEY')
  const path = join(dataDir, HMAC_KEY_FILE)
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const existing = readKeyFile(path)
  if (existing !== undefined) return existing
  // Written whole to a temporary file, then linked into place: a concurrent starter sees no key or a whole key.
  const key = randomBytes(MIN_HMAC_KEY_BYTES)
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const fd = openSync(temp, 'wx', 0o600)
  try {
    writeSync(fd, `${key.toString('base64')}\n`)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    linkSync(temp, path)
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err
    return readKeyFile(path) ?? parseKey('', path)
  } finally {
    unlinkSync(temp)
  }
  const dirFd = openSync(dataDir, 'r')
  try { fsyncSync(dirFd) } finally { closeSync(dirFd) }
  return key
}

function readKeyFile (path: string): Buffer | undefined {
  try {
    return parseKey(readFileSync(path, 'utf8'), `${path} (used because AUDIT_HMAC_KEY is unset)`)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined
    throw err
  }
}
