// Strict base64 for CPIX values: refuse what lenient decoders silently skip, and check decoded lengths.

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Decode base64 text (whitespace allowed between characters); undefined when it is not valid base64. */
export function decodeBase64 (text: string): Buffer | undefined {
  const compact = text.replace(/\s+/g, '')
  if (!BASE64.test(compact)) return undefined
  return Buffer.from(compact, 'base64')
}

/** Standard padded base64 of bytes, or of text as UTF-8. */
export function encodeBase64 (value: string | Buffer): string {
  return Buffer.from(value).toString('base64')
}
