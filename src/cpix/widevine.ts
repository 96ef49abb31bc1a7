// Widevine pssh data: encode/decode the WidevinePsshData protobuf (proto2) and wrap it in a pssh box.
import { buildPsshBox } from './pssh.js'
import { WIDEVINE, isProtectionScheme } from './systems.js'
import type { ProtectionScheme } from './systems.js'
import { bytesToUuid, normalizeUuid, uuidToBytes } from './uuid.js'

export interface WidevinePsshData {
  /** field 1 (deprecated enum): true = AESCTR (`08 01`, PallyCon/AWS), false = UNENCRYPTED (`08 00`), absent = not sent */
  algorithmAesCtr?: boolean
  /** field 2, lowercase UUIDs (16 big-endian bytes each), in wire order */
  kids: string[]
  /** field 3 */
  provider?: string
  /** field 4 */
  contentId?: Buffer
  /** field 5 (track_type_deprecated), e.g. SD/HD/AUDIO */
  trackType?: string
  /** field 6 */
  policy?: string
  /** field 7 */
  cryptoPeriodIndex?: number
  /** field 8 */
  groupedLicense?: Buffer
  /** field 9, FourCC as a big-endian uint32 on the wire */
  protectionScheme?: ProtectionScheme
  /** field 10 */
  cryptoPeriodSeconds?: number
}

const FIELD_NAMES: Record<number, string> = {
  1: 'algorithm',
  2: 'key_id',
  3: 'provider',
  4: 'content_id',
  5: 'track_type_deprecated',
  6: 'policy',
  7: 'crypto_period_index',
  8: 'grouped_license',
  9: 'protection_scheme',
  10: 'crypto_period_seconds'
}
const VARINT_FIELDS = new Set([1, 7, 9, 10])

const WIRE_VARINT = 0
const WIRE_FIXED64 = 1
const WIRE_LEN = 2
const WIRE_FIXED32 = 5

function fourCcToNumber (scheme: ProtectionScheme): number {
  return Buffer.from(scheme, 'latin1').readUInt32BE(0)
}

function numberToProtectionScheme (value: number): ProtectionScheme {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value >>> 0)
  const text = bytes.toString('latin1')
  if (isProtectionScheme(text)) return text
  throw new Error(`Widevine protection_scheme 0x${(value >>> 0).toString(16).padStart(8, '0')} is not cenc, cbc1, cens or cbcs`)
}

/** Encodes the fields in field-number order into one buffer, sized first. */
export function encodeWidevinePsshData (d: WidevinePsshData): Buffer {
  const kids = d.kids.map(kid => uuidToBytes(normalizeUuid(kid)))
  const provider = d.provider === undefined ? undefined : Buffer.from(d.provider, 'utf8')
  const trackType = d.trackType === undefined ? undefined : Buffer.from(d.trackType, 'utf8')
  const policy = d.policy === undefined ? undefined : Buffer.from(d.policy, 'utf8')
  const cryptoPeriodIndex = d.cryptoPeriodIndex === undefined ? undefined : checkUint32('cryptoPeriodIndex', d.cryptoPeriodIndex)
  const protectionScheme = d.protectionScheme === undefined ? undefined : fourCcToNumber(d.protectionScheme)
  const cryptoPeriodSeconds = d.cryptoPeriodSeconds === undefined ? undefined : checkUint32('cryptoPeriodSeconds', d.cryptoPeriodSeconds)
  const algorithm = d.algorithmAesCtr === undefined ? undefined : d.algorithmAesCtr ? 1 : 0

  const size = varintFieldSize(algorithm) + kids.reduce((n, kid) => n + bytesFieldSize(kid), 0) +
    bytesFieldSize(provider) + bytesFieldSize(d.contentId) + bytesFieldSize(trackType) + bytesFieldSize(policy) +
    varintFieldSize(cryptoPeriodIndex) + bytesFieldSize(d.groupedLicense) +
    varintFieldSize(protectionScheme) + varintFieldSize(cryptoPeriodSeconds)
  const out = Buffer.allocUnsafe(size)
  let at = writeVarintField(out, 0, 1, algorithm)
  for (const kid of kids) at = writeBytesField(out, at, 2, kid)
  at = writeBytesField(out, at, 3, provider)
  at = writeBytesField(out, at, 4, d.contentId)
  at = writeBytesField(out, at, 5, trackType)
  at = writeBytesField(out, at, 6, policy)
  at = writeVarintField(out, at, 7, cryptoPeriodIndex)
  at = writeBytesField(out, at, 8, d.groupedLicense)
  at = writeVarintField(out, at, 9, protectionScheme)
  at = writeVarintField(out, at, 10, cryptoPeriodSeconds)
  if (at !== size) throw new Error(`Widevine pssh data: wrote ${at} bytes, sized ${size}`)
  return out
}

/** Decodes WidevinePsshData; unknown fields of any valid wire type are skipped, malformed input throws. */
export function decodeWidevinePsshData (b: Buffer): WidevinePsshData {
  const out: WidevinePsshData = { kids: [] }
  let offset = 0
  while (offset < b.length) {
    const fieldStart = offset
    const key = readVarint(b, offset, `field key at offset ${fieldStart}`)
    offset = key.next
    if (key.value > 0xffffffff) throw new Error(`Widevine pssh data has an invalid field key at offset ${fieldStart}`)
    const fieldNumber = Math.floor(key.value / 8)
    const wireType = key.value % 8
    if (fieldNumber === 0) throw new Error(`Widevine pssh data has field number 0 at offset ${fieldStart}`)
    const name = FIELD_NAMES[fieldNumber]
    if (name !== undefined) {
      const expectedWire = VARINT_FIELDS.has(fieldNumber) ? WIRE_VARINT : WIRE_LEN
      if (wireType !== expectedWire) {
        throw new Error(`Widevine pssh data field ${fieldNumber} (${name}) at offset ${fieldStart} has wire type ${wireType}, expected ${expectedWire}`)
      }
    }
    if (wireType === WIRE_VARINT) {
      const v = readVarint(b, offset, `field ${fieldNumber} at offset ${fieldStart}`)
      offset = v.next
      if (name !== undefined) applyVarint(out, fieldNumber, name, v.value)
    } else if (wireType === WIRE_LEN) {
      const len = readVarint(b, offset, `length of field ${fieldNumber} at offset ${fieldStart}`)
      const end = len.next + len.value
      if (end > b.length) {
        throw new Error(`Widevine pssh data field ${fieldNumber} at offset ${fieldStart} declares ${len.value} bytes but only ${b.length - len.next} are left`)
      }
      const value = Buffer.from(b.subarray(len.next, end))
      offset = end
      if (name !== undefined) applyBytes(out, fieldNumber, name, value)
    } else if (wireType === WIRE_FIXED64 || wireType === WIRE_FIXED32) {
      const width = wireType === WIRE_FIXED64 ? 8 : 4
      if (offset + width > b.length) throw new Error(`Widevine pssh data field ${fieldNumber} at offset ${fieldStart} is truncated (fixed${width * 8})`)
      offset += width
    } else {
      throw new Error(`Widevine pssh data field ${fieldNumber} at offset ${fieldStart} has unsupported wire type ${wireType}`)
    }
  }
  return out
}

/** A Widevine pssh box: version 0 (KIDs only in the protobuf) or version 1 (KIDs also in the box header). */
export function buildWidevinePsshBox (d: WidevinePsshData, version: 0 | 1 = 0): Buffer {
  return buildPsshBox({ systemId: WIDEVINE, version, kids: version === 1 ? d.kids : [], data: encodeWidevinePsshData(d) })
}

function applyVarint (out: WidevinePsshData, field: number, name: string, value: number): void {
  if (field === 1) {
    if (value !== 0 && value !== 1) throw new Error(`Widevine pssh data ${name} has unknown value ${value} (0 or 1 expected)`)
    out.algorithmAesCtr = value === 1
  } else {
    if (value > 0xffffffff) throw new Error(`Widevine pssh data ${name} ${value} does not fit uint32`)
    if (field === 7) out.cryptoPeriodIndex = value
    else if (field === 9) out.protectionScheme = numberToProtectionScheme(value)
    else out.cryptoPeriodSeconds = value
  }
}

function applyBytes (out: WidevinePsshData, field: number, name: string, value: Buffer): void {
  switch (field) {
    case 2:
      if (value.length !== 16) throw new Error(`Widevine pssh data key_id must be 16 bytes, got ${value.length}`)
      out.kids.push(bytesToUuid(value))
      break
    case 3: out.provider = utf8(name, value); break
    case 4: out.contentId = value; break
    case 5: out.trackType = utf8(name, value); break
    case 6: out.policy = utf8(name, value); break
    default: out.groupedLicense = value
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function utf8 (name: string, value: Buffer): string {
  try {
    return UTF8.decode(value)
  } catch {
    throw new Error(`Widevine pssh data ${name} is not valid UTF-8`)
  }
}

function checkUint32 (name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new Error(`${name} must be a uint32, got ${value}`)
  return value
}

/** Values above 2^53 lose precision; callers only use them for range checks or skip them. */
function readVarint (b: Buffer, start: number, what: string): { value: number; next: number } {
  let value = 0
  let scale = 1
  for (let i = 0; i < 10; i++) {
    const at = start + i
    if (at >= b.length) throw new Error(`Widevine pssh data ${what} is a truncated varint`)
    const byte = b[at]
    value += (byte & 0x7f) * scale
    scale *= 128
    if ((byte & 0x80) === 0) {
      return { value, next: at + 1 }
    }
  }
  throw new Error(`Widevine pssh data ${what} is a varint longer than 10 bytes`)
}

function varintSize (value: number): number {
  let size = 1
  for (let v = value; v >= 0x80; v = Math.floor(v / 128)) size++
  return size
}

function writeVarint (out: Buffer, at: number, value: number): number {
  let v = value
  while (v >= 0x80) {
    out[at++] = (v % 128) | 0x80
    v = Math.floor(v / 128)
  }
  out[at++] = v
  return at
}

/** Bytes of a varint field (key and value), 0 when the field is absent. */
function varintFieldSize (value: number | undefined): number {
  return value === undefined ? 0 : 1 + varintSize(value)
}

/** Bytes of a length-delimited field (key, length and value), 0 when the field is absent. */
function bytesFieldSize (value: Buffer | undefined): number {
  return value === undefined ? 0 : 1 + varintSize(value.length) + value.length
}

/** Writes a varint field (the keys of fields 1-10 take one byte) when present; returns where the next field starts. */
function writeVarintField (out: Buffer, at: number, field: number, value: number | undefined): number {
  if (value === undefined) return at
  return writeVarint(out, writeVarint(out, at, field * 8 + WIRE_VARINT), value)
}

function writeBytesField (out: Buffer, at: number, field: number, value: Buffer | undefined): number {
  if (value === undefined) return at
  const next = writeVarint(out, writeVarint(out, at, field * 8 + WIRE_LEN), value.length)
  return next + value.copy(out, next)
}
