// Strict base64 for CPIX values: refuse what lenient decoders silently skip, and check decoded lengths.

/** The standard alphabet, then at most two '=': valid base64 when the length is also a multiple of four (xx==, xxx= endings). */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** Decode base64 text (whitespace allowed between characters); undefined when it is not valid base64. */
export function decodeBase64 (text: string): Buffer | undefined {
  // Canonical base64, the usual value, encodes back to itself: that proves it valid, natively and faster than the pattern.
  const bytes = Buffer.from(text, 'base64')
  if (bytes.toString('base64') === text) return bytes
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
