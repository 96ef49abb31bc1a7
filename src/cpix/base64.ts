// Strict base64 for CPIX values: refuse what lenient decoders silently skip, and check decoded lengths.

/** The standard alphabet, then at most two '=': valid base64 when the length is also a multiple of four (xx==, xxx= endings). */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/**
 * Values decoded lately, by their text: one reply's PSSH boxes, MPD fragments and HLS tags are decoded by the verification,
 * the repair and the SPEKE v2 checks in turn. Only long values (never a content key: 24 or 44 characters) and not huge ones;
 * callers always get a copy of their own.
 */
const recent = new Map<string, Buffer>()
const RECENT_ENTRIES = 128
const RECENT_MIN_LENGTH = 100
const RECENT_MAX_LENGTH = 8192

/** Decode base64 text (whitespace allowed between characters); undefined when it is not valid base64. */
export function decodeBase64 (text: string): Buffer | undefined {
  const cacheable = text.length >= RECENT_MIN_LENGTH && text.length <= RECENT_MAX_LENGTH
  if (!cacheable) return decode(text)
  const known = recent.get(text)
  if (known !== undefined) return Buffer.from(known)
  const bytes = decode(text)
  if (bytes === undefined) return undefined
  if (recent.size >= RECENT_ENTRIES) recent.delete(recent.keys().next().value ?? '')
  recent.set(text, bytes)
  return Buffer.from(bytes)
}

function decode (text: string): Buffer | undefined {
  // One pass of a simple character class for the usual value without white space; the white-space removal only when needed.
  let compact = text
  if (!BASE64.test(compact)) {
    compact = text.replace(/\s+/g, '')
    if (compact === text || !BASE64.test(compact)) return undefined
  }
  if (compact.length % 4 !== 0) return undefined
  return Buffer.from(compact, 'base64')
}

/** Standard padded base64 of bytes, or of text as UTF-8. */
export function encodeBase64 (value: string | Buffer): string {
  return Buffer.from(value).toString('base64')
}
