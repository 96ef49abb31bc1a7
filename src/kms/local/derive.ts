// Deterministic key material for the embedded provider: a per-credential subkey of the master secret, then HKDF-SHA256.

import { createHmac } from 'node:crypto'
import { bytesToUuid } from '../../cpix/uuid.js'

const SALT = 'speke-proxy/local-kms/v2'
const CREDENTIAL_LABEL = 'speke-proxy/local-kms/credential/v2'

/** Length-prefixed fields, so ('ab','c') and ('a','bc') never collide, whatever bytes (NULs included) they hold. */
function encodeFields (fields: Array<string | number | undefined>): string {
  let out = ''
  for (const field of fields) {
    const text = field === undefined ? '-' : String(field)
    out += `${out === '' ? '' : '|'}${Buffer.byteLength(text)}:${text}`
  }
  return out
}

/**
 * HKDF-Extract (RFC 5869 §2.2) of one upstream credential: the pseudorandom key every content key and kid of that
 * credential is expanded from. Computed once per request; each key then costs one HKDF-Expand.
 */
export interface CredentialPrk {
  readonly prk: Buffer
}

/**
 * The key that stands for one upstream credential: HMAC-SHA256(master, label | site_id | access_key), fields
 * length-prefixed. Every content key is derived from it, never from the master secret or the site id alone, so
 * a token that names a tenant's site with a guessed or forged access key gets keys unrelated to that tenant's;
 * the same token (any spelling that decodes to the same site id and access key) gets the same keys for as long
 * as the master secret is kept.
 */
export function credentialKey (master: Buffer, siteId: string, accessKey: string): Buffer {
  return createHmac('sha256', master).update(encodeFields([CREDENTIAL_LABEL, siteId, accessKey]), 'utf8').digest()
}

/** HKDF-Extract(salt, credential key): what hkdfSync('sha256', credential, SALT, …) computes first on every call. */
export function credentialPrk (credential: Buffer): CredentialPrk {
  return { prk: createHmac('sha256', SALT).update(credential).digest() }
}

/**
 * HKDF-Expand (RFC 5869 §2.3) to at most one SHA-256 block (32 bytes): T(1) = HMAC(PRK, info | 0x01), cut to `length`.
 * Byte for byte what hkdfSync gives for the same PRK, info and length.
 */
function expand ({ prk }: CredentialPrk, label: string, fields: Array<string | number | undefined>, length: 16 | 32): Buffer {
  const info = encodeFields([label, ...fields])
  // hkdfSync (OpenSSL) refuses an info over 1024 bytes; so does this, so that no such input gets keys it never had.
  if (Buffer.byteLength(info, 'utf8') > MAX_INFO_BYTES) throw new RangeError(`HKDF info is ${Buffer.byteLength(info, 'utf8')} bytes, more than ${MAX_INFO_BYTES}`)
  const block = createHmac('sha256', prk).update(info, 'utf8').update(FIRST_BLOCK).digest()
  return length === block.length ? block : block.subarray(0, length)
}

const FIRST_BLOCK = Buffer.from([1])
const MAX_INFO_BYTES = 1024

/** Key and IV for (credential, content id, kid, key period): the same inputs always give the same 16 + 16 bytes. */
export function deriveKeyAndIv (
  credential: CredentialPrk, contentId: string, kid: string, periodIndex: number | undefined
): { key: Buffer, iv: Buffer } {
  const bytes = expand(credential, 'content-key', [contentId, kid.toLowerCase(), periodIndex], 32)
  return { key: bytes.subarray(0, 16), iv: bytes.subarray(16, 32) }
}

/** The kid a PallyCon-style KMS assigns: from content id, track type and period, whatever kid the request carried. */
export function deriveKid (
  credential: CredentialPrk, contentId: string, trackType: string | undefined, periodIndex: number | undefined
): string {
  return bytesToUuid(expand(credential, 'kid', [contentId, trackType ?? 'ALL', periodIndex], 16))
}
