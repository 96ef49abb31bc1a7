// ISO BMFF 'pssh' boxes (ISO/IEC 23001-7 §8.1.2): build one box, parse one or more concatenated boxes strictly.
import { bytesToUuid, normalizeUuid, uuidToBytes } from './uuid.js'

export interface PsshBox {
  version: 0 | 1
  /** lowercase UUID */
  systemId: string
  /** lowercase UUIDs from the box header; always empty for version 0 */
  kids: string[]
  data: Buffer
}

const HEADER_SIZE = 8 + 4 + 16 // size, 'pssh', version+flags, SystemID
const MAX_U32 = 0xffffffff

export function buildPsshBox (box: { systemId: string; version?: 0 | 1; kids?: string[]; data: Buffer }): Buffer {
  const kids = box.kids ?? []
  const version = box.version ?? (kids.length > 0 ? 1 : 0)
  if (version === 0 && kids.length > 0) {
    throw new Error(`a version 0 pssh box cannot carry KIDs (got ${kids.length}); use version 1`)
  }
  const systemId = uuidToBytes(normalizeUuid(box.systemId))
  const kidBytes = kids.map((kid) => uuidToBytes(normalizeUuid(kid)))
  const kidSection = version === 1 ? 4 + 16 * kidBytes.length : 0
  const size = HEADER_SIZE + kidSection + 4 + box.data.length
  if (size > MAX_U32) throw new Error(`pssh box of ${size} bytes does not fit a 32-bit size field`)

  const out = Buffer.alloc(size)
  let offset = out.writeUInt32BE(size, 0)
  offset += out.write('pssh', offset, 'latin1')
  offset = out.writeUInt32BE(version * 0x1000000, offset) // version in the top byte, flags 0
  offset += systemId.copy(out, offset)
  if (version === 1) {
    offset = out.writeUInt32BE(kidBytes.length, offset)
    for (const kid of kidBytes) offset += kid.copy(out, offset)
  }
  offset = out.writeUInt32BE(box.data.length, offset)
  box.data.copy(out, offset)
  return out
}

/** Parses one or more concatenated pssh boxes (EME initData, CPIX PSSH); every byte must belong to a box. */
export function parsePsshBoxes (bytes: Buffer): PsshBox[] {
  if (bytes.length === 0) throw new Error('no pssh box: input is empty')
  const boxes: PsshBox[] = []
  let offset = 0
  while (offset < bytes.length) {
    const box = parseOneBox(bytes, offset)
    boxes.push(box.box)
    offset += box.size
  }
  return boxes
}

/** Parses input that must hold exactly one pssh box. */
export function parsePsshBox (bytes: Buffer): PsshBox {
  const boxes = parsePsshBoxes(bytes)
  if (boxes.length !== 1) throw new Error(`expected exactly one pssh box, found ${boxes.length}`)
  return boxes[0]
}

function parseOneBox (bytes: Buffer, start: number): { box: PsshBox; size: number } {
  const left = bytes.length - start
  const where = start === 0 ? 'pssh box' : `pssh box at offset ${start}`
  if (left < 8) throw new Error(`${where} is truncated: ${left} bytes left, a box header needs 8`)
  const size = bytes.readUInt32BE(start)
  const type = bytes.toString('latin1', start + 4, start + 8)
  if (type !== 'pssh') throw new Error(`${where} has type '${printable(type)}', expected 'pssh'`)
  if (size === 0 || size === 1) {
    throw new Error(`${where} uses size ${size} (${size === 0 ? 'to end of file' : '64-bit largesize'}), which is not supported`)
  }
  if (size > left) throw new Error(`${where} is truncated: size ${size} but only ${left} bytes are left`)
  if (size < HEADER_SIZE + 4) throw new Error(`${where} size ${size} is smaller than the minimum of ${HEADER_SIZE + 4} bytes`)

  const box = bytes.subarray(start, start + size)
  const version = box.readUInt8(8)
  const flags = box.readUIntBE(9, 3)
  if (version !== 0 && version !== 1) throw new Error(`${where} has unsupported version ${version} (0 or 1 expected)`)
  if (flags !== 0) throw new Error(`${where} has flags 0x${flags.toString(16).padStart(6, '0')}, expected 0`)
  const systemId = bytesToUuid(box.subarray(12, 28))

  let offset = HEADER_SIZE
  const kids: string[] = []
  if (version === 1) {
    const count = box.readUInt32BE(offset)
    offset += 4
    const needed = offset + 16 * count + 4
    if (needed > size) {
      throw new Error(`${where} size ${size} is too small for ${count} KIDs (needs at least ${needed} bytes)`)
    }
    for (let i = 0; i < count; i++, offset += 16) kids.push(bytesToUuid(box.subarray(offset, offset + 16)))
  }
  const dataSize = box.readUInt32BE(offset)
  offset += 4
  const expected = offset + dataSize
  if (expected !== size) {
    throw new Error(`${where} size ${size} does not match ${expected} bytes (version ${version}, ${kids.length} KIDs, DataSize ${dataSize})`)
  }
  return { box: { version, systemId, kids, data: Buffer.from(box.subarray(offset, expected)) }, size }
}

function printable (text: string): string {
  return text.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}
