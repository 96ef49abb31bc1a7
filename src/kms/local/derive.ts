// Deterministic key material for the embedded provider: HKDF-SHA256 from the master secret over what names a key.

import { hkdfSync } from 'node:crypto'
import { bytesToUuid } from '../../cpix/uuid.js'

const SALT = 'speke-proxy/local-kms/v1'

function derive (secret: Buffer, label: string, fields: Array<string | number | undefined>, length: number): Buffer {
  // Length-prefixed fields, so ('ab','c') and ('a','bc') never collide.
  const info = [label, ...fields.map(f => f === undefined ? '-' : String(f))].map(f => `${Buffer.byteLength(f)}:${f}`).join('|')
  return Buffer.from(hkdfSync('sha256', secret, SALT, info, length))
}

/** Key and IV for (tenant, content id, kid, key period): the same inputs always give the same 16 + 16 bytes. */
export function deriveKeyAndIv (secret: Buffer, tenant: string, contentId: string, kid: string, periodIndex: number | undefined): { key: Buffer, iv: Buffer } {
  const bytes = derive(secret, 'content-key', [tenant, contentId, kid.toLowerCase(), periodIndex], 32)
  return { key: bytes.subarray(0, 16), iv: bytes.subarray(16, 32) }
}

/** The kid a PallyCon-style KMS assigns: from content id, track type and period, whatever kid the request carried. */
export function deriveKid (secret: Buffer, tenant: string, contentId: string, trackType: string | undefined, periodIndex: number | undefined): string {
  return bytesToUuid(derive(secret, 'kid', [tenant, contentId, trackType ?? 'ALL', periodIndex], 16))
}
