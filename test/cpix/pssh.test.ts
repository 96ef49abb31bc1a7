// Tests for src/cpix/pssh.ts: pssh box building/parsing against shaka-packager, W3C EME and PallyCon vectors.
import t from 'tap'
import { buildPsshBox, parsePsshBox, parsePsshBoxes } from '../../src/cpix/pssh.js'
import { W3C_COMMON as COMMON_SYSTEM_ID, isProtectionScheme } from '../../src/cpix/systems.js'

const b64 = (s: string): Buffer => Buffer.from(s, 'base64')
const hex = (s: string): Buffer => Buffer.from(s, 'hex')

// shaka-packager pssh_generator_unittest: KIDs are the ASCII bytes "keyid1~~~~~~~~~~" / "keyid2~~~~~~~~~~"
const SHAKA_KID1 = '6b657969-6431-7e7e-7e7e-7e7e7e7e7e7e'
const SHAKA_KID2 = '6b657969-6432-7e7e-7e7e-7e7e7e7e7e7e'
const SHAKA_COMMON_HEX = '0000004470737368010000001077efecc0b24d02ace33c1e52e2fb4b000000026b65796964317e7e7e7e7e7e7e7e7e7e6b65796964327e7e7e7e7e7e7e7e7e7e00000000'
const SHAKA_WV2_HEX = '000000447073736800000000edef8ba979d64acea3c827dcd51d21ed0000002412106b65796964317e7e7e7e7e7e7e7e7e7e12106b65796964327e7e7e7e7e7e7e7e7e7e'
// shaka cpix_parser_unittest: arbitrary system id, v1, one KID, data "eDash packager"
const SHAKA_CPIX_V1 = 'AAAAQnBzc2gBAAAAAgMFBwsNERMXHR8lKSsvNQAAAAEBAQIDBQgNFSI3WZDpAAAAAAAADmVEYXNoIHBhY2thZ2Vy'
// PallyCon KMS (doverunner client README), Widevine v0, 76 bytes
const A1_WV = 'AAAATHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAACwIARIQy7w4trUNq1P4Jj4GtzgqoxoMaW5rYWVudHdvcmtzIghkZW1vdGVzdA=='
// pycpix test_full_widevine_cpix: Widevine v1 with 2 header KIDs, 198 bytes
const C3_WV = 'AAAAxnBzc2gBAAAA7e+LqXnWSs6jyCfc1R0h7QAAAAINw+xPdoNUi4HnPGTlguE2FEe37S9mVyu9EwbOfPNhDQAAAIISEBRHt+0vZlcrvRMGznzzYQ0SEFrGoR6qL17Vv2aMQByBNMoSEG7hNRbI51h7rp9+zT6Zom4SEPnsEqYaJl1Hj4MzTjp40scSEA3D7E92g1SLgec8ZOWC4TYaDXdpZGV2aW5lX3Rlc3QiEXVuaWZpZWQtc3RyZWFtaW5nSOPclZsG'
// W3C web-platform-tests 'mp4-basic' initData: Widevine (113) + PlayReady (794) boxes concatenated
const B1 = 'AAAAcXBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAAFEIARIQrRP56ivmmLh19QSo48zqZBoIY2FzdGxhYnMiKGV5SmhjM05sZEVsa0lqb2laVzFsTFhSbGMzUXRjMmx1WjJ4bEluMD0yB2RlZmF1bHQAAAMacHNzaAAAAACaBPB5mEBChquS5lvgiF+VAAAC+voCAAABAAEA8AI8AFcAUgBNAEgARQBBAEQARQBSACAAeABtAGwAbgBzAD0AIgBoAHQAdABwADoALwAvAHMAYwBoAGUAbQBhAHMALgBtAGkAYwByAG8AcwBvAGYAdAAuAGMAbwBtAC8ARABSAE0ALwAyADAAMAA3AC8AMAAzAC8AUABsAGEAeQBSAGUAYQBkAHkASABlAGEAZABlAHIAIgAgAHYAZQByAHMAaQBvAG4APQAiADQALgAwAC4AMAAuADAAIgA+ADwARABBAFQAQQA+ADwAUABSAE8AVABFAEMAVABJAE4ARgBPAD4APABLAEUAWQBMAEUATgA+ADEANgA8AC8ASwBFAFkATABFAE4APgA8AEEATABHAEkARAA+AEEARQBTAEMAVABSADwALwBBAEwARwBJAEQAPgA8AC8AUABSAE8AVABFAEMAVABJAE4ARgBPAD4APABLAEkARAA+ADYAdgBrAFQAcgBlAFkAcgB1AEoAaAAxADkAUQBTAG8ANAA4AHoAcQBaAEEAPQA9ADwALwBLAEkARAA+ADwAQwBIAEUAQwBLAFMAVQBNAD4AagBZAEYATgBmADAAeQBmADQAaQBzAD0APAAvAEMASABFAEMASwBTAFUATQA+ADwATABBAF8AVQBSAEwAPgBoAHQAdABwADoALwAvAHAAbABhAHkAcgBlAGEAZAB5AC4AZABpAHIAZQBjAHQAdABhAHAAcwAuAG4AZQB0AC8AcAByAC8AcwB2AGMALwByAGkAZwBoAHQAcwBtAGEAbgBhAGcAZQByAC4AYQBzAG0AeAA/AFAAbABhAHkAUgBpAGcAaAB0AD0AMQAmAGEAbQBwADsAVQBzAGUAUwBpAG0AcABsAGUATgBvAG4AUABlAHIAcwBpAHMAdABlAG4AdABMAGkAYwBlAG4AcwBlAD0AMQA8AC8ATABBAF8AVQBSAEwAPgA8AC8ARABBAFQAQQA+ADwALwBXAFIATQBIAEUAQQBEAEUAUgA+AA=='

t.test('builds the W3C common (ClearKey) v1 box like shaka', async (t) => {
  const box = buildPsshBox({ systemId: COMMON_SYSTEM_ID, kids: [SHAKA_KID1, SHAKA_KID2], data: Buffer.alloc(0) })
  t.equal(box.toString('hex'), SHAKA_COMMON_HEX)
  t.equal(buildPsshBox({ systemId: COMMON_SYSTEM_ID.toUpperCase(), version: 1, kids: [SHAKA_KID1.toUpperCase(), SHAKA_KID2], data: Buffer.alloc(0) }).toString('hex'), SHAKA_COMMON_HEX, 'upper-case ids are normalised')
})

t.test('builds a v0 Widevine box around given data like shaka', async (t) => {
  const data = hex(SHAKA_WV2_HEX).subarray(32)
  const box = buildPsshBox({ systemId: 'edef8ba9-79d6-4ace-a3c8-27dcd51d21ed', data })
  t.equal(box.toString('hex'), SHAKA_WV2_HEX)
  t.equal(box.length, 68)
})

t.test('parses the shaka cpix_parser v1 box', async (t) => {
  t.same(parsePsshBoxes(b64(SHAKA_CPIX_V1)), [{
    version: 1,
    systemId: '02030507-0b0d-1113-171d-1f25292b2f35',
    kids: ['01010203-0508-0d15-2237-5990e9000000'],
    data: Buffer.from('eDash packager')
  }])
})

t.test('parses real-world boxes and rebuilds them byte for byte', async (t) => {
  const a1 = parsePsshBox(b64(A1_WV))
  t.equal(a1.version, 0)
  t.equal(a1.systemId, 'edef8ba9-79d6-4ace-a3c8-27dcd51d21ed')
  t.same(a1.kids, [])
  t.equal(a1.data.length, 44)
  t.equal(a1.data.toString('hex'), '08011210cbbc38b6b50dab53f8263e06b7382aa31a0c696e6b61656e74776f726b73220864656d6f74657374')

  const c3 = parsePsshBox(b64(C3_WV))
  t.equal(c3.version, 1)
  t.same(c3.kids, ['0dc3ec4f-7683-548b-81e7-3c64e582e136', '1447b7ed-2f66-572b-bd13-06ce7cf3610d'])
  t.equal(c3.data.length, 130)

  for (const [name, vector] of [['A1', A1_WV], ['C3', C3_WV], ['shaka cpix', SHAKA_CPIX_V1], ['shaka common', Buffer.from(SHAKA_COMMON_HEX, 'hex').toString('base64')]]) {
    const parsed = parsePsshBox(b64(vector))
    t.equal(buildPsshBox(parsed).toString('base64'), vector, `${name} round-trips`)
  }
})

t.test('parses concatenated boxes (EME initData)', async (t) => {
  const boxes = parsePsshBoxes(b64(B1))
  t.equal(boxes.length, 2)
  t.equal(boxes[0].systemId, 'edef8ba9-79d6-4ace-a3c8-27dcd51d21ed')
  t.equal(boxes[0].data.length, 81)
  t.equal(boxes[1].systemId, '9a04f079-9840-4286-ab92-e65be0885f95')
  t.equal(boxes[1].data.length, 762)
  t.equal(Buffer.concat(boxes.map((b) => buildPsshBox(b))).toString('base64'), B1)
  t.throws(() => parsePsshBox(b64(B1)), /expected exactly one pssh box, found 2/)
})

t.test('rejects malformed boxes with precise messages', async (t) => {
  const a1 = b64(A1_WV) // 76 bytes, v0, DataSize 44
  t.throws(() => parsePsshBoxes(Buffer.alloc(0)), /input is empty/)
  t.throws(() => parsePsshBoxes(a1.subarray(0, 75)), { message: 'pssh box is truncated: size 76 but only 75 bytes are left' })
  t.throws(() => parsePsshBoxes(a1.subarray(0, 5)), /truncated: 5 bytes left, a box header needs 8/)

  const tooBig = Buffer.concat([a1, Buffer.alloc(2)])
  tooBig.writeUInt32BE(78, 0)
  t.throws(() => parsePsshBoxes(tooBig), { message: 'pssh box size 78 does not match 76 bytes (version 0, 0 KIDs, DataSize 44)' })

  const dataTooLong = Buffer.from(a1)
  dataTooLong.writeUInt32BE(45, 28)
  t.throws(() => parsePsshBoxes(dataTooLong), /pssh box size 76 does not match 77 bytes/)

  const wrongType = Buffer.from(a1)
  wrongType.write('moov', 4, 'latin1')
  t.throws(() => parsePsshBoxes(wrongType), /has type 'moov', expected 'pssh'/)

  const v2 = Buffer.from(a1)
  v2[8] = 2
  t.throws(() => parsePsshBoxes(v2), /unsupported version 2/)

  const flags = Buffer.from(a1)
  flags[11] = 1
  t.throws(() => parsePsshBoxes(flags), /flags 0x000001, expected 0/)

  const kidCount = b64(C3_WV)
  kidCount.writeUInt32BE(100, 28)
  t.throws(() => parsePsshBoxes(kidCount), /size 198 is too small for 100 KIDs/)

  t.throws(() => parsePsshBoxes(Buffer.concat([a1, Buffer.from([0, 0, 0])])), /pssh box at offset 76 is truncated: 3 bytes left/)
  t.throws(() => parsePsshBoxes(Buffer.concat([a1, a1.subarray(0, 40)])), /pssh box at offset 76 is truncated: size 76 but only 40 bytes are left/)

  const tiny = Buffer.from('0000001070737368000000000000000000', 'hex').subarray(0, 16)
  t.throws(() => parsePsshBoxes(tiny), /size 16 is smaller than the minimum of 32 bytes/)
  const largesize = Buffer.from(a1)
  largesize.writeUInt32BE(1, 0)
  t.throws(() => parsePsshBoxes(largesize), /64-bit largesize/)
})

t.test('rejects invalid build input', async (t) => {
  t.throws(() => buildPsshBox({ systemId: COMMON_SYSTEM_ID, version: 0, kids: [SHAKA_KID1], data: Buffer.alloc(0) }), /version 0 pssh box cannot carry KIDs/)
  t.throws(() => buildPsshBox({ systemId: 'not-a-uuid', data: Buffer.alloc(0) }), /not a UUID/)
  t.throws(() => buildPsshBox({ systemId: COMMON_SYSTEM_ID, kids: ['1234'], data: Buffer.alloc(0) }), /not a UUID: 1234/)
})

t.test('protection scheme guard', async (t) => {
  t.ok(isProtectionScheme('cbcs'))
  t.notOk(isProtectionScheme('CBCS'))
  t.notOk(isProtectionScheme('aes128'))
})
