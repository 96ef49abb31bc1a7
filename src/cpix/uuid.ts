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
  if (!isUuid(uuid)) throw new TypeError(`not a UUID: ${uuid}`)
  return Buffer.from(uuid.replace(/-/g, ''), 'hex')
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

function swapGuidBytes (b: Buffer): Buffer {
  if (b.length !== 16) throw new TypeError(`a GUID has 16 bytes, got ${b.length}`)
  return Buffer.from([b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], ...b.subarray(8)])
}
