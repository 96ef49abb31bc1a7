// Specification of signallingReader: what decodeBase64, parsePsshBoxes, parseHlsTag, extractCencPssh, parseWrmHeader answer, read once.
import t from 'tap'
import { decodeBase64, encodeBase64 } from '../../src/cpix/base64.js'
import { cencPsshFragment, extractCencPssh, hlsKeyTag, parseHlsTag } from '../../src/cpix/hls.js'
import { buildWrmHeader, parseWrmHeader } from '../../src/cpix/playready.js'
import { buildPsshBox, parsePsshBoxes } from '../../src/cpix/pssh.js'
import { signallingReader } from '../../src/cpix/signalling-reader.js'
import { WIDEVINE } from '../../src/cpix/systems.js'
import { makeElement } from '../../src/cpix/xml.js'

const KID = '6b657969-6431-7e7e-7e7e-7e7e7e7e7e7e'
const system = makeElement('cpix:DRMSystem', 'urn:dashif:org:cpix')
const hlsElement = makeElement('cpix:HLSSignalingData', 'urn:dashif:org:cpix')
const box = buildPsshBox({ systemId: WIDEVINE, kids: [KID], data: Buffer.from('data') })
const pssh = box.toString('base64')
const tag = hlsKeyTag('media', [['METHOD', 'SAMPLE-AES'], ['URI', 'skd://x'], ['KEYFORMAT', 'com.apple.streamingkeydelivery']])

t.test('answers what the functions it stands for answer', async (t) => {
  const reader = signallingReader()
  t.same(reader.bytes(system, 'PSSH', pssh), decodeBase64(pssh))
  t.equal(reader.bytes(system, 'URIExtXKey', 'not base64!'), undefined)
  t.same(reader.psshBoxes(system, pssh), parsePsshBoxes(box))
  t.equal(reader.text(hlsElement, 'HLSSignalingData', encodeBase64(tag)), tag)
  t.same(reader.hlsTag(hlsElement, encodeBase64(tag)), parseHlsTag(tag))
  const fragment = encodeBase64(cencPsshFragment(box))
  t.equal(reader.cencPssh(system, fragment), extractCencPssh(cencPsshFragment(box)))
  const header = buildWrmHeader({ kids: [{ kid: KID }], scheme: 'cbcs' })
  t.same(reader.wrmHeader(header), parseWrmHeader(header))
})

t.test('reads each value once, and again when the element holds another value', async (t) => {
  const reader = signallingReader()
  const first = reader.psshBoxes(system, pssh)
  t.equal(reader.psshBoxes(system, pssh), first, 'the same value: the same reading')
  t.equal(reader.hlsTag(hlsElement, encodeBase64(tag)), reader.hlsTag(hlsElement, encodeBase64(tag)))
  const other = buildPsshBox({ systemId: WIDEVINE, data: Buffer.from('other') })
  t.same(reader.psshBoxes(system, other.toString('base64')), parsePsshBoxes(other), 'a changed value is read anew')
  t.not(signallingReader().psshBoxes(system, pssh), first, 'a new reader (a new request) reads again')
})

t.test('a read that throws throws the same again', async (t) => {
  const reader = signallingReader()
  const broken = encodeBase64('#EXT-X-KEY:URI="x"')
  t.throws(() => reader.hlsTag(hlsElement, broken), /no METHOD attribute/)
  t.throws(() => reader.hlsTag(hlsElement, broken), /no METHOD attribute/)
  t.throws(() => reader.hlsTag(hlsElement, 'not base64!'), /not an HLS key tag/, 'text that does not decode is read as empty')
  t.throws(() => reader.psshBoxes(system, encodeBase64('short')), /truncated/)
})

t.test('what a caller wrote is read as written, ASCII only', async (t) => {
  const reader = signallingReader()
  const written = makeElement('cpix:HLSSignalingData', 'urn:dashif:org:cpix')
  const parsed = parseHlsTag(tag)
  reader.wrote(written, 'HLSSignalingData', { base64: encodeBase64(tag), text: tag, tag: parsed })
  t.equal(reader.text(written, 'HLSSignalingData', encodeBase64(tag)), tag)
  t.equal(reader.hlsTag(written, encodeBase64(tag)), parsed, 'the tag handed over, not a new parse')
  t.same(reader.hlsTag(written, encodeBase64(`${tag},IV=0x01`)).attributes.IV, '0x01', 'another value is read anew')

  const text = '<cenc:pssh>é</cenc:pssh>'
  reader.wrote(system, 'ContentProtectionData', { base64: encodeBase64(text), text, cencPssh: 'ignored' })
  t.throws(() => reader.cencPssh(system, encodeBase64(text)), /not base64/, 'non-ASCII text is decoded and read, not taken as handed over')
})
