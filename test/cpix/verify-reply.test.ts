// Specification of verifyReply: what a KMS reply must satisfy, against the request it answers, before any key is passed on.

import t from 'tap'
import { ProxyError } from '../../src/errors.js'
import { parseCpix } from '../../src/cpix/parse.js'
import { sameSystem, verifyReply } from '../../src/cpix/verify-reply.js'
import { localProvider } from '../../src/kms/local/provider.js'
import type { KeyRoute } from '../../src/protocol.js'
import { DEMO_TOKEN, fixtureText } from '../helpers/fixtures.js'
import { editSystem } from '../helpers/cpix-edits.js'
import { dialectFor } from '../../src/pipeline/dialect.js'

const WIDEVINE = 'edef8ba9-79d6-4ace-a3c8-27dcd51d21ed'
const PLAYREADY = '9a04f079-9840-4286-ab92-e65be0885f95'
const FAIRPLAY = '94ce86fb-07ff-4f43-adb8-93d2fa968ca2'
const VIDEO = '11111111-2222-4333-8444-555555555555'
const AUDIO = '66666666-7777-4888-9999-aaaaaaaaaaaa'

const b64 = (text: string | Buffer): string => Buffer.from(text).toString('base64')
const unb64 = (text: string): string => Buffer.from(text, 'base64').toString('utf8')

function cpixRequest (scheme: string, systems: string, rules: string): string {
  return '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<cpix:CPIX contentId="spec-content" version="2.3" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">\n' +
    `  <cpix:ContentKeyList><cpix:ContentKey kid="${VIDEO}" commonEncryptionScheme="${scheme}"/><cpix:ContentKey kid="${AUDIO}" commonEncryptionScheme="${scheme}"/></cpix:ContentKeyList>\n` +
    `  <cpix:DRMSystemList>\n${systems}  </cpix:DRMSystemList>\n` +
    `  <cpix:ContentKeyUsageRuleList>${rules}</cpix:ContentKeyUsageRuleList>\n` +
    '</cpix:CPIX>\n'
}
const drm = (kid: string, systemId: string, children: string): string => `    <cpix:DRMSystem kid="${kid}" systemId="${systemId}">${children}</cpix:DRMSystem>\n`
const HLS = '<cpix:HLSSignalingData playlist="media"/><cpix:HLSSignalingData playlist="master"/>'
const RULES = `<cpix:ContentKeyUsageRule kid="${VIDEO}" intendedTrackType="VIDEO"><cpix:VideoFilter/></cpix:ContentKeyUsageRule>` +
  `<cpix:ContentKeyUsageRule kid="${AUDIO}" intendedTrackType="AUDIO"><cpix:AudioFilter/></cpix:ContentKeyUsageRule>`

/** Two keys (video, audio), Widevine and PlayReady for each, cenc: PlayReady headers carry a CHECKSUM. */
const REQUEST = cpixRequest('cenc', [VIDEO, AUDIO].map(kid =>
  drm(kid, WIDEVINE, `<cpix:PSSH/><cpix:ContentProtectionData/>${HLS}`) +
  drm(kid, PLAYREADY, `<cpix:PSSH/><cpix:ContentProtectionData/>${HLS}<cpix:SmoothStreamingProtectionHeaderData/>`)).join(''), RULES)

/** cbcs, FairPlay and Widevine; FairPlay is asked for a PSSH and ContentProtectionData as AWS's own suite does. */
const FAIRPLAY_REQUEST = cpixRequest('cbcs', [VIDEO, AUDIO].map(kid =>
  drm(kid, FAIRPLAY, `<cpix:PSSH/><cpix:ContentProtectionData/>${HLS}`) + drm(kid, WIDEVINE, `<cpix:PSSH/>${HLS}`)).join(''), RULES)

const provider = localProvider({ secret: Buffer.alloc(32, 9), playReadyLaUrl: 'https://license.pallycon.com/ri/licenseManager.do', hlsKeyUrlBase: 'https://keys.example.com/hls', widevineProvider: 'inkaentworks' })

/** A real, complete reply: 'speke' keeps the request's kids, 'pallycon-v2' assigns its own as PallyCon's KMS does. */
async function answer (requestXml: string, route: KeyRoute = 'speke', spekeVersion: '2.0' | 'v1' = '2.0'): Promise<string> {
  const reply = await provider.getKeys({ route, dialect: dialectFor(route, spekeVersion === 'v1' ? undefined : spekeVersion), token: DEMO_TOKEN, spekeVersion: spekeVersion === 'v1' ? undefined : spekeVersion, body: Buffer.from(requestXml) }, AbortSignal.timeout(5000))
  if (reply.status !== 200) throw new Error(`the embedded provider refused: ${reply.body.toString()}`)
  return reply.body.toString('utf8')
}

/** 'accepted', or the message of the 502 verifyReply throws. Anything else it throws fails the test. */
function verdict (requestXml: string, replyXml: string): string {
  try {
    verifyReply(parseCpix(requestXml), parseCpix(replyXml))
    return 'accepted'
  } catch (err) {
    if (!(err instanceof ProxyError) || err.status !== 502 || err.code !== 'KMS_REPLY_INVALID') throw err
    return err.message
  }
}

// Pure edits of a reply's text.

const textOf = (block: string, local: string): string => new RegExp(`<cpix:${local}(?: [^>]*)?>([^<]*)</cpix:${local}>`).exec(block)?.[1] ?? ''
const setText = (block: string, local: string, text: string): string => block.replace(new RegExp(`(<cpix:${local}(?: [^>]*)?>)[^<]*(</cpix:${local}>)`), `$1${text}$2`)
const remove = (block: string, local: string): string => block.replace(new RegExp(`<cpix:${local}(?: [^>]*)?>[^<]*</cpix:${local}>`, 'g'), '')
const keyOf = (xml: string, kid: string): string => new RegExp(`kid="${kid}"[^>]*><cpix:Data><pskc:Secret><pskc:PlainValue>([^<]+)<`).exec(xml)?.[1] ?? ''
const setKey = (xml: string, kid: string, value: string): string => xml.replace(`${keyOf(xml, kid)}</pskc:PlainValue>`, `${value}</pskc:PlainValue>`)
const psshOf = (xml: string, kid: string, systemId: string): string => {
  let pssh = ''
  editSystem(xml, kid, systemId, block => { pssh = textOf(block, 'PSSH'); return block })
  return pssh
}
const uuidBytes = (kid: string): Buffer => Buffer.from(kid.replace(/-/g, ''), 'hex')

t.test('a complete reply is accepted; the verified keys come back, one 16-byte key per requested kid', async t => {
  const reply = await answer(REQUEST)
  t.equal(verdict(REQUEST, reply), 'accepted')
  const verified = verifyReply(parseCpix(REQUEST), parseCpix(reply))
  t.same([...verified.kidMap.entries()], [[VIDEO, VIDEO], [AUDIO, AUDIO]], 'kids kept: each maps to itself')
  t.same(verified.keys.map(k => k.kid), [VIDEO, AUDIO])
  t.same(verified.keys.map(k => k.key.toString('base64')), [keyOf(reply, VIDEO), keyOf(reply, AUDIO)])
  t.ok(verified.keys.every(k => k.key.length === 16))
})

t.test('kids the KMS assigned pair with the requested ones in document order, and must come one for one', async t => {
  const reply = await answer(REQUEST, 'pallycon-v2')
  const kids = [...reply.matchAll(/<cpix:ContentKey kid="([^"]+)"/g)].map(m => m[1])
  t.equal(kids.length, 2)
  t.notOk(kids.includes(VIDEO) || kids.includes(AUDIO), 'PallyCon assigned kids of its own')
  const verified = verifyReply(parseCpix(REQUEST), parseCpix(reply))
  t.same([...verified.kidMap.entries()], [[VIDEO, kids[0]], [AUDIO, kids[1]]])
  t.same(verified.keys.map(k => k.kid), kids, 'the keys are named by the reply\'s kids')

  const oneKey = reply.replace(/<cpix:ContentKey kid="[^"]+"[^>]*>[\s\S]*?<\/cpix:ContentKey>/, '')
  t.equal(verdict(REQUEST, oneKey), 'KMS reply: 1 ContentKey(s) for the 2 requested')
})

t.test('the content id is the requested one; PallyCon\'s CPIX@id counts as one', async t => {
  const reply = await answer(REQUEST)
  t.equal(verdict(REQUEST, reply.replace('contentId="spec-content"', 'contentId="other-content"')), 'KMS reply: content id is "other-content", the request asked for "spec-content"')
  t.equal(verdict(REQUEST, reply.replace('contentId="spec-content"', 'id="spec-content"')), 'accepted')
  t.equal(verdict(REQUEST, reply.replace('contentId="spec-content"', '')), 'KMS reply: content id is "", the request asked for "spec-content"')
})

t.test('every requested kid has a ContentKey with a 16-byte key in Data/Secret/PlainValue', async t => {
  const reply = await answer(REQUEST)
  const key = Buffer.from(keyOf(reply, AUDIO), 'base64')
  t.equal(verdict(REQUEST, setKey(reply, AUDIO, b64(key.subarray(0, 15)))), `KMS reply: the key for kid ${AUDIO} has 15 bytes, not 16`)
  t.equal(verdict(REQUEST, setKey(reply, AUDIO, b64(Buffer.concat([key, key])))), `KMS reply: the key for kid ${AUDIO} has 32 bytes, not 16`)
  t.equal(verdict(REQUEST, setKey(reply, AUDIO, 'not*base64*at*all=')), `KMS reply: the key for kid ${AUDIO} is not base64`)
  t.equal(verdict(REQUEST, setKey(reply, AUDIO, '')), `KMS reply: ContentKey ${AUDIO} carries no key (Data/Secret/PlainValue)`)
  const noData = reply.replace(new RegExp(`(kid="${AUDIO}"[^>]*>)<cpix:Data>[\\s\\S]*?</cpix:Data>`), '$1')
  t.equal(verdict(REQUEST, noData), `KMS reply: ContentKey ${AUDIO} carries no key (Data/Secret/PlainValue)`)
  const noKey = reply.replace(new RegExp(`<cpix:ContentKey kid="${AUDIO}"[^>]*>[\\s\\S]*?</cpix:ContentKey>`), '')
  t.match(verdict(REQUEST, noKey), /^KMS reply: 1 ContentKey\(s\) for the 2 requested$/, 'a missing key is a count mismatch (the KMS may have overridden kids)')
})

t.test('explicitIV, when present, is 16 bytes of base64; PallyCon\'s constant IV is fine', async t => {
  const reply = await answer(REQUEST)
  const iv = new RegExp(`kid="${VIDEO}"[^>]*explicitIV="([^"]+)"`).exec(reply)?.[1] ?? ''
  t.not(iv, '')
  t.equal(verdict(REQUEST, reply.replace(iv, 'MDEyMzQ1Njc4OWFiY2RlZg==')), 'accepted')
  t.equal(verdict(REQUEST, reply.replace(iv, b64('01234567'))), `KMS reply: explicitIV for kid ${VIDEO} is not 16 bytes of base64`)
  t.equal(verdict(REQUEST, reply.replace(iv, '!!')), `KMS reply: explicitIV for kid ${VIDEO} is not 16 bytes of base64`)
})

t.test('a key period the reply echoes is the requested one: same index, same start and end', async t => {
  const periodic = REQUEST.replace('<cpix:ContentKeyUsageRuleList>', '<cpix:ContentKeyPeriodList><cpix:ContentKeyPeriod id="p128" index="128"/></cpix:ContentKeyPeriodList><cpix:ContentKeyUsageRuleList>')
    .replace(/<cpix:(Video|Audio)Filter\/>/g, '<cpix:KeyPeriodFilter periodId="p128"/><cpix:$1Filter/>')
  const reply = await answer(periodic)
  t.match(reply, /<cpix:ContentKeyPeriod id="p128" index="128"\/>/)
  t.equal(verdict(periodic, reply), 'accepted')
  t.equal(verdict(periodic, reply.replace('index="128"', 'index="129"')), 'KMS reply: ContentKeyPeriod p128 has index 129, the request asked for 128')
  t.equal(verdict(periodic, reply.replace(/<cpix:ContentKeyPeriodList>[\s\S]*?<\/cpix:ContentKeyPeriodList>/, '')), 'accepted', 'a reply without the list is left to SPEKE v2 repair, which echoes it')
  const timed = periodic.replace('index="128"', 'start="2026-01-01T00:00:00Z" end="2026-01-01T00:05:00Z"')
  const timedReply = reply.replace('index="128"', 'start="2026-01-01T00:00:00+00:00" end="2026-01-01T00:05:00Z"')
  t.equal(verdict(timed, timedReply), 'accepted', 'the same instant, written another way')
  t.equal(verdict(timed, timedReply.replace('T00:05:00Z', 'T00:10:00Z')), 'KMS reply: ContentKeyPeriod p128 has end 2026-01-01T00:10:00Z, the request asked for 2026-01-01T00:05:00Z')
})

t.test('every DRMSystem and usage rule of the reply refers to one of its ContentKeys', async t => {
  const reply = await answer(REQUEST)
  const stranger = '99999999-8888-4777-8666-555555555555'
  t.equal(verdict(REQUEST, editSystem(reply, AUDIO, PLAYREADY, b => b.replace(`kid="${AUDIO}"`, `kid="${stranger}"`))),
    `KMS reply: DRMSystem ${PLAYREADY} refers to kid ${stranger}, which has no ContentKey`)
  t.equal(verdict(REQUEST, reply.replace(`<cpix:ContentKeyUsageRule kid="${AUDIO}"`, `<cpix:ContentKeyUsageRule kid="${stranger}"`)),
    `KMS reply: ContentKeyUsageRule refers to kid ${stranger}, which has no ContentKey`)
})

t.test('every requested DRM system is answered for its kid; system ids compare case-insensitively', async t => {
  const reply = await answer(REQUEST)
  t.equal(verdict(REQUEST, editSystem(reply, AUDIO, PLAYREADY, () => '')), `KMS reply: DRM system ${PLAYREADY} for kid ${AUDIO} is missing`)
  t.equal(verdict(REQUEST, editSystem(reply, VIDEO, WIDEVINE, () => '')), `KMS reply: DRM system ${WIDEVINE} for kid ${VIDEO} is missing`)
  t.equal(verdict(REQUEST.replace(/systemId="([^"]+)"/g, (_m, id: string) => `systemId="${id.toUpperCase()}"`), reply), 'accepted', 'upper-case request, lower-case reply')
  t.equal(verdict(REQUEST, reply.replace(/systemId="([^"]+)"/g, (_m, id: string) => `systemId="${id.toUpperCase()}"`)), 'accepted', 'lower-case request, upper-case reply')
  t.ok(sameSystem(' EDEF8BA9-79D6-4ACE-A3C8-27DCD51D21ED', WIDEVINE), 'sameSystem ignores case and surrounding blanks')
  t.notOk(sameSystem(PLAYREADY, WIDEVINE))
})

t.test('what the request asked of a DRM system comes back filled: PSSH, HLSSignalingData, SmoothStreamingProtectionHeaderData', async t => {
  const reply = await answer(REQUEST)
  t.equal(verdict(REQUEST, editSystem(reply, VIDEO, WIDEVINE, b => setText(b, 'PSSH', ''))), `KMS reply: DRM system ${WIDEVINE} for kid ${VIDEO} has no PSSH`)
  t.equal(verdict(REQUEST, editSystem(reply, VIDEO, WIDEVINE, b => remove(b, 'PSSH'))), `KMS reply: DRM system ${WIDEVINE} for kid ${VIDEO} has no PSSH`)
  t.equal(verdict(REQUEST, editSystem(reply, VIDEO, WIDEVINE, b => remove(b, 'HLSSignalingData'))), `KMS reply: DRM system ${WIDEVINE} for kid ${VIDEO} has no HLSSignalingData`)
  t.equal(verdict(REQUEST, editSystem(reply, VIDEO, PLAYREADY, b => setText(b, 'SmoothStreamingProtectionHeaderData', ' '))), `KMS reply: DRM system ${PLAYREADY} for kid ${VIDEO} has no SmoothStreamingProtectionHeaderData`)
  const oneHls = editSystem(reply, VIDEO, WIDEVINE, b => b.replace(/<cpix:HLSSignalingData playlist="master">[^<]*<\/cpix:HLSSignalingData>/, ''))
  t.equal(verdict(REQUEST, oneHls), 'accepted', 'one HLSSignalingData is enough here (SPEKE v2 repair adds the other)')
})

t.test('ContentProtectionData may be left out when there is a PSSH to derive it from, not otherwise', async t => {
  const reply = await answer(REQUEST)
  t.equal(verdict(REQUEST, editSystem(reply, VIDEO, WIDEVINE, b => remove(b, 'ContentProtectionData'))), 'accepted')
  const cpdOnly = cpixRequest('cenc', drm(VIDEO, WIDEVINE, '<cpix:ContentProtectionData/>') + drm(AUDIO, WIDEVINE, '<cpix:ContentProtectionData/>'), RULES)
  const cpdReply = await answer(cpdOnly)
  t.equal(verdict(cpdOnly, cpdReply), 'accepted')
  t.equal(verdict(cpdOnly, editSystem(cpdReply, AUDIO, WIDEVINE, b => setText(b, 'ContentProtectionData', ''))), `KMS reply: DRM system ${WIDEVINE} for kid ${AUDIO} has no ContentProtectionData`)
})

t.test('HLS-only systems owe no PSSH or ContentProtectionData, even when asked (AWS\'s suite asks FairPlay for them)', async t => {
  const reply = await answer(FAIRPLAY_REQUEST)
  t.equal(verdict(FAIRPLAY_REQUEST, reply), 'accepted')
  t.equal(textOf(/systemId="94ce86fb[^>]*>[\s\S]*?<\/cpix:DRMSystem>/.exec(reply)?.[0] ?? '', 'PSSH'), '', 'FairPlay came back without a PSSH')
  t.equal(verdict(FAIRPLAY_REQUEST, editSystem(reply, VIDEO, FAIRPLAY, b => remove(b, 'HLSSignalingData'))), `KMS reply: DRM system ${FAIRPLAY} for kid ${VIDEO} has no HLSSignalingData`, 'but HLS signalling they do owe')
})

t.test('the PSSH is base64 of well-formed pssh boxes, one of them for the DRMSystem\'s own system', async t => {
  const reply = await answer(REQUEST)
  t.equal(verdict(REQUEST, editSystem(reply, VIDEO, WIDEVINE, b => setText(b, 'PSSH', 'AAAA*not-base64'))), `KMS reply: PSSH of DRM system ${WIDEVINE} for kid ${VIDEO} is not base64`)
  const box = Buffer.from(psshOf(reply, VIDEO, WIDEVINE), 'base64')
  t.match(verdict(REQUEST, editSystem(reply, VIDEO, WIDEVINE, b => setText(b, 'PSSH', b64(box.subarray(0, box.length - 3))))),
    new RegExp(`^KMS reply: PSSH of DRM system ${WIDEVINE} for kid ${VIDEO}: pssh box is truncated`))
  const wrongSystem = editSystem(reply, VIDEO, PLAYREADY, b => setText(b, 'PSSH', psshOf(reply, VIDEO, WIDEVINE)))
  t.equal(verdict(REQUEST, wrongSystem), `KMS reply: PSSH of DRM system ${PLAYREADY} for kid ${VIDEO} carries system id ${WIDEVINE}, not ${PLAYREADY}`)
})

t.test('the PSSH carries the DRMSystem\'s kid: Widevine key_id, PlayReady KID', async t => {
  const reply = await answer(REQUEST)
  const box = Buffer.from(psshOf(reply, AUDIO, WIDEVINE), 'base64')
  const at = box.indexOf(uuidBytes(AUDIO))
  t.ok(at > 0, 'the Widevine box holds the kid')
  const other = Buffer.from(box)
  uuidBytes(VIDEO).copy(other, at)
  t.equal(verdict(REQUEST, editSystem(reply, AUDIO, WIDEVINE, b => setText(b, 'PSSH', b64(other)))),
    `KMS reply: the PSSH of DRM system ${WIDEVINE} for kid ${AUDIO} does not carry kid ${AUDIO} (it carries ${VIDEO})`)
  const swapped = editSystem(reply, AUDIO, PLAYREADY, b => setText(b, 'PSSH', psshOf(reply, VIDEO, PLAYREADY)))
  t.equal(verdict(REQUEST, swapped), `KMS reply: the PSSH of DRM system ${PLAYREADY} for kid ${AUDIO} does not carry kid ${AUDIO} (it carries ${VIDEO})`)
})

t.test('a PlayReady CHECKSUM matches the key it is given with', async t => {
  const reply = await answer(REQUEST)
  const box = Buffer.from(psshOf(reply, VIDEO, PLAYREADY), 'base64')
  const open = box.indexOf(Buffer.from('<CHECKSUM>', 'utf16le'))
  t.ok(open > 0, 'the cenc PlayReady header has a CHECKSUM')
  const bad = Buffer.from(box)
  Buffer.from('AAAAAAAAAAA=', 'utf16le').copy(bad, open + 20)
  t.equal(verdict(REQUEST, editSystem(reply, VIDEO, PLAYREADY, b => setText(b, 'PSSH', b64(bad)))), `KMS reply: PlayReady CHECKSUM does not match the key for kid ${VIDEO}`)
  t.equal(verdict(REQUEST, setKey(reply, VIDEO, keyOf(reply, AUDIO))), `KMS reply: PlayReady CHECKSUM does not match the key for kid ${VIDEO}`, 'the other key does not fit the header')
})

t.test('ContentProtectionData: an XML fragment must hold the PSSH; PallyCon\'s bare payload is accepted', async t => {
  const reply = await answer(REQUEST)
  const fragment = (pssh: string): string => b64(`<cenc:pssh xmlns:cenc="urn:mpeg:cenc:2013">${pssh}</cenc:pssh>`)
  t.equal(verdict(REQUEST, editSystem(reply, VIDEO, WIDEVINE, b => setText(b, 'ContentProtectionData', fragment(psshOf(reply, AUDIO, WIDEVINE))))),
    `KMS reply: the pssh inside ContentProtectionData of DRM system ${WIDEVINE} for kid ${VIDEO} differs from its PSSH`)
  t.equal(verdict(REQUEST, editSystem(reply, VIDEO, WIDEVINE, b => setText(b, 'ContentProtectionData', b64('<pssh xmlns="urn:mpeg:cenc:2013"></pssh>')))),
    `KMS reply: ContentProtectionData of DRM system ${WIDEVINE} for kid ${VIDEO}: the pssh element in ContentProtectionData is empty`)
  t.equal(verdict(REQUEST, editSystem(reply, VIDEO, WIDEVINE, b => setText(b, 'ContentProtectionData', 'not base64!'))),
    `KMS reply: ContentProtectionData of DRM system ${WIDEVINE} for kid ${VIDEO} is not base64`)
  const bare = editSystem(reply, VIDEO, WIDEVINE, b => setText(b, 'ContentProtectionData', b64(Buffer.from(psshOf(reply, VIDEO, WIDEVINE), 'base64').subarray(32))))
  t.equal(verdict(REQUEST, bare), 'accepted', 'the bare Widevine payload')
  const otherPrefix = editSystem(reply, VIDEO, WIDEVINE, b => setText(b, 'ContentProtectionData', b64(`<pssh xmlns="urn:mpeg:cenc:2013">${psshOf(reply, VIDEO, WIDEVINE)}</pssh>`)))
  t.equal(verdict(REQUEST, otherPrefix), 'accepted', 'a fragment with another prefix, holding the PSSH')
})

t.test('HLSSignalingData is one #EXT-X-KEY (media) or #EXT-X-SESSION-KEY (master) tag; without @playlist either will do', async t => {
  const reply = await answer(REQUEST)
  let media = ''
  let master = ''
  editSystem(reply, VIDEO, WIDEVINE, b => {
    media = /playlist="media">([^<]+)</.exec(b)?.[1] ?? ''
    master = /playlist="master">([^<]+)</.exec(b)?.[1] ?? ''
    return b
  })
  t.match(unb64(media), /^#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,/)
  t.match(unb64(master), /^#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES-CTR,/)
  const swap = (b: string): string => b.replace(`playlist="media">${media}<`, `playlist="media">${master}<`).replace(`playlist="master">${master}<`, `playlist="master">${media}<`)
  t.equal(verdict(REQUEST, editSystem(reply, VIDEO, WIDEVINE, swap)), `KMS reply: HLSSignalingData (media) of DRM system ${WIDEVINE} for kid ${VIDEO} is #EXT-X-SESSION-KEY, expected #EXT-X-KEY`)
  t.equal(verdict(REQUEST, editSystem(reply, VIDEO, WIDEVINE, b => b.replace(`>${master}<`, `>${b64('#EXT-X-KEY:URI="skd://x"')}<`))),
    `KMS reply: HLSSignalingData of DRM system ${WIDEVINE} for kid ${VIDEO}: #EXT-X-KEY has no METHOD attribute`)
  t.match(verdict(REQUEST, editSystem(reply, VIDEO, WIDEVINE, b => b.replace(`>${master}<`, `>${b64('METHOD=SAMPLE-AES')}<`))),
    new RegExp(`^KMS reply: HLSSignalingData of DRM system ${WIDEVINE} for kid ${VIDEO}: not an HLS key tag`))
  t.equal(verdict(REQUEST, editSystem(reply, VIDEO, WIDEVINE, b => b.replace(`>${master}<`, '>#EXT-X-KEY<'))), `KMS reply: HLSSignalingData of DRM system ${WIDEVINE} for kid ${VIDEO} is not base64`)
  const unnamed = editSystem(reply, VIDEO, WIDEVINE, b => b.replace(/ playlist="(media|master)"/g, ''))
  t.equal(verdict(REQUEST, unnamed), 'accepted', 'no @playlist: #EXT-X-KEY and #EXT-X-SESSION-KEY are both fine')
})

t.test('URIExtXKey, when present, is base64 (SPEKE v1)', async t => {
  const v1Request = fixtureText('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
  const reply = await answer(v1Request, 'speke', 'v1')
  t.equal(verdict(v1Request, reply), 'accepted')
  const uri = /<cpix:URIExtXKey>([^<]+)</.exec(reply)?.[1] ?? ''
  t.match(unb64(uri), /^https:\/\//)
  t.equal(verdict(v1Request, reply.replace(`>${uri}<`, '>https://keys.example.com/k<')), 'KMS reply: URIExtXKey of DRM system 81376844-f976-481e-a84e-cc25d39b0b33 for kid 98ee5596-cd3e-a20d-163a-e382420c6eff is not base64')
})
