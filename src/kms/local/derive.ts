// Deterministic key material for the embedded provider: a per-credential subkey of the master secret, then HKDF-SHA256.

import { createHmac, hkdfSync } from 'node:crypto'
import { bytesToUuid } from '../../cpix/uuid.js'

const SALT = 'speke-proxy/local-kms/v2'
const CREDENTIAL_LABEL = 'speke-proxy/local-kms/credential/v2'

/** Length-prefixed fields, so ('ab','c') and ('a','bc') never collide, whatever bytes (NULs included) they hold. */
function encodeFields (fields: Array<string | number | undefined>): string {
  return fields.map(f => f === undefined ? '-' : String(f)).map(f => `${Buffer.byteLength(f)}:${f}`).join('|')
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

function derive (credential: Buffer, label: string, fields: Array<string | number | undefined>, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', credential, SALT, encodeFields([label, ...fields]), length))
}

/** Key and IV for (credential, content id, kid, key period): the same inputs always give the same 16 + 16 bytes. */
export function deriveKeyAndIv (
  credential: Buffer, contentId: string, kid: string, periodIndex: number | undefined
): { key: Buffer, iv: Buffer } {
  const bytes = derive(credential, 'content-key', [contentId, kid.toLowerCase(), periodIndex], 32)
  return { key: bytes.subarray(0, 16), iv: bytes.subarray(16, 32) }
}

/** The kid a PallyCon-style KMS assigns: from content id, track type and period, whatever kid the request carried. */
export function deriveKid (credential: Buffer, contentId: string, trackType: string | undefined, periodIndex: number | undefined): string {
  return bytesToUuid(derive(credential, 'kid', [contentId, trackType ?? 'ALL', periodIndex], 16))
}
