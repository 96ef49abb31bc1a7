// PlayReady signalling: WRMHEADER XML (v4.0-4.3), KID checksums, and the PlayReady Object (PRO) record container.
import { createCipheriv } from 'node:crypto'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import type { X2jOptions } from 'fast-xml-parser'
import type { ProtectionScheme } from './systems.js'
import { guidBytesToUuid, normalizeUuid, uuidToGuidBytes } from './uuid.js'
import { plainWrmHeaderTree } from './wrm-header-tree.js'
import { escapeText } from './xml.js'

const WRMHEADER_NAMESPACE = 'http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader'
const WRMHEADER_VERSIONS = ['4.0.0.0', '4.1.0.0', '4.2.0.0', '4.3.0.0'] as const
/** Microsoft: the PlayReady header must stay below 15 KB. */
const MAX_WRMHEADER_BYTES = 15 * 1024

interface WrmHeaderKid { kid: string; algId?: string; checksum?: string }
export interface ParsedWrmHeader {
  version: string
  kids: WrmHeaderKid[]
  laUrl?: string
  luiUrl?: string
  /** raw inner XML of CUSTOMATTRIBUTES, as written */
  customAttributes?: string
}

/** base64 of the 16 KID bytes in little-endian GUID order, as in WRMHEADER KID/VALUE. */
export function playReadyKidBase64 (kid: string): string {
  return uuidToGuidBytes(normalizeUuid(kid)).toString('base64')
}

/** AES-128-ECB of the LE-GUID KID under the content key, first 8 bytes, base64 (ALGID AESCTR only). */
export function playReadyChecksum (kid: string, key: Buffer): string {
  if (key.length !== 16) throw new Error(`a PlayReady content key has 16 bytes, got ${key.length}`)
  const cipher = createCipheriv('aes-128-ecb', key, null)
  cipher.setAutoPadding(false)
  const block = Buffer.concat([cipher.update(uuidToGuidBytes(normalizeUuid(kid))), cipher.final()])
  return block.subarray(0, 8).toString('base64')
}

/** True when the (public, non-secret) CHECKSUM text equals the one computed from the KID and key. */
export function verifyPlayReadyChecksum (kid: string, key: Buffer, checksum: string): boolean {
  return checksum.trim() === playReadyChecksum(kid, key)
}

/**
 * WRMHEADER for the given KIDs and scheme, byte-compatible with shaka-packager:
 * cenc/cens with one KID → 4.0.0.0 (KID + CHECKSUM elements); cenc/cens with several → 4.2.0.0;
 * cbc1/cbcs → 4.3.0.0 with ALGID="AESCBC" and no CHECKSUM. CHECKSUM only when the key is given.
 */
export function buildWrmHeader (h: {
  kids: Array<{ kid: string; key?: Buffer }>
  scheme: ProtectionScheme
  laUrl?: string
  luiUrl?: string
  customAttributes?: string
}): string {
  if (h.kids.length === 0) throw new Error('a PlayReady header needs at least one KID')
  const seen = new Set<string>()
  for (const { kid } of h.kids) {
    const id = normalizeUuid(kid)
    if (seen.has(id)) throw new Error(`duplicate KID ${id} in PlayReady header`)
    seen.add(id)
  }
  const cbc = h.scheme === 'cbcs' || h.scheme === 'cbc1'
  const algId = cbc ? 'AESCBC' : 'AESCTR'
  let protectInfo: string
  let version: string
  if (!cbc && h.kids.length === 1) {
    const { kid, key } = h.kids[0]
    version = '4.0.0.0'
    protectInfo = '<PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO>' +
      `<KID>${playReadyKidBase64(kid)}</KID>` +
      (key !== undefined ? `<CHECKSUM>${playReadyChecksum(kid, key)}</CHECKSUM>` : '')
  } else {
    version = cbc ? '4.3.0.0' : '4.2.0.0'
    const kids = h.kids.map(({ kid, key }) => {
      const checksum = !cbc && key !== undefined ? ` CHECKSUM="${playReadyChecksum(kid, key)}"` : ''
      return `<KID ALGID="${algId}"${checksum} VALUE="${playReadyKidBase64(kid)}"></KID>`
    })
    protectInfo = `<PROTECTINFO><KIDS>${kids.join('')}</KIDS></PROTECTINFO>`
  }
  const xml = `<WRMHEADER xmlns="${WRMHEADER_NAMESPACE}" version="${version}"><DATA>${protectInfo}` +
    (h.laUrl !== undefined ? `<LA_URL>${escapeText(h.laUrl)}</LA_URL>` : '') +
    (h.luiUrl !== undefined ? `<LUI_URL>${escapeText(h.luiUrl)}</LUI_URL>` : '') +
    (h.customAttributes !== undefined ? `<CUSTOMATTRIBUTES>${h.customAttributes}</CUSTOMATTRIBUTES>` : '') +
    '</DATA></WRMHEADER>'
  const size = Buffer.byteLength(xml, 'utf16le')
  if (size > MAX_WRMHEADER_BYTES) throw new Error(`PlayReady header is ${size} bytes, the limit is ${MAX_WRMHEADER_BYTES}`)
  return xml
}

/** PRO = u32le total length | u16le record count (1) | u16le type 1 | u16le length | UTF-16LE WRMHEADER. */
export function buildPlayReadyObject (wrmHeaderXml: string): Buffer {
  // UTF-16LE: two bytes per UTF-16 code unit, written straight into the object.
  const recordLength = wrmHeaderXml.length * 2
  if (recordLength > 0xffff) throw new Error(`PlayReady header record of ${recordLength} bytes exceeds 65535`)
  const pro = Buffer.alloc(10 + recordLength)
  pro.writeUInt32LE(pro.length, 0)
  pro.writeUInt16LE(1, 4)
  pro.writeUInt16LE(1, 6)
  pro.writeUInt16LE(recordLength, 8)
  pro.write(wrmHeaderXml, 10, 'utf16le')
  return pro
}

const UTF16 = new TextDecoder('utf-16le', { fatal: true })

/** Reads a PlayReady Object and returns its single WRM header record (type 1) as text. */
export function parsePlayReadyObject (pro: Buffer): { wrmHeader: string } {
  if (pro.length < 6) throw new Error(`PlayReady Object is truncated: ${pro.length} bytes, the header needs 6`)
  const length = pro.readUInt32LE(0)
  if (length !== pro.length) throw new Error(`PlayReady Object length field ${length} does not match ${pro.length} bytes`)
  const count = pro.readUInt16LE(4)
  if (count === 0) throw new Error('PlayReady Object has no records')
  let offset = 6
  let header: Buffer | undefined
  for (let i = 0; i < count; i++) {
    if (offset + 4 > pro.length) throw new Error(`PlayReady Object record ${i + 1} of ${count} is truncated at offset ${offset}`)
    const type = pro.readUInt16LE(offset)
    const size = pro.readUInt16LE(offset + 2)
    offset += 4
    if (offset + size > pro.length) {
      throw new Error(`PlayReady Object record ${i + 1} declares ${size} bytes but only ${pro.length - offset} are left`)
    }
    if (type === 1) {
      if (header !== undefined) throw new Error('PlayReady Object has more than one WRM header record (type 1)')
      header = pro.subarray(offset, offset + size)
    }
    offset += size
  }
  if (offset !== pro.length) throw new Error(`PlayReady Object has ${pro.length - offset} bytes after its ${count} records`)
  if (header === undefined) throw new Error('PlayReady Object has no WRM header record (type 1)')
  if (header.length % 2 !== 0) throw new Error(`WRM header record length ${header.length} is odd, so it is not UTF-16LE`)
  let wrmHeader: string
  try {
    wrmHeader = UTF16.decode(header)
  } catch {
    throw new Error('WRM header record is not valid UTF-16LE')
  }
  if (!wrmHeader.startsWith('<WRMHEADER')) {
    throw new Error(`WRM header record does not start with <WRMHEADER (got ${JSON.stringify(wrmHeader.slice(0, 16))})`)
  }
  return { wrmHeader }
}

/** How fast-xml-parser reads a WRMHEADER (plainWrmHeaderTree builds the same tree for the plain form). */
export const WRMHEADER_PARSER_OPTIONS: Readonly<X2jOptions> = {
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
  htmlEntities: false,
  isArray: (name: string) => name === 'KID'
}
const PARSER = new XMLParser(WRMHEADER_PARSER_OPTIONS)

/** Parses any of the four WRMHEADER versions; KIDs are returned as lowercase UUIDs. */
export function parseWrmHeader (xml: string): ParsedWrmHeader {
  if (/<!DOCTYPE/i.test(xml)) throw new Error('PlayReady header must not contain a DOCTYPE')
  // The plain form every KMS writes is read without the parser; it is well-formed by construction.
  const doc: unknown = plainWrmHeaderTree(xml) ?? parseWithValidation(xml)
  const rootNames = isRecord(doc) ? Object.keys(doc).filter((k) => !k.startsWith('?')) : []
  if (rootNames.length !== 1 || rootNames[0] !== 'WRMHEADER' || !isRecord(doc)) {
    throw new Error(`PlayReady header root must be a single WRMHEADER element, got ${rootNames.join(', ') || 'nothing'}`)
  }
  const root = doc.WRMHEADER
  if (Array.isArray(root)) throw new Error(`PlayReady header root must be a single WRMHEADER element, got ${root.length}`)
  if (!isRecord(root)) throw new Error('WRMHEADER has no attributes or content')
  if (root['@_xmlns'] !== WRMHEADER_NAMESPACE) throw new Error(`WRMHEADER namespace must be ${WRMHEADER_NAMESPACE}, got ${String(root['@_xmlns'])}`)
  const version = root['@_version']
  if (typeof version !== 'string' || !(WRMHEADER_VERSIONS as readonly string[]).includes(version)) {
    throw new Error(`unsupported WRMHEADER version ${String(version)} (expected one of ${WRMHEADER_VERSIONS.join(', ')})`)
  }
  const data = root.DATA
  if (!isRecord(data)) throw new Error(`WRMHEADER ${version} has no DATA element`)
  const protectInfo = data.PROTECTINFO

  let kids: WrmHeaderKid[]
  if (version === '4.0.0.0') {
    const kidTexts = asArray(data.KID)
    if (kidTexts.length !== 1 || typeof kidTexts[0] !== 'string') throw new Error('WRMHEADER 4.0.0.0 must have exactly one DATA/KID element with text')
    const kid: WrmHeaderKid = { kid: kidFromBase64(kidTexts[0]) }
    if (isRecord(protectInfo) && typeof protectInfo.ALGID === 'string') kid.algId = protectInfo.ALGID
    if (data.CHECKSUM !== undefined) kid.checksum = textOf('CHECKSUM', data.CHECKSUM)
    kids = [kid]
  } else {
    let kidNodes: unknown[] = []
    if (protectInfo !== undefined && protectInfo !== '') {
      if (!isRecord(protectInfo)) throw new Error(`WRMHEADER ${version} PROTECTINFO has unexpected content`)
      if (version === '4.1.0.0') {
        kidNodes = asArray(protectInfo.KID)
        if (kidNodes.length > 1) throw new Error('WRMHEADER 4.1.0.0 allows one KID')
      } else {
        const list = protectInfo.KIDS
        if (list !== undefined && list !== '') {
          if (!isRecord(list)) throw new Error(`WRMHEADER ${version} KIDS has unexpected content`)
          kidNodes = asArray(list.KID)
        }
      }
    }
    kids = kidNodes.map((node) => kidFromAttributes(version, node))
  }
  const out: ParsedWrmHeader = { version, kids }
  if (data.LA_URL !== undefined) out.laUrl = textOf('LA_URL', data.LA_URL)
  if (data.LUI_URL !== undefined) out.luiUrl = textOf('LUI_URL', data.LUI_URL)
  const custom = /<CUSTOMATTRIBUTES(?:\s[^>]*)?>([\s\S]*?)<\/CUSTOMATTRIBUTES>/.exec(xml)
  if (custom !== null) out.customAttributes = custom[1]
  return out
}

function parseWithValidation (xml: string): unknown {
  const valid = XMLValidator.validate(xml)
  if (valid !== true) throw new Error(`PlayReady header is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`)
  return PARSER.parse(xml)
}

function kidFromAttributes (version: string, node: unknown): WrmHeaderKid {
  if (!isRecord(node) || typeof node['@_VALUE'] !== 'string') throw new Error(`WRMHEADER ${version} KID element needs a VALUE attribute`)
  const kid: WrmHeaderKid = { kid: kidFromBase64(node['@_VALUE']) }
  if (typeof node['@_ALGID'] === 'string') kid.algId = node['@_ALGID']
  if (typeof node['@_CHECKSUM'] === 'string') kid.checksum = node['@_CHECKSUM']
  return kid
}

function kidFromBase64 (value: string): string {
  const text = value.trim()
  const bytes = Buffer.from(text, 'base64')
  if (bytes.length !== 16 || !/^[A-Za-z0-9+/]{22}==$/.test(text)) throw new Error(`PlayReady KID '${value}' is not base64 of 16 bytes`)
  return guidBytesToUuid(bytes)
}

function textOf (name: string, value: unknown): string {
  if (typeof value !== 'string') throw new Error(`WRMHEADER ${name} must contain text only`)
  return value
}

function asArray (value: unknown): unknown[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
