// The embedded provider's master secret: LOCAL_KMS_SECRET, or one generated on first start into DATA_DIR (mode 0600).

import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MIN_SECRET_BYTES, base64Secret } from '../../config.js'

const SECRET_FILE = 'local-kms.secret'

export function loadOrCreateSecret (dataDir: string, fromEnv: string | undefined): Buffer {
  if (fromEnv !== undefined) return base64Secret(fromEnv, 'LOCAL_KMS_SECRET')
  const file = join(dataDir, SECRET_FILE)
  if (existsSync(file)) return base64Secret(readFileSync(file, 'utf8'), 'LOCAL_KMS_SECRET', `${file} (used because LOCAL_KMS_SECRET is unset)`)
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const secret = randomBytes(MIN_SECRET_BYTES)
  writeFileSync(file, `${secret.toString('base64')}\n`, { mode: 0o600, flag: 'wx' })
  chmodSync(file, 0o600)
  return secret
}
