// Request validation: every fixture from a real sender gets the verdict its provenance implies,
// and every AWS suite case its status and string.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodeXmlBytes } from '../../src/cpix/decode.js'
import { parseCpix } from '../../src/cpix/parse.js'
import { validateRequest } from '../../src/cpix/validate.js'
import type { Dialect } from '../../src/protocol.js'
import { ProxyError } from '../../src/errors.js'
import { PROJECT_ROOT, capturedBody, fixture } from '../helpers/fixtures.js'

function verdict (bytes: Buffer, dialect: Dialect): ProxyError | undefined {
  try {
    validateRequest(parseCpix(decodeXmlBytes(bytes)), dialect)
    return undefined
  } catch (err) {
    if (err instanceof ProxyError) return err
    throw err
  }
}

t.test('fixture requests from real senders are accepted', async t => {
  const accepted: Array<[string, Dialect, Buffer]> = [
    ['AWS SPEKE v1 VOD request', 'speke-v1', fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')],
    ['AWS SPEKE v1 live request', 'speke-v1', fixture('aws-speke-v1/aws-doc-v1-live-request-aes128-sampleaes-widevine-playready.xml')],
    ['AWS SPEKE v1 KID override request', 'speke-v1', fixture('aws-speke-v1/aws-doc-v1-kid-override-request-widevine.xml')],
    ['AWS SPEKE v2 KID override request', 'speke-v2.0', fixture('aws-speke-v2/aws-doc-v2-kid-override-request-widevine-cbcs-live.xml')],
    ['PallyCon DASH VOD request', 'pallycon', fixture('pallycon/dash-vod-request.xml')],
    ['PallyCon DASH live rotation request', 'pallycon', fixture('pallycon/dash-live-keyrotation-request.xml')],
    ['PallyCon HLS live FairPlay request', 'pallycon', fixture('pallycon/hls-live-fairplay-request.xml')],
    ['PallyCon HLS VOD FairPlay + NCG AES-128 request', 'pallycon', fixture('pallycon/hls-vod-fairplay-ncgaes128-request.xml')],
    ['Python client: single key WV/PR/FP', 'pallycon', capturedBody('pallycon/python-client/captured-single-key-wv-pr-fp.http')],
    ['Python client: multi-key cbcs', 'pallycon', capturedBody('pallycon/python-client/captured-multi-key-audio-sd-hd-cbcs.http')],
    ['Python client: key rotation', 'pallycon', capturedBody('pallycon/python-client/captured-key-rotation-period128.http')],
    ['Python client: NCG', 'pallycon', capturedBody('pallycon/python-client/captured-ncg-ncghlsaes128.http')],
    ['OvenMediaEngine request (lower-case ids)', 'pallycon', fixture('other/ovenmediaengine-request.xml')],
  ]
  for (const [name, dialect, bytes] of accepted) {
    const err = verdict(bytes, dialect)
    t.equal(err?.message, undefined, `${name} is accepted`)
  }
})

t.test('documents that only look like requests are refused, saying why', async t => {
  const qencode = verdict(fixture('other/qencode-doverunner-request-template.xml'), 'pallycon')
  t.equal(qencode?.status, 400, 'Qencode\'s template still holds {kid} placeholders')
  t.match(qencode?.message, /ContentKey@kid "\{kid\}" is not a UUID/)
  for (const file of ['KeyRotationMultiKeyMulitPeriod', 'KeyRotationMultiKeySinglePeriod']) {
    const err = verdict(fixture(`dashif/${file}.xml`), 'speke-v1')
    t.equal(err?.status, 400, `DASH-IF ${file}: its explicitIV values are UUID strings`)
    t.match(err?.message, /explicitIV of KID 7ce7f10d-a91b-41b9-b331-7999fd1abf4c is not valid base64/)
  }
})

t.test('DASH-IF exchange documents are not key requests: they name no content', async t => {
  for (const file of ['ClearContentKeysOnly', 'Complex', 'EncryptedContentKeys', 'EncryptedContentKeysWithMultipleRecipients', 'EvenMoreComplex', 'Invalid_BadContentKeysSignature', 'Invalid_BadDocumentSignature', 'Invalid_WrongMac', 'RecipientsWithoutContentKeys', 'UsageRulesBasedOnLabels', 'EmptyDocument']) {
    const err = verdict(fixture(`dashif/${file}.xml`), 'speke-v1')
    t.equal(err?.status, 400, `${file} is refused`)
    t.match(err?.message, /Missing content id/, `${file}: the message says what is missing`)
  }
})

t.test('AWS SPEKE v2 verification suite: every case gets its verdict, with AWS\'s exact string where one applies', async t => {
  const dir = join(PROJECT_ROOT, 'test', 'fixtures', 'aws-suite')
  const cases = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as Array<{ file: string, expect: 'accept' | 'reject', spekeVersion: '2.0' | '2.1', expectedStatus?: number, expectedBody?: string }>
  t.ok(cases.length >= 50, `${cases.length} cases`)
  for (const c of cases) {
    const err = verdict(readFileSync(join(dir, c.file)), c.spekeVersion === '2.1' ? 'speke-v2.1' : 'speke-v2.0')
    if (c.expect === 'accept') {
      t.equal(err?.message, undefined, `${c.file} is accepted`)
      continue
    }
    t.ok(err !== undefined && err.status >= 400 && err.status < 500, `${c.file} is refused with a 4xx (${err?.status ?? 'accepted'})`)
    if (c.expectedStatus !== undefined) t.equal(err?.status, c.expectedStatus, `${c.file}: status`)
    if (c.expectedBody !== undefined) t.equal(err?.message, c.expectedBody, `${c.file}: AWS's string`)
  }
})

t.test('SPEKE v2 profile strings, one defect at a time', async t => {
  const base = fixture('aws-speke-v2/aws-doc-v2-kid-override-request-widevine-cbcs-live.xml').toString()
  const cases: Array<[string, string, string]> = [
    ['no contentId', base.replace('contentId="abc123" ', ''), 'Missing CPIX@contentId'],
    ['no version', base.replace('version="2.3" ', ''), 'Missing CPIX@version'],
    ['version 2.0', base.replace('version="2.3"', 'version="2.0"'), 'Unsupported CPIX@version'],
    ['no scheme', base.replace(' commonEncryptionScheme="cbcs"', ''), 'Missing ContentKey@commonEncryptionScheme for KID 11111111-1111-1111-1111-111111111111'],
    ['FairPlay with cenc', base.replace('commonEncryptionScheme="cbcs"', 'commonEncryptionScheme="cenc"').replace('edef8ba9-79d6-4ace-a3c8-27dcd51d21ed', '94ce86fb-07ff-4f43-adb8-93d2fa968ca2'), 'ContentKey@commonEncryptionScheme non compatible with DRMSystem 94ce86fb-07ff-4f43-adb8-93d2fa968ca2'],
    ['no usage rules', base.replace(/<cpix:ContentKeyUsageRuleList>[\s\S]*<\/cpix:ContentKeyUsageRuleList>/, ''), 'Missing CPIX encryption contract'],
    ['no video or audio filter', base.replace('<cpix:VideoFilter />', ''), 'Missing CPIX encryption contract'],
    ['unknown track type', base.replace('intendedTrackType="VIDEO"', 'intendedTrackType="HOLOGRAM"'), 'Requested CPIX encryption contract not supported']
  ]
  for (const [name, xml, message] of cases) {
    const err = verdict(Buffer.from(xml), 'speke-v2.0')
    t.equal(err?.message, message, name)
    t.equal(err?.status, 422, `${name}: 422`)
  }
})

t.test('rules that hold for every caller', async t => {
  const base = fixture('pallycon/dash-vod-request.xml').toString()
  const kid = /kid="([^"]+)"/.exec(base)?.[1] ?? ''
  const cases: Array<[string, string, number, RegExp]> = [
    ['kid not a UUID', base.split(kid).join('not-a-uuid'), 400, /ContentKey@kid "not-a-uuid" is not a UUID/],
    ['content id of 201 characters', base.replace('id="your-content-id"', `id="${'c'.repeat(201)}"`), 422, /201 characters long; PallyCon accepts at most 200/],
    ['no content id', base.replace('id="your-content-id"', ''), 400, /Missing content id/],
    ['no content keys', base.replace(/<cpix:ContentKeyList>[\s\S]*<\/cpix:ContentKeyList>/, '<cpix:ContentKeyList/>').replace(/<cpix:DRMSystemList>[\s\S]*<\/cpix:DRMSystemList>/, ''), 422, /no ContentKey/],
    ['DRMSystem kid with no ContentKey', base.replace(/(<cpix:DRMSystem[^>]*kid=")[^"]+/, '$111111111-1111-1111-1111-111111111111'), 422, /not a ContentKey@kid/],
    ['unknown system id', base.replace(/systemId="[^"]+"/, 'systemId="00000000-0000-0000-0000-000000000000"'), 422, /Unknown DRM systemId 00000000-0000-0000-0000-000000000000/]
  ]
  for (const [name, xml, status, message] of cases) {
    const err = verdict(Buffer.from(xml), name.startsWith('DRMSystem') ? 'speke-v1' : 'pallycon')
    t.equal(err?.status, status, `${name}: status`)
    t.match(err?.message, message, `${name}: message`)
  }
})

t.test('a usage rule\'s intendedTrackType longer than 64 characters is refused for every caller, at 64 it is not', async t => {
  const pallycon = fixture('pallycon/dash-live-keyrotation-request.xml').toString()
  const spekeV2 = fixture('aws-speke-v2/aws-doc-v2-kid-override-request-widevine-cbcs-live.xml').toString()
  const cases: Array<[string, string, Dialect, string]> = [
    ['PallyCon API', pallycon, 'pallycon', 'intendedTrackType="HD"'],
    ['SPEKE v2 (parts of known names)', spekeV2, 'speke-v2.0', 'intendedTrackType="VIDEO"']
  ]
  for (const [name, xml, dialect, attribute] of cases) {
    t.ok(xml.includes(attribute), `${name}: the fixture has ${attribute}`)
    const withTrack = (track: string): Buffer => Buffer.from(xml.replace(attribute, `intendedTrackType="${track}"`))
    const long = (n: number): string => dialect === 'pallycon' ? 'V'.repeat(n) : 'SD+'.repeat(n).slice(0, n).replace(/\+$/, 'D')
    t.not(verdict(withTrack(long(64)), dialect)?.code, 'TRACK_TYPE_TOO_LONG', `${name}: 64 characters pass this rule`)
    const err = verdict(withTrack(long(65)), dialect)
    t.equal(err?.code, 'TRACK_TYPE_TOO_LONG', `${name}: 65 characters are refused`)
    t.equal(err?.status, 422)
    t.equal(err?.message, 'A ContentKeyUsageRule@intendedTrackType is 65 characters long; speke-proxy accepts at most 64')
  }
})

t.test('PallyCon API: single-key requests may pair DRM systems with another kid, and FairPlay with cenc, as PallyCon\'s own docs and client do', async t => {
  t.equal(verdict(fixture('pallycon/hls-vod-fairplay-ncgaes128-request.xml'), 'pallycon')?.message, undefined)
  const err = verdict(fixture('pallycon/hls-vod-fairplay-ncgaes128-request.xml'), 'speke-v1')
  t.match(err?.message, /refers to kid 98ee5596-cd3e-a20d-163a-e382420c6eff, which is not a ContentKey@kid/, 'SPEKE callers get no such latitude')
  const fairplayCenc = capturedBody('pallycon/python-client/captured-key-rotation-period128.http').toString()
  t.equal(verdict(Buffer.from(fairplayCenc), 'pallycon')?.message, undefined)
  t.match(verdict(Buffer.from(fairplayCenc), 'speke-v1')?.message, /non compatible with DRMSystem 94CE86FB-07FF-4F43-ADB8-93D2FA968CA2: FairPlay cannot be used with cenc/)
})

t.test('system ids match case-insensitively and CPIX@id may start with a digit', async t => {
  const xml = '<cpix:CPIX id="1f3e-content" xmlns:cpix="urn:dashif:org:cpix"><cpix:ContentKeyList><cpix:ContentKey kid="5117AADC-ED9C-46A7-B459-EDEA55C7D953"/></cpix:ContentKeyList><cpix:DRMSystemList><cpix:DRMSystem kid="5117aadc-ed9c-46a7-b459-edea55c7d953" systemId="EDEF8BA9-79D6-4ACE-A3C8-27DCD51D21ED"/></cpix:DRMSystemList></cpix:CPIX>'
  t.equal(verdict(Buffer.from(`\n  ${xml}`), 'speke-v1')?.message, undefined)
})

t.test('SPEKE v2: the playlist name must be the one of the document\'s CPIX version (master in 2.3, multiVariant in 2.4)', async t => {
  const v21 = readFileSync(join(PROJECT_ROOT, 'test', 'fixtures', 'aws-suite', 'negative-v21-playlist-master.xml'), 'utf8')
  const v20 = fixture('aws-speke-v2/aws-doc-v2-kid-override-request-widevine-cbcs-live.xml').toString()
  t.ok(v21.includes('version="2.4"') && v21.includes('playlist="master"'), 'the v2.1 request is CPIX 2.4 and says master')
  const masterIn24 = verdict(Buffer.from(v21), 'speke-v2.1')
  t.equal(masterIn24?.status, 400)
  t.equal(masterIn24?.code, 'PLAYLIST_NOT_IN_CPIX_VERSION')
  t.equal(masterIn24?.message, 'Non compliant HLSSignalingData@playlist master for CPIX@version 2.4: use multiVariant')
  t.equal(verdict(Buffer.from(v21.replace(/playlist="master"/g, 'playlist="multiVariant"')), 'speke-v2.1'), undefined, 'multiVariant in CPIX 2.4 is accepted')
  t.equal(verdict(Buffer.from(v21.replace(/ playlist="master"/g, '')), 'speke-v2.1')?.message, undefined, 'no playlist at all is accepted')
  t.equal(verdict(Buffer.from(v20), 'speke-v2.1'), undefined, 'SPEKE v2.1 with a CPIX 2.3 document may say master')
  t.equal(verdict(Buffer.from(v20), 'speke-v2.0'), undefined, 'SPEKE v2.0 (CPIX 2.3) says master')
  for (const dialect of ['speke-v2.0', 'speke-v2.1'] as const) {
    const multiVariantIn23 = verdict(Buffer.from(v20.replace('playlist="master"', 'playlist="multiVariant"')), dialect)
    t.match(multiVariantIn23, { status: 400, message: 'Non compliant HLSSignalingData@playlist multiVariant for CPIX@version 2.3: use master' }, `${dialect}: multiVariant in CPIX 2.3 is refused`)
  }
  for (const dialect of ['speke-v1', 'pallycon'] as const) {
    const err = verdict(Buffer.from(v21.replace(/ contentId=/, ' id="c" contentId=').replace(/index="1" /, '')), dialect)
    t.equal(err?.message, undefined, `${dialect}: not a SPEKE v2 profile rule`)
  }
})

t.test('list caps: more entries than any real request are refused with a 400 before any per-entry work', async t => {
  const kid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`
  const doc = (keys: number, systemsPerKey: number): Buffer => Buffer.from(`<cpix:CPIX id="c" xmlns:cpix="urn:dashif:org:cpix"><cpix:ContentKeyList>${Array.from({ length: keys }, (_, i) => `<cpix:ContentKey kid="${kid(i)}"/>`).join('')}</cpix:ContentKeyList><cpix:DRMSystemList>${Array.from({ length: keys * systemsPerKey }, (_, i) => `<cpix:DRMSystem kid="${kid(Math.floor(i / systemsPerKey))}" systemId="${['edef8ba9-79d6-4ace-a3c8-27dcd51d21ed', '9a04f079-9840-4286-ab92-e65be0885f95', '94ce86fb-07ff-4f43-adb8-93d2fa968ca2', '3d5e6d35-9b9a-41e8-b843-dd3c6e72c42c', '81376844-f976-481e-a84e-cc25d39b0b33'][i % systemsPerKey]}"/>`).join('')}</cpix:DRMSystemList></cpix:CPIX>`)
  t.equal(verdict(doc(100, 4), 'speke-v1'), undefined, '100 keys × 4 DRM systems are accepted')
  t.match(verdict(doc(101, 1), 'speke-v1'), { status: 400, code: 'TOO_MANY_ENTRIES', message: 'The request has 101 ContentKey elements; speke-proxy accepts at most 100 per request: split it' })
  t.match(verdict(doc(81, 5), 'pallycon'), { status: 400, code: 'TOO_MANY_ENTRIES', message: /405 DRMSystem elements; speke-proxy accepts at most 400/ })
})

t.test('HLSSignalingData for a cens or cbc1 key is refused: HLS has no method for them (fuzz finding)', async t => {
  const base = fixture('aws-speke-v2/aws-doc-v2-kid-override-request-widevine-cbcs-live.xml').toString()
  t.match(base, /HLSSignalingData/, 'the request asks for HLS signalling')
  for (const scheme of ['cens', 'cbc1']) {
    const body = Buffer.from(base.replace('commonEncryptionScheme="cbcs"', `commonEncryptionScheme="${scheme}"`))
    t.match(verdict(body, 'speke-v2.0'), { status: 422, message: 'ContentKey@commonEncryptionScheme non compatible with DRMSystem edef8ba9-79d6-4ace-a3c8-27dcd51d21ed' }, `SPEKE v2, ${scheme}: AWS's string`)
    t.match(verdict(Buffer.from(body.toString().replace(/ contentId=/, ' id="c" contentId=')), 'pallycon'), { status: 422, code: 'SCHEME_NOT_COMPATIBLE', message: new RegExp(`HLS has no encryption method for ${scheme}`) }, `PallyCon API, ${scheme}: a clear reason`)
    t.equal(verdict(Buffer.from(body.toString().replace(/\s*<cpix:HLSSignalingData[^>]*><\/cpix:HLSSignalingData>/g, '')), 'speke-v2.0'), undefined, `${scheme} without HLS signalling is accepted`)
  }
})

t.test('SPEKE v2: HLSSignalingData for a DRM system HLS has no key tag for (WisePlay, NCG) is refused before the KMS', async t => {
  const base = readFileSync(join(PROJECT_ROOT, 'test', 'fixtures', 'aws-suite', 'positive-p-v1-a1-playready.xml'), 'utf8')
  t.ok(base.includes('HLSSignalingData'), 'the base request asks for HLS signalling')
  for (const [name, id] of [['WisePlay', '3d5e6d35-9b9a-41e8-b843-dd3c6e72c42c'], ['NCG', 'd9e4411a-e886-4909-a380-a77f28d52335']]) {
    const swapped = base.replaceAll('9a04f079-9840-4286-ab92-e65be0885f95', id)
    const err = verdict(Buffer.from(swapped), 'speke-v2.0')
    t.equal(err?.status, 422, `${name}: 422`)
    t.equal(err?.code, 'HLS_NOT_AVAILABLE')
    t.match(err?.message, new RegExp(`HLS has no key tag for ${name}`))
    t.equal(verdict(Buffer.from(swapped.replace(/<cpix:HLSSignalingData[^>]*>\s*<\/cpix:HLSSignalingData>|<cpix:HLSSignalingData[^>]*\/>/g, '')), 'speke-v2.0'), undefined, `${name} without HLSSignalingData is accepted`)
  }
})

t.test('a content id with a double quote or a control character is refused: it could not travel in HLS key tags', async t => {
  const base = fixture('aws-speke-v2/aws-doc-v2-kid-override-request-widevine-cbcs-live.xml').toString()
  for (const [name, id] of [['a double quote', 'a&quot;b'], ['a line break', 'a&#10;b'], ['a tab', 'a&#9;b'], ['a NUL-free DEL', 'a&#127;b']]) {
    const err = verdict(Buffer.from(base.replace('contentId="abc123"', `contentId="${id}"`)), 'speke-v2.0')
    t.equal(err?.code, 'CONTENT_ID_INVALID', `${name}: refused`)
    t.equal(err?.status, 422)
  }
  t.equal(verdict(Buffer.from(base.replace('contentId="abc123"', 'contentId="movie:1/2 (fr)"')), 'speke-v2.0'), undefined, 'ordinary punctuation and spaces pass')
})
