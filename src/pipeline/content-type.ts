// Which request bodies a CPIX route accepts: application/xml, text/xml (any parameters), or no Content-Type at all.

import { ProxyError, clip } from '../errors.js'

const XML_TYPES = new Set(['application/xml', 'text/xml'])

export function checkCpixContentType (header: string | undefined): void {
  if (header === undefined || header.trim() === '') return
  const type = header.split(';')[0].trim().toLowerCase()
  if (XML_TYPES.has(type)) return
  throw new ProxyError('UNSUPPORTED_MEDIA_TYPE', `Content-Type ${clip(type)} is not accepted: send the CPIX document as application/xml or text/xml`)
}
