// The embedded provider's master secret: LOCAL_KMS_SECRET, or one generated on first start into DATA_DIR (mode 0600).

import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError } from '../../config.js'

export const SECRET_FILE = 'local-kms.secret'
const MIN_BYTES = 32

export function loadOrCreateSecret (dataDir: string, fromEnv: string | undefined): Buffer {
  if (fromEnv !== undefined) return decodeSecret(fromEnv, 'LOCAL_KMS_SECRET')
  const file = join(dataDir, SECRET_FILE)
  if (existsSync(file)) return decodeSecret(readFileSync(file, 'utf8').trim(), `${file} (the generated LOCAL_KMS_SECRET)`)
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const secret = randomBytes(MIN_BYTES)
  writeFileSync(file, `${secret.toString('base64')}\n`, { mode: 0o600, flag: 'wx' })
  chmodSync(file, 0o600)
  return secret
}

function decodeSecret (text: string, where: string): Buffer {
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : Buffer.alloc(0)
  if (bytes.length < MIN_BYTES) throw new ConfigError(`${where} must be base64 of at least ${MIN_BYTES} bytes (e.g. openssl rand -base64 32)`)
  return bytes
}
