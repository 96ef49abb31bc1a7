// UUID helpers for CPIX kids and DRM system ids: validation, normalisation, big-endian and little-endian GUID bytes.

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function isUuid (value: string): boolean {
  return UUID_PATTERN.test(value)
}

export function normalizeUuid (value: string): string {
  return value.trim().toLowerCase()
}

/** The 16 bytes of a UUID in network (big-endian) order, as in pssh boxes and tenc default_KID. */
export function uuidToBytes (uuid: string): Buffer {
  const out = Buffer.allocUnsafe(16)
  if (!writeUuidBytes(uuid, out)) throw new TypeError(`not a UUID: ${uuid}`)
  return out
}

/** Where the four '-' of a UUID stand. */
const HYPHEN_AT = [8, 13, 18, 23]

/**
 * One pass over the text: checks the 8-4-4-4-12 shape (as UUID_PATTERN) and writes the 16 bytes into `out`.
 * Returns false, with `out` partly written, when the text is not a UUID.
 */
function writeUuidBytes (uuid: string, out: Buffer): boolean {
  if (uuid.length !== 36) return false
  for (const at of HYPHEN_AT) if (uuid.charCodeAt(at) !== 0x2d) return false
  let byte = 0
  for (let i = 0; i < 36; i += 2) {
    if (i === 8 || i === 13 || i === 18 || i === 23) i++
    const high = hexValue(uuid.charCodeAt(i))
    const low = hexValue(uuid.charCodeAt(i + 1))
    if (high === -1 || low === -1) return false
    out[byte++] = high * 16 + low
  }
  return true
}

/** The value of one hex digit's char code (either case), -1 for anything else. */
function hexValue (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  return -1
}

export function bytesToUuid (bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new TypeError(`a UUID has 16 bytes, got ${bytes.length}`)
  const hex = Buffer.from(bytes).toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** Microsoft GUID byte order (first three groups little-endian), used for PlayReady KIDs. */
export function uuidToGuidBytes (uuid: string): Buffer {
  return swapGuidBytes(uuidToBytes(uuid))
}

export function guidBytesToUuid (bytes: Uint8Array): string {
  return bytesToUuid(swapGuidBytes(Buffer.from(bytes)))
}

/** Which byte of the big-endian UUID each GUID byte is. */
const GUID_ORDER = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15]

function swapGuidBytes (b: Buffer): Buffer {
  if (b.length !== 16) throw new TypeError(`a GUID has 16 bytes, got ${b.length}`)
  const out = Buffer.allocUnsafe(16)
  for (let i = 0; i < 16; i++) out[i] = b[GUID_ORDER[i]]
  return out
}
