// Turns request bytes into XML text: encoding by BOM and declaration (UTF-8, UTF-16), and refusal of DTDs.

import { badRequest } from '../errors.js'

const UTF8_BOM = [0xef, 0xbb, 0xbf]

type XmlEncoding = 'utf-8' | 'utf-16le' | 'utf-16be'

/** Decode an XML document's bytes to text, honouring a BOM or the encoding declaration. */
export function decodeXmlBytes (bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buf.length === 0) throw badRequest('Request body is empty: a CPIX XML document is required', 'EMPTY_BODY')

  const encoding = sniffEncoding(buf)
  const text = decodeText(buf, encoding)
  const declared = declaredEncoding(text)
  if (declared !== undefined && !isCompatible(declared, encoding)) {
    throw badRequest(`XML declares encoding "${declared}", which speke-proxy does not accept: send UTF-8 or UTF-16`, 'UNSUPPORTED_ENCODING')
  }
  const body = stripLeadingNoise(text)
  refuseDoctype(body)
  return body
}

function sniffEncoding (buf: Buffer): XmlEncoding {
  if (buf[0] === UTF8_BOM[0] && buf[1] === UTF8_BOM[1] && buf[2] === UTF8_BOM[2]) return 'utf-8'
  if (buf[0] === 0xff && buf[1] === 0xfe) return 'utf-16le'
  if (buf[0] === 0xfe && buf[1] === 0xff) return 'utf-16be'
  // No BOM: UTF-16 still shows as '<' next to a zero byte (XML 1.0 Appendix F).
  if (buf.length >= 2 && buf[0] === 0x3c && buf[1] === 0x00) return 'utf-16le'
  if (buf.length >= 2 && buf[0] === 0x00 && buf[1] === 0x3c) return 'utf-16be'
  return 'utf-8'
}

function decodeText (buf: Buffer, encoding: XmlEncoding): string {
  try {
    const decoder = new TextDecoder(encoding, { fatal: true, ignoreBOM: false })
    return decoder.decode(buf)
  } catch {
    throw badRequest(`Request body is not valid ${encoding.toUpperCase()} text`, 'BAD_ENCODING')
  }
}

function declaredEncoding (text: string): string | undefined {
  const decl = /^\s*<\?xml\s[^?]*?encoding\s*=\s*["']([^"']+)["']/.exec(text)
  return decl?.[1]
}

function isCompatible (declared: string, actual: XmlEncoding): boolean {
  const name = declared.toLowerCase().replace(/[^a-z0-9]/g, '')
  if (actual === 'utf-8') return name === 'utf8' || name === 'usascii' || name === 'ascii'
  return name === 'utf16' || name === actual.replace(/-/g, '')
}

function stripLeadingNoise (text: string): string {
  return text.replace(/^\uFEFF/, '').replace(/^\s+/, '')
}

function refuseDoctype (text: string): void {
  // Both begin '<!', which most documents do not hold at all: one native search instead of two case-insensitive scans.
  if (!text.includes('<!')) return
  if (/<!DOCTYPE/i.test(text)) {
    throw badRequest('XML documents with a DOCTYPE are refused (DTDs and external entities are not allowed in CPIX)', 'DOCTYPE_REFUSED')
  }
  if (/<!ENTITY/i.test(text)) {
    throw badRequest('XML entity declarations are refused in CPIX documents', 'ENTITY_REFUSED')
  }
}
