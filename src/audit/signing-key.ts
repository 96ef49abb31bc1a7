// Audit signing key (Ed25519): AUDIT_SIGNING_KEY (PKCS#8 PEM inline, file:PATH or env:NAME) or one generated into DATA_DIR (0600).

import { readFileSync } from 'node:fs'
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { join } from 'node:path'
import { createFileOnce } from './create-once.js'
import { sha256Hex } from './record.js'

const SIGNING_KEY_FILE = 'audit-signing.key'

export interface SigningKey {
  privateKey: KeyObject
  publicKey: KeyObject
  /** First 16 hex digits of SHA-256 of the public key's SPKI DER: names the key in every checkpoint. */
  keyId: string
  /** Where it came from, for the startup log (never the key). */
  source: string
  /** True when the key was generated into DATA_DIR (production should supply it from a secret store). */
  generated: boolean
}

export class SigningKeyError extends Error {}

export function keyIdOf (publicKey: KeyObject): string {
  return sha256Hex(publicKey.export({ type: 'spki', format: 'der' })).slice(0, 16)
}

export function publicKeyPem (key: SigningKey | KeyObject): string {
  const pub = 'publicKey' in key ? key.publicKey : key
  return pub.export({ type: 'spki', format: 'pem' }).toString()
}

function fromPem (pem: string, source: string, generated: boolean): SigningKey {
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' })
  } catch {
    throw new SigningKeyError(`${source} is not a PKCS#8 PEM private key (make one with: openssl genpkey -algorithm ed25519)`)
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new SigningKeyError(`${source} is a ${privateKey.asymmetricKeyType ?? 'unknown'} key; the audit signing key must be Ed25519 (openssl genpkey -algorithm ed25519)`)
  const publicKey = createPublicKey(privateKey)
  return { privateKey, publicKey, keyId: keyIdOf(publicKey), source, generated }
}

/** The PEM text an AUDIT_SIGNING_KEY value names: inline, `file:PATH` or `env:NAME`. */
function resolveSpec (spec: string, env: NodeJS.ProcessEnv): { pem: string, source: string } {
  const value = spec.trim()
  if (value.startsWith('file:')) {
    const path = value.slice(5)
    try {
      return { pem: readFileSync(path, 'utf8'), source: `AUDIT_SIGNING_KEY (file ${path})` }
    } catch (err) {
      throw new SigningKeyError(`AUDIT_SIGNING_KEY names file ${path}, which cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
    }
  }
  if (value.startsWith('env:')) {
    const name = value.slice(4)
    const pem = env[name]
    if (pem === undefined || pem.trim() === '') throw new SigningKeyError(`AUDIT_SIGNING_KEY names environment variable ${name}, which is not set`)
    return { pem, source: `AUDIT_SIGNING_KEY (environment variable ${name})` }
  }
  // Inline PEM; environments often carry it with literal \n.
  return { pem: value.includes('\\n') ? value.replace(/\\n/g, '\n') : value, source: 'AUDIT_SIGNING_KEY' }
}

/** The signing key from AUDIT_SIGNING_KEY when set, else from DATA_DIR (never created when `create` is false). */
export function loadSigningKey (dataDir: string, spec: string | undefined, env: NodeJS.ProcessEnv, create = true): SigningKey {
  if (spec !== undefined && spec.trim() !== '') {
    const { pem, source } = resolveSpec(spec, env)
    return fromPem(pem, source, false)
  }
  const path = join(dataDir, SIGNING_KEY_FILE)
  const existing = readKeyFile(path)
  if (existing !== undefined) return fromPem(existing, path, true)
  if (!create) throw new SigningKeyError(`no audit signing key: AUDIT_SIGNING_KEY is unset and ${path} does not exist`)
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  // A concurrent starter sees no key or a whole one; when it won the race, its key is the one.
  return createFileOnce(path, pem, 0o600) ? fromPem(pem, path, true) : fromPem(readFileSync(path, 'utf8'), path, true)
}

function readKeyFile (path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** A public key from PEM text (SPKI), or from a private key PEM by mistake (its public half). */
export function parsePublicKey (pem: string, source: string): KeyObject {
  let key: KeyObject
  try {
    key = createPublicKey({ key: pem, format: 'pem' })
  } catch {
    throw new SigningKeyError(`${source} is not a PEM public key (print one with: speke-proxy audit public-key)`)
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new SigningKeyError(`${source} is a ${key.asymmetricKeyType ?? 'unknown'} key, not the Ed25519 audit key`)
  return key
}
