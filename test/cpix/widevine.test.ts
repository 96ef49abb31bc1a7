// Tests for src/cpix/widevine.ts: WidevinePsshData encode/decode against shaka, PallyCon, W3C, gpac, pycpix and AWS vectors.
import t from 'tap'
import { buildPsshBox, parsePsshBox } from '../../src/cpix/pssh.js'
import { buildWidevinePsshBox, decodeWidevinePsshData, encodeWidevinePsshData, type WidevinePsshData } from '../../src/cpix/widevine.js'
import { WIDEVINE } from '../../src/cpix/systems.js'

const b64 = (s: string): Buffer => Buffer.from(s, 'base64')
const hex = (s: string): Buffer => Buffer.from(s, 'hex')

const SHAKA_KID1 = '6b657969-6431-7e7e-7e7e-7e7e7e7e7e7e' // "keyid1~~~~~~~~~~"
const SHAKA_KID2 = '6b657969-6432-7e7e-7e7e-7e7e7e7e7e7e' // "keyid2~~~~~~~~~~"
const SHAKA_WV2_HEX = '000000447073736800000000edef8ba979d64acea3c827dcd51d21ed0000002412106b65796964317e7e7e7e7e7e7e7e7e7e12106b65796964327e7e7e7e7e7e7e7e7e7e'
const SHAKA_WV2_CBCS_HEX = '0000004a7073736800000000edef8ba979d64acea3c827dcd51d21ed0000002a12106b65796964317e7e7e7e7e7e7e7e7e7e12106b65796964327e7e7e7e7e7e7e7e7e7e48f3c6899b06'

interface Vector { name: string; box: string; dataHex: string; expected: WidevinePsshData }
const VECTORS: Vector[] = [
  {
    name: 'A1 PallyCon KMS (doverunner README)',
    box: 'AAAATHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAACwIARIQy7w4trUNq1P4Jj4GtzgqoxoMaW5rYWVudHdvcmtzIghkZW1vdGVzdA==',
    dataHex: '08011210cbbc38b6b50dab53f8263e06b7382aa31a0c696e6b61656e74776f726b73220864656d6f74657374',
    expected: { algorithmAesCtr: true, kids: ['cbbc38b6-b50d-ab53-f826-3e06b7382aa3'], provider: 'inkaentworks', contentId: Buffer.from('demotest') }
  },
  {
    name: 'C1 PallyCon Anevia DASH',
    box: 'AAAAUHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAADAIARIQy8Lu3UKE/ZTBew1vtWwUaxoMaW5rYWVudHdvcmtzIgh0ZXN0LWNpZCoCSEQ=',
    dataHex: '08011210cbc2eedd4284fd94c17b0d6fb56c146b1a0c696e6b61656e74776f726b732208746573742d6369642a024844',
    expected: { algorithmAesCtr: true, kids: ['cbc2eedd-4284-fd94-c17b-0d6fb56c146b'], provider: 'inkaentworks', contentId: Buffer.from('test-cid'), trackType: 'HD' }
  },
  {
    name: 'C6 PallyCon DASH live, period 128',
    box: 'AAAAaHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAAEgIARIQa6yOww7jN589ISkLOivJwxoMaW5rYWVudHdvcmtzIh1jcGl4LXRlc3QtY2lkMDAwMDAwMDAwMDAwMDA4MCoCSEQ4gAE=',
    dataHex: '080112106bac8ec30ee3379f3d21290b3a2bc9c31a0c696e6b61656e74776f726b73221d637069782d746573742d636964303030303030303030303030303038302a024844388001',
    expected: { algorithmAesCtr: true, kids: ['6bac8ec3-0ee3-379f-3d21-290b3a2bc9c3'], provider: 'inkaentworks', contentId: Buffer.from('cpix-test-cid0000000000000080'), trackType: 'HD', cryptoPeriodIndex: 128 }
  },
  {
    name: 'C7 PallyCon DASH VOD',
    box: 'AAAAVXBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAADUIARIQEup1PCPnvAJEdLK5dsQ76xoMaW5rYWVudHdvcmtzIg1jcGl4LXRlc3QtY2lkKgJIRA==',
    dataHex: '0801121012ea753c23e7bc024474b2b976c43beb1a0c696e6b61656e74776f726b73220d637069782d746573742d6369642a024844',
    expected: { algorithmAesCtr: true, kids: ['12ea753c-23e7-bc02-4474-b2b976c43beb'], provider: 'inkaentworks', contentId: Buffer.from('cpix-test-cid'), trackType: 'HD' }
  },
  {
    name: 'C2 gpac (EZDRM style, protection_scheme cenc)',
    box: 'AAAAP3Bzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAAB8SEAEjRWeJASNFZ4kBI0VniQEaBWV6ZHJtSOPclZsG',
    dataHex: '1210012345678901234567890123456789011a05657a64726d48e3dc959b06',
    expected: { kids: ['01234567-8901-2345-6789-012345678901'], provider: 'ezdrm', protectionScheme: 'cenc' }
  },
  {
    name: 'C3 pycpix (v1 box, 5 key_ids)',
    box: 'AAAAxnBzc2gBAAAA7e+LqXnWSs6jyCfc1R0h7QAAAAINw+xPdoNUi4HnPGTlguE2FEe37S9mVyu9EwbOfPNhDQAAAIISEBRHt+0vZlcrvRMGznzzYQ0SEFrGoR6qL17Vv2aMQByBNMoSEG7hNRbI51h7rp9+zT6Zom4SEPnsEqYaJl1Hj4MzTjp40scSEA3D7E92g1SLgec8ZOWC4TYaDXdpZGV2aW5lX3Rlc3QiEXVuaWZpZWQtc3RyZWFtaW5nSOPclZsG',
    dataHex: '12101447b7ed2f66572bbd1306ce7cf3610d12105ac6a11eaa2f5ed5bf668c401c8134ca12106ee13516c8e7587bae9f7ecd3e99a26e1210f9ec12a61a265d478f83334e3a78d2c712100dc3ec4f7683548b81e73c64e582e1361a0d7769646576696e655f746573742211756e69666965642d73747265616d696e6748e3dc959b06',
    expected: {
      kids: ['1447b7ed-2f66-572b-bd13-06ce7cf3610d', '5ac6a11e-aa2f-5ed5-bf66-8c401c8134ca', '6ee13516-c8e7-587b-ae9f-7ecd3e99a26e', 'f9ec12a6-1a26-5d47-8f83-334e3a78d2c7', '0dc3ec4f-7683-548b-81e7-3c64e582e136'],
      provider: 'widevine_test',
      contentId: Buffer.from('unified-streaming'),
      protectionScheme: 'cenc'
    }
  },
  {
    name: 'C4 AWS SPEKE v1 docs (empty policy field)',
    box: 'AAAAanBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAAEoIARIQeSIcblaNbb7Dji6sAtKZzRoNd2lkZXZpbmVfdGVzdCIfa2V5LWlkOmVTSWNibGFOYmI3RGppNnNBdEtaelE9PSoCU0QyAA==',
    dataHex: '0801121079221c6e568d6dbec38e2eac02d299cd1a0d7769646576696e655f74657374221f6b65792d69643a65534963626c614e626237446a69367341744b5a7a513d3d2a0253443200',
    expected: { algorithmAesCtr: true, kids: ['79221c6e-568d-6dbe-c38e-2eac02d299cd'], provider: 'widevine_test', contentId: Buffer.from('key-id:eSIcblaNbb7Dji6sAtKZzQ=='), trackType: 'SD', policy: '' }
  },
  {
    name: 'B1 W3C EME mp4-basic (castlabs, policy)',
    box: 'AAAAcXBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAAFEIARIQrRP56ivmmLh19QSo48zqZBoIY2FzdGxhYnMiKGV5SmhjM05sZEVsa0lqb2laVzFsTFhSbGMzUXRjMmx1WjJ4bEluMD0yB2RlZmF1bHQ=',
    dataHex: '08011210ad13f9ea2be698b875f504a8e3ccea641a08636173746c616273222865794a6863334e6c64456c6b496a6f695a57316c4c58526c6333517463326c755a32786c496e303d320764656661756c74',
    expected: { algorithmAesCtr: true, kids: ['ad13f9ea-2be6-98b8-75f5-04a8e3ccea64'], provider: 'castlabs', contentId: Buffer.from('eyJhc3NldElkIjoiZW1lLXRlc3Qtc2luZ2xlIn0='), policy: 'default' }
  }
]

t.test('real-world protobufs decode to the listed fields and re-encode to the same bytes', async (t) => {
  for (const v of VECTORS) {
    const box = parsePsshBox(b64(v.box))
    t.equal(box.systemId, WIDEVINE, `${v.name}: system id`)
    t.equal(box.data.toString('hex'), v.dataHex, `${v.name}: data`)
    const decoded = decodeWidevinePsshData(box.data)
    t.same(decoded, v.expected, `${v.name}: fields`)
    t.strictSame(Object.keys(decoded).sort(), Object.keys(v.expected).sort(), `${v.name}: no extra fields`)
    t.equal(encodeWidevinePsshData(decoded).toString('hex'), v.dataHex, `${v.name}: re-encodes`)
    // rebuild with the original header KIDs: pycpix's v1 box lists 2 KIDs in the header but 5 in the protobuf
    t.equal(buildPsshBox({ ...box, data: encodeWidevinePsshData(decoded) }).toString('base64'), v.box, `${v.name}: box re-encodes`)
    if (box.version === 0) t.equal(buildWidevinePsshBox(decoded).toString('base64'), v.box, `${v.name}: buildWidevinePsshBox`)
  }
})

t.test('shaka-packager generator vectors', async (t) => {
  t.equal(buildWidevinePsshBox({ kids: [SHAKA_KID1, SHAKA_KID2] }).toString('hex'), SHAKA_WV2_HEX)
  t.equal(buildWidevinePsshBox({ kids: [SHAKA_KID1, SHAKA_KID2], protectionScheme: 'cbcs' }).toString('hex'), SHAKA_WV2_CBCS_HEX)
  t.same(decodeWidevinePsshData(hex(SHAKA_WV2_CBCS_HEX).subarray(32)), { kids: [SHAKA_KID1, SHAKA_KID2], protectionScheme: 'cbcs' })
})

t.test('DASH-IF Complex.xml Widevine box (key_id + cenc)', async (t) => {
  const box = buildWidevinePsshBox({ kids: ['b4c3188b-eddd-453d-9bc2-1cbca7566239'], protectionScheme: 'cenc' })
  t.equal(box.toString('base64'), 'AAAAOHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAABgSELTDGIvt3UU9m8IcvKdWYjlI49yVmwY=')
})

t.test('field encodings from the format table', async (t) => {
  const tail = (d: Partial<WidevinePsshData>): string => encodeWidevinePsshData({ kids: [], ...d }).toString('hex')
  t.equal(tail({ protectionScheme: 'cenc' }), '48e3dc959b06')
  t.equal(tail({ protectionScheme: 'cbcs' }), '48f3c6899b06')
  t.equal(tail({ protectionScheme: 'cbc1' }), '48b1c6899b06')
  t.equal(tail({ protectionScheme: 'cens' }), '48f3dc959b06')
  t.equal(tail({ cryptoPeriodIndex: 128 }), '388001')
  t.equal(tail({ cryptoPeriodIndex: 0 }), '3800')
  t.equal(tail({ algorithmAesCtr: false }), '0800')
  t.equal(tail({ cryptoPeriodSeconds: 10, groupedLicense: Buffer.from([1, 2]) }), '42020102500a')
  for (const scheme of ['cenc', 'cbc1', 'cens', 'cbcs'] as const) {
    t.equal(decodeWidevinePsshData(encodeWidevinePsshData({ kids: [], protectionScheme: scheme })).protectionScheme, scheme)
  }
  t.equal(tail({ cryptoPeriodIndex: 0xffffffff }), '38ffffffff0f')
  t.equal(decodeWidevinePsshData(hex('38ffffffff0f')).cryptoPeriodIndex, 0xffffffff)
  t.same(decodeWidevinePsshData(Buffer.alloc(0)), { kids: [] })
})

t.test('unknown fields of every wire type are skipped', async (t) => {
  const data = Buffer.concat([
    hex('7801'), // field 15 varint 1
    hex('1210cbbc38b6b50dab53f8263e06b7382aa3'),
    hex('a20103616263'), // field 20, length 3 "abc" (two-byte key)
    hex('7d01020304'), // field 15 fixed32
    hex('790102030405060708'), // field 15 fixed64
    hex('800180808080808080808001'), // field 16, 10-byte varint
    hex('1a0c696e6b61656e74776f726b73')
  ])
  t.same(decodeWidevinePsshData(data), { kids: ['cbbc38b6-b50d-ab53-f826-3e06b7382aa3'], provider: 'inkaentworks' })
})

t.test('malformed protobufs throw precise errors', async (t) => {
  t.throws(() => decodeWidevinePsshData(hex('1210cbbc38b6b50dab53f826')), /field 2 at offset 0 declares 16 bytes but only 10 are left/)
  t.throws(() => decodeWidevinePsshData(hex('1208cbbc38b6b50dab53')), /key_id must be 16 bytes, got 8/)
  t.throws(() => decodeWidevinePsshData(hex('3880')), /truncated varint/)
  t.throws(() => decodeWidevinePsshData(hex('1001')), /field 2 \(key_id\) at offset 0 has wire type 0, expected 2/)
  t.throws(() => decodeWidevinePsshData(hex('4a0163')), /field 9 \(protection_scheme\) at offset 0 has wire type 2, expected 0/)
  t.throws(() => decodeWidevinePsshData(hex('7b')), /field 15 at offset 0 has unsupported wire type 3/)
  t.throws(() => decodeWidevinePsshData(hex('7f')), /unsupported wire type 7/)
  t.throws(() => decodeWidevinePsshData(hex('0001')), /field number 0/)
  t.throws(() => decodeWidevinePsshData(hex('4801')), /protection_scheme 0x00000001 is not cenc, cbc1, cens or cbcs/)
  t.throws(() => decodeWidevinePsshData(hex('0802')), /algorithm has unknown value 2/)
  t.throws(() => decodeWidevinePsshData(hex('1a02c328')), /provider is not valid UTF-8/)
  t.throws(() => decodeWidevinePsshData(hex('38808080808001')), /crypto_period_index .* does not fit uint32/)
  t.throws(() => decodeWidevinePsshData(hex('7d0102')), /truncated \(fixed32\)/)
  t.throws(() => decodeWidevinePsshData(hex('08ffffffffffffffffffff01')), /longer than 10 bytes/)
})

t.test('encoder validates its input', async (t) => {
  t.throws(() => encodeWidevinePsshData({ kids: ['cbbc38b6b50dab53f8263e06b7382aa3'] }), /not a UUID/)
  t.throws(() => encodeWidevinePsshData({ kids: [], cryptoPeriodIndex: -1 }), /cryptoPeriodIndex must be a uint32/)
  t.throws(() => encodeWidevinePsshData({ kids: [], cryptoPeriodIndex: 2 ** 32 }), /cryptoPeriodIndex must be a uint32/)
  t.throws(() => encodeWidevinePsshData({ kids: [], cryptoPeriodSeconds: 1.5 }), /cryptoPeriodSeconds must be a uint32/)
})

t.test('pycpix v1 box: header KIDs are a subset of the protobuf key_ids', async (t) => {
  const box = parsePsshBox(b64(VECTORS[5].box))
  t.equal(box.kids.length, 2)
  const protoKids = decodeWidevinePsshData(box.data).kids
  t.equal(protoKids.length, 5)
  t.ok(box.kids.every((kid) => protoKids.includes(kid)))
  t.not(buildWidevinePsshBox(decodeWidevinePsshData(box.data), 1).toString('base64'), VECTORS[5].box)
})

t.test('v1 box carries the KIDs in its header too', async (t) => {
  const d: WidevinePsshData = { kids: ['cbbc38b6-b50d-ab53-f826-3e06b7382aa3'], provider: 'inkaentworks' }
  const box = parsePsshBox(buildWidevinePsshBox(d, 1))
  t.equal(box.version, 1)
  t.same(box.kids, d.kids)
  t.same(decodeWidevinePsshData(box.data), d)
})

/** The former encoder: one Buffer per varint and per field, concatenated. */
function referenceEncode (d: WidevinePsshData): Buffer {
  const varint = (value: number): Buffer => {
    const bytes: number[] = []
    let v = value
    while (v >= 0x80) { bytes.push((v % 128) | 0x80); v = Math.floor(v / 128) }
    bytes.push(v)
    return Buffer.from(bytes)
  }
  const varintField = (field: number, value: number): Buffer => Buffer.concat([varint(field * 8), varint(value)])
  const bytesField = (field: number, value: Buffer): Buffer => Buffer.concat([varint(field * 8 + 2), varint(value.length), value])
  const parts: Buffer[] = []
  if (d.algorithmAesCtr !== undefined) parts.push(varintField(1, d.algorithmAesCtr ? 1 : 0))
  for (const kid of d.kids) parts.push(bytesField(2, Buffer.from(kid.replace(/-/g, ''), 'hex')))
  if (d.provider !== undefined) parts.push(bytesField(3, Buffer.from(d.provider, 'utf8')))
  if (d.contentId !== undefined) parts.push(bytesField(4, d.contentId))
  if (d.trackType !== undefined) parts.push(bytesField(5, Buffer.from(d.trackType, 'utf8')))
  if (d.policy !== undefined) parts.push(bytesField(6, Buffer.from(d.policy, 'utf8')))
  if (d.cryptoPeriodIndex !== undefined) parts.push(varintField(7, d.cryptoPeriodIndex))
  if (d.groupedLicense !== undefined) parts.push(bytesField(8, d.groupedLicense))
  if (d.protectionScheme !== undefined) parts.push(varintField(9, Buffer.from(d.protectionScheme, 'latin1').readUInt32BE(0)))
  if (d.cryptoPeriodSeconds !== undefined) parts.push(varintField(10, d.cryptoPeriodSeconds))
  return Buffer.concat(parts)
}

t.test('the one-buffer encoder writes what the field-by-field encoder wrote, for random data', async t => {
  const { randomBytes, randomInt } = await import('node:crypto')
  const pick = <T>(value: T): T | undefined => randomInt(2) === 0 ? undefined : value
  const uint32 = (): number => [0, 1, 127, 128, 16383, 16384, 0xffffffff, randomInt(0xffffffff)][randomInt(8)]
  for (let i = 0; i < 300; i++) {
    const kid = (): string => randomBytes(16).toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-')
    const d: WidevinePsshData = {
      algorithmAesCtr: pick(randomInt(2) === 1),
      kids: Array.from({ length: randomInt(4) }, kid),
      provider: pick('prövider'.repeat(randomInt(30))),
      contentId: pick(randomBytes(randomInt(300))),
      trackType: pick('HD'),
      policy: pick(''),
      cryptoPeriodIndex: pick(uint32()),
      groupedLicense: pick(randomBytes(randomInt(200))),
      protectionScheme: pick((['cenc', 'cbc1', 'cens', 'cbcs'] as const)[randomInt(4)]),
      cryptoPeriodSeconds: pick(uint32())
    }
    t.same(encodeWidevinePsshData(d), referenceEncode(d))
  }
  t.throws(() => encodeWidevinePsshData({ kids: [], cryptoPeriodIndex: -1 }), /uint32/)
  t.throws(() => encodeWidevinePsshData({ kids: ['not-a-uuid'] }), /not a UUID/)
})
