// Specification of repairForSpekeV2: each repair a verified KMS reply gets for SPEKE v2 callers, and what it leaves alone.

import t from 'tap'
import type { Test } from 'tap'
import { parseCpix } from '../../src/cpix/parse.js'
import { repairForSpekeV2 } from '../../src/cpix/repair.js'
import type { RepairResult } from '../../src/cpix/repair.js'
import { spekeV2Problems } from '../../src/cpix/speke-v2-conformance.js'
import { verifyReply } from '../../src/cpix/verify-reply.js'
import { writeXml } from '../../src/cpix/xml.js'
import type { CpixDocument } from '../../src/cpix/model.js'
import { localProvider } from '../../src/kms/local/provider.js'
import type { KeyRoute } from '../../src/protocol.js'
import { DEMO_TOKEN } from '../helpers/fixtures.js'
import { editSystem } from '../helpers/cpix-edits.js'
import { dialectFor } from '../../src/pipeline/dialect.js'

const WIDEVINE = 'edef8ba9-79d6-4ace-a3c8-27dcd51d21ed'
const PLAYREADY = '9a04f079-9840-4286-ab92-e65be0885f95'
const FAIRPLAY = '94ce86fb-07ff-4f43-adb8-93d2fa968ca2'
const VIDEO = '11111111-2222-4333-8444-555555555555'
const AUDIO = '66666666-7777-4888-9999-aaaaaaaaaaaa'

const b64 = (text: string | Buffer): string => Buffer.from(text).toString('base64')
const unb64 = (text: string): string => Buffer.from(text, 'base64').toString('utf8')

const HLS = '<cpix:HLSSignalingData playlist="media"/><cpix:HLSSignalingData playlist="master"/>'
const PERIODS = '<cpix:ContentKeyPeriodList><cpix:ContentKeyPeriod id="period-7" index="7"/></cpix:ContentKeyPeriodList>'
const RULES = '<cpix:ContentKeyUsageRuleList>' +
  `<cpix:ContentKeyUsageRule kid="${VIDEO}" intendedTrackType="VIDEO"><cpix:KeyPeriodFilter periodId="period-7"/><cpix:VideoFilter/></cpix:ContentKeyUsageRule>` +
  `<cpix:ContentKeyUsageRule kid="${AUDIO}" intendedTrackType="AUDIO"><cpix:KeyPeriodFilter periodId="period-7"/><cpix:AudioFilter/></cpix:ContentKeyUsageRule>` +
  '</cpix:ContentKeyUsageRuleList>'
const drm = (kid: string, systemId: string, children: string): string => `    <cpix:DRMSystem kid="${kid}" systemId="${systemId}">${children}</cpix:DRMSystem>\n`

function cpixRequest (scheme: string, systems: (kid: string) => string, version = '2.3'): string {
  return '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<cpix:CPIX contentId="spec-content" version="${version}" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">\n` +
    `  <cpix:ContentKeyList><cpix:ContentKey kid="${VIDEO}" commonEncryptionScheme="${scheme}"/><cpix:ContentKey kid="${AUDIO}" commonEncryptionScheme="${scheme}"/></cpix:ContentKeyList>\n` +
    `  <cpix:DRMSystemList>\n${systems(VIDEO)}${systems(AUDIO)}  </cpix:DRMSystemList>\n` +
    `  ${PERIODS}\n  ${RULES}\n</cpix:CPIX>\n`
}

/** Widevine and PlayReady for a video and an audio key, cenc, live period 7: what MediaPackage sends. */
const REQUEST = cpixRequest('cenc', kid => drm(kid, WIDEVINE, `<cpix:PSSH/><cpix:ContentProtectionData/>${HLS}`) + drm(kid, PLAYREADY, `<cpix:PSSH/><cpix:ContentProtectionData/>${HLS}`))
/** FairPlay and Widevine, cbcs. */
const FAIRPLAY_REQUEST = cpixRequest('cbcs', kid => drm(kid, FAIRPLAY, HLS) + drm(kid, WIDEVINE, `<cpix:PSSH/><cpix:ContentProtectionData/>${HLS}`))

const provider = localProvider({ secret: Buffer.alloc(32, 3), playReadyLaUrl: 'https://license.pallycon.com/ri/licenseManager.do', hlsKeyUrlBase: 'https://keys.example.com/hls', widevineProvider: 'inkaentworks' })

/** A real, complete reply: 'speke' (SPEKE v2, correct as it is) keeps kids; 'pallycon-v2' assigns its own as PallyCon's KMS does. */
async function answer (requestXml: string, route: KeyRoute = 'speke', spekeVersion = '2.0'): Promise<string> {
  const request = { route, dialect: dialectFor(route, spekeVersion), token: DEMO_TOKEN, spekeVersion, body: Buffer.from(requestXml) }
  const reply = await provider.getKeys(request, AbortSignal.timeout(5000))
  if (reply.status !== 200) throw new Error(`the embedded provider refused: ${reply.body.toString()}`)
  return reply.body.toString('utf8')
}

interface Repaired {
  result: RepairResult
  /** The repaired reply, written out and read back. */
  xml: string
  doc: CpixDocument
  kidMap: Map<string, string>
  /** SPEKE v2 problems of the reply before and after repair. */
  before: string[]
  after: string[]
}

function repair (requestXml: string, replyXml: string): Repaired {
  const request = parseCpix(requestXml)
  const reply = parseCpix(replyXml)
  const { kidMap } = verifyReply(request, reply)
  const before = spekeV2Problems(request, parseCpix(replyXml), kidMap)
  const result = repairForSpekeV2(request, reply, kidMap)
  const xml = writeXml(reply.root)
  const doc = parseCpix(xml)
  return { result, xml, doc, kidMap, before, after: spekeV2Problems(request, doc, kidMap) }
}

/** Every repair must leave a reply that passes the SPEKE v2 checks, and that a second repair leaves alone. */
function assertSettled (t: Test, requestXml: string, r: Repaired): void {
  t.same(r.after, [], 'the repaired reply passes the SPEKE v2 checks')
  const again = repair(requestXml, r.xml)
  t.same(again.result, { changed: false, repairs: [] }, 'a second repair finds nothing to do')
}

// Pure edits of a reply's text (DRMSystems are written on one line each).

function blockOf (xml: string, kid: string, systemId: string): string {
  let found = ''
  editSystem(xml, kid, systemId, block => { found = block; return block })
  return found
}
const textOf = (block: string, local: string, attrs = ''): string => new RegExp(`<cpix:${local}${attrs}>([^<]*)</cpix:${local}>`).exec(block)?.[1] ?? ''
const setText = (block: string, local: string, text: string): string => block.replace(new RegExp(`(<cpix:${local}>)[^<]*(</cpix:${local}>)`), `$1${text}$2`)
const remove = (block: string, name: string): string => block.replace(new RegExp(`<${name}(?: [^>]*)?>[^<]*</${name}>`, 'g'), '')
const upperIds = (xml: string): string => xml.replace(/systemId="([^"]+)"/g, (_m, id: string) => `systemId="${id.toUpperCase()}"`)
const childOrder = (block: string): string[] => [...block.matchAll(/<(\w+:\w+)[ >/]/g)].map(m => m[1]).filter(n => n !== 'cpix:DRMSystem')
const topOrder = (xml: string): string[] => [...xml.matchAll(/<cpix:(\w+List)>/g)].map(m => m[1])

/** The data of a pssh box: what PallyCon sends as ContentProtectionData. */
function psshPayload (pssh: string): string {
  const box = Buffer.from(pssh, 'base64')
  return b64(box.subarray(32, 32 + box.readUInt32BE(28)))
}
/** PallyCon's ContentProtectionData: the bare payload instead of an MPD fragment. */
const bareCpd = (xml: string, kid: string, systemId: string): string =>
  editSystem(xml, kid, systemId, b => setText(b, 'ContentProtectionData', psshPayload(textOf(b, 'PSSH'))))

const cencFragment = (pssh: string): string => `<cenc:pssh xmlns:cenc="urn:mpeg:cenc:2013">${pssh}</cenc:pssh>`
const proFragment = (pssh: string): string => `<mspr:pro xmlns:mspr="urn:microsoft:playready">${psshPayload(pssh)}</mspr:pro>`

/** Everything PallyCon does differently at once (pallycon-kms.md §4, rules §5). */
function pallyconShape (xml: string): string {
  let out = xml.replace(/<cpix:DRMSystem\b[^>]*>[\s\S]*?<\/cpix:DRMSystem>/g, b => {
    const pssh = textOf(b, 'PSSH')
    const header = /systemId="9a04f079/.test(b) ? `<speke:ProtectionHeader>${psshPayload(pssh)}</speke:ProtectionHeader>` : ''
    const hls = textOf(b, 'HLSSignalingData', ' playlist="media"')
    const open = /^<cpix:DRMSystem[^>]*>/.exec(b)?.[0] ?? ''
    return `${open}<cpix:ContentProtectionData>${psshPayload(pssh)}</cpix:ContentProtectionData>${header}<cpix:HLSSignalingData>${hls}</cpix:HLSSignalingData><cpix:PSSH>${pssh}</cpix:PSSH></cpix:DRMSystem>`
  })
  const periods = /<cpix:ContentKeyPeriodList>[\s\S]*?<\/cpix:ContentKeyPeriodList>/.exec(out)?.[0] ?? ''
  const rules = /<cpix:ContentKeyUsageRuleList>[\s\S]*?<\/cpix:ContentKeyUsageRuleList>/.exec(out)?.[0] ?? ''
  out = out.replace(periods, '').replace(rules, '').replace('<cpix:DRMSystemList>', `${periods}${rules}<cpix:DRMSystemList>`)
  out = out.replace(/explicitIV="[^"]*"/g, 'explicitIV="MDEyMzQ1Njc4OWFiY2RlZg=="')
  if (!out.includes('xmlns:speke=')) out = out.replace('<cpix:CPIX ', '<cpix:CPIX xmlns:speke="urn:aws:amazon:com:speke" ')
  return upperIds(out)
}

t.test('a reply that already meets SPEKE v2 is left exactly as it is', async t => {
  for (const requestXml of [REQUEST, FAIRPLAY_REQUEST]) {
    const reply = await answer(requestXml)
    const r = repair(requestXml, reply)
    t.same(r.result, { changed: false, repairs: [] })
    t.equal(r.xml, writeXml(parseCpix(reply).root), 'the tree is untouched')
    t.same(r.before, [], 'and it passed the SPEKE v2 checks to begin with')
  }
})

t.test('CPIX@contentId and CPIX@version come back as the request had them', async t => {
  const reply = (await answer(REQUEST)).replace('contentId="spec-content" version="2.3"', 'id="spec-content"')
  const r = repair(REQUEST, reply)
  t.ok(r.before.includes('CPIX@version is "", the request had "2.3"'), 'the checks see the missing version')
  t.ok(r.before.includes('CPIX@contentId is "", the request had "spec-content"'), 'and the missing contentId')
  t.same(r.result.repairs, ['CPIX@version restored', 'CPIX@contentId restored'])
  t.equal(r.doc.version, '2.3')
  t.equal(r.doc.contentId, 'spec-content')
  assertSettled(t, REQUEST, r)
})

t.test('ContentKey@commonEncryptionScheme comes back as the request had it', async t => {
  const reply = (await answer(REQUEST)).replace(/ commonEncryptionScheme="cenc"/g, '')
  const r = repair(REQUEST, reply)
  t.ok(r.before.includes(`commonEncryptionScheme of kid ${VIDEO} changed from cenc to (none)`))
  t.same(r.result.repairs, ['commonEncryptionScheme restored'])
  t.same(r.doc.contentKeys.map(k => k.commonEncryptionScheme), ['cenc', 'cenc'])
  assertSettled(t, REQUEST, r)
})

t.test('system ids take the caller\'s case, whichever case the KMS wrote', async t => {
  const lower = await answer(REQUEST)
  const r = repair(REQUEST, upperIds(lower))
  t.ok(r.before.some(p => p.includes('systemId is not in the caller\'s case')))
  t.same(r.result.repairs, ['systemId case'])
  t.equal(r.xml, writeXml(parseCpix(lower).root), 'back to the request\'s lower case, and nothing else changed')
  assertSettled(t, REQUEST, r)

  const upperRequest = upperIds(REQUEST)
  const toUpper = repair(upperRequest, lower)
  t.same(toUpper.result.repairs, ['systemId case'])
  t.same([...new Set(toUpper.doc.drmSystems.map(s => s.systemId))], [WIDEVINE.toUpperCase(), PLAYREADY.toUpperCase()])
  assertSettled(t, upperRequest, toUpper)
})

t.test('SPEKE v1 items go: speke:* in DRMSystems and at the root, and URIExtXKey', async t => {
  const reply = (await answer(FAIRPLAY_REQUEST)).replace('<cpix:CPIX ', '<cpix:CPIX xmlns:speke="urn:aws:amazon:com:speke" ')
  let v1 = editSystem(reply, VIDEO, FAIRPLAY, b => b.replace('</cpix:DRMSystem>', `<cpix:URIExtXKey>${b64('skd://EREREREiIkMzhERVVVVVVQ==')}</cpix:URIExtXKey><speke:KeyFormat>${b64('com.apple.streamingkeydelivery')}</speke:KeyFormat><speke:KeyFormatVersions>MQ==</speke:KeyFormatVersions></cpix:DRMSystem>`))
  v1 = editSystem(v1, AUDIO, WIDEVINE, b => b.replace('<cpix:PSSH>', '<speke:ProtectionHeader>AAAA</speke:ProtectionHeader><cpix:PSSH>'))
  v1 = v1.replace('</cpix:CPIX>', '<speke:Heartbeat/></cpix:CPIX>')
  const r = repair(FAIRPLAY_REQUEST, v1)
  t.ok(r.before.includes('SPEKE v1 speke:* elements are present'))
  t.ok(r.before.includes(`DRMSystem ${FAIRPLAY} (kid ${VIDEO}): URIExtXKey is SPEKE v1 only`))
  t.same(r.result.repairs, ['SPEKE v1 items removed'])
  t.notMatch(r.xml, /<speke:|URIExtXKey/)
  t.equal(r.xml, writeXml(parseCpix(reply).root), 'exactly the v1 items are gone')
  assertSettled(t, FAIRPLAY_REQUEST, r)
})

t.test('ContentProtectionData becomes the <cenc:pssh> fragment of the PSSH, with <mspr:pro> for PlayReady', async t => {
  const correct = await answer(REQUEST)
  const bare = bareCpd(bareCpd(correct, VIDEO, WIDEVINE), VIDEO, PLAYREADY)
  t.not(bare, correct)
  const r = repair(REQUEST, bare)
  t.ok(r.before.includes(`DRMSystem ${WIDEVINE} (kid ${VIDEO}): ContentProtectionData is not an MPD XML fragment`))
  t.ok(r.before.includes(`DRMSystem ${PLAYREADY} (kid ${VIDEO}): ContentProtectionData is not an MPD XML fragment`))
  t.same(r.result.repairs, ['ContentProtectionData rebuilt from PSSH'])
  const wv = blockOf(r.xml, VIDEO, WIDEVINE)
  const pr = blockOf(r.xml, VIDEO, PLAYREADY)
  t.equal(unb64(textOf(wv, 'ContentProtectionData')), cencFragment(textOf(wv, 'PSSH')), 'Widevine: <cenc:pssh> alone')
  t.equal(unb64(textOf(pr, 'ContentProtectionData')), cencFragment(textOf(pr, 'PSSH')) + proFragment(textOf(pr, 'PSSH')), 'PlayReady: <cenc:pssh> then <mspr:pro>')
  t.equal(r.xml, writeXml(parseCpix(correct).root), 'the same fragments a correct key server writes')
  assertSettled(t, REQUEST, r)
})

t.test('a PlayReady PSSH that also holds another box: <mspr:pro> is the PlayReady box\'s Object, not the first box\'s data', async t => {
  const correct = await answer(REQUEST)
  const wvBox = Buffer.from(textOf(blockOf(correct, VIDEO, WIDEVINE), 'PSSH'), 'base64')
  const prPssh = textOf(blockOf(correct, VIDEO, PLAYREADY), 'PSSH')
  const both = b64(Buffer.concat([wvBox, Buffer.from(prPssh, 'base64')]))
  const shaped = editSystem(correct, VIDEO, PLAYREADY, b => setText(setText(b, 'PSSH', both), 'ContentProtectionData', psshPayload(prPssh)))
  const r = repair(REQUEST, shaped)
  const pr = blockOf(r.xml, VIDEO, PLAYREADY)
  t.equal(unb64(textOf(pr, 'ContentProtectionData')), cencFragment(both) + proFragment(prPssh), 'the PlayReady Object comes from the PlayReady box')
  t.same(r.after, [])
})

t.test('a ContentProtectionData the request asked for is added when missing; one it did not ask for is not', async t => {
  const correct = await answer(REQUEST)
  const missing = editSystem(correct, AUDIO, WIDEVINE, b => remove(b, 'cpix:ContentProtectionData'))
  t.notMatch(blockOf(missing, AUDIO, WIDEVINE), /ContentProtectionData/)
  const r = repair(REQUEST, missing)
  t.same(r.before, [`DRMSystem ${WIDEVINE} (kid ${AUDIO}): ContentProtectionData was requested and is missing`], 'the checks see it')
  t.same(r.result.repairs, ['ContentProtectionData rebuilt from PSSH', 'DRMSystem children in schema order'], 'added, then put in its place')
  const wv = blockOf(r.xml, AUDIO, WIDEVINE)
  t.equal(unb64(textOf(wv, 'ContentProtectionData')), cencFragment(textOf(wv, 'PSSH')))
  t.same(childOrder(wv), ['cpix:PSSH', 'cpix:ContentProtectionData', 'cpix:HLSSignalingData', 'cpix:HLSSignalingData'], 'in its schema place')
  assertSettled(t, REQUEST, r)

  const notAsked = REQUEST.replace(/<cpix:ContentProtectionData\/>/g, '')
  const replyWithout = (await answer(notAsked))
  t.notMatch(replyWithout, /ContentProtectionData/)
  t.same(repair(notAsked, replyWithout).result, { changed: false, repairs: [] })
})

t.test('a fragment that already holds the PSSH is kept as the KMS wrote it', async t => {
  const correct = await answer(REQUEST)
  const pssh = textOf(blockOf(correct, VIDEO, WIDEVINE), 'PSSH')
  const own = b64(`<!-- Widevine --><pssh xmlns="urn:mpeg:cenc:2013">\n  ${pssh}\n</pssh>`)
  const r = repair(REQUEST, editSystem(correct, VIDEO, WIDEVINE, b => setText(b, 'ContentProtectionData', own)))
  t.same(r.result, { changed: false, repairs: [] })
  t.equal(textOf(blockOf(r.xml, VIDEO, WIDEVINE), 'ContentProtectionData'), own)
})

t.test('HLSSignalingData: one media #EXT-X-KEY and one master #EXT-X-SESSION-KEY with identical attributes', async t => {
  const correct = await answer(FAIRPLAY_REQUEST)
  const fp = blockOf(correct, VIDEO, FAIRPLAY)
  const media = textOf(fp, 'HLSSignalingData', ' playlist="media"')
  const master = textOf(fp, 'HLSSignalingData', ' playlist="master"')
  t.equal(unb64(master), unb64(media).replace('#EXT-X-KEY:', '#EXT-X-SESSION-KEY:'), 'a correct pair')

  const onlyMaster = editSystem(correct, VIDEO, FAIRPLAY, b => b.replace(/<cpix:HLSSignalingData playlist="media">[^<]*<\/cpix:HLSSignalingData>/, ''))
  const unnamed = editSystem(correct, VIDEO, FAIRPLAY, b => b.replace(/<cpix:HLSSignalingData playlist="master">[^<]*<\/cpix:HLSSignalingData>/, '').replace(' playlist="media"', ''))
  for (const [name, served] of [['master only', onlyMaster], ['one without @playlist (PallyCon 2020)', unnamed]]) {
    const r = repair(FAIRPLAY_REQUEST, served)
    t.ok(r.before.includes(`DRMSystem ${FAIRPLAY} (kid ${VIDEO}): HLSSignalingData must be given once for media and once for master`), `${name}: the checks see it`)
    t.same(r.result.repairs, ['HLSSignalingData for media and master'], name)
    const repaired = blockOf(r.xml, VIDEO, FAIRPLAY)
    t.equal(textOf(repaired, 'HLSSignalingData', ' playlist="media"'), media, `${name}: media is the #EXT-X-KEY`)
    t.equal(textOf(repaired, 'HLSSignalingData', ' playlist="master"'), master, `${name}: master is the #EXT-X-SESSION-KEY with the same attributes`)
    t.equal(r.xml, writeXml(parseCpix(correct).root), `${name}: exactly what a correct key server writes`)
    assertSettled(t, FAIRPLAY_REQUEST, r)
  }
})

t.test('HLSSignalingData: CPIX 2.4 callers get the master playlist by their name for it, multiVariant', async t => {
  const request24 = cpixRequest('cbcs', kid => drm(kid, FAIRPLAY, '<cpix:HLSSignalingData playlist="media"/><cpix:HLSSignalingData playlist="multiVariant"/>'), '2.4')
  const correct = await answer(request24, 'speke', '2.1')
  t.match(correct, /playlist="multiVariant"/)
  t.same(repair(request24, correct).result, { changed: false, repairs: [] }, 'a correct media + multiVariant pair is left alone')
  const onlyMedia = correct.replace(/<cpix:HLSSignalingData playlist="multiVariant">[^<]*<\/cpix:HLSSignalingData>/g, '')
  const r = repair(request24, onlyMedia)
  t.same(r.result.repairs, ['HLSSignalingData for media and master'])
  t.same(r.doc.drmSystems.map(s => s.hlsSignaling.map(h => h.playlist)), [['media', 'multiVariant'], ['media', 'multiVariant']])
  t.equal(r.xml, writeXml(parseCpix(correct).root))
  assertSettled(t, request24, r)

  const mediaOnlyRequest = request24.replace(/<cpix:HLSSignalingData playlist="multiVariant"\/>/g, '')
  const named = repair(mediaOnlyRequest, onlyMedia)
  t.same(named.doc.drmSystems.map(s => s.hlsSignaling.map(h => h.playlist)), [['media', 'multiVariant'], ['media', 'multiVariant']], 'CPIX 2.4 without a name in the request: multiVariant')
})

t.test('HLSSignalingData the KMS sent unasked, for one playlist, is paired too', async t => {
  const correct = await answer(REQUEST)
  const dashOnly = REQUEST.replace(/<cpix:HLSSignalingData playlist="(media|master)"\/>/g, '')
  const lone = correct.replace(/<cpix:HLSSignalingData playlist="master">[^<]*<\/cpix:HLSSignalingData>/g, '').replace(/ playlist="media"/g, '')
  const r = repair(dashOnly, lone)
  t.ok(r.before.includes(`DRMSystem ${WIDEVINE} (kid ${VIDEO}): HLSSignalingData must be given once for media and once for master`))
  t.same(r.result.repairs, ['HLSSignalingData for media and master'])
  t.equal(r.xml, writeXml(parseCpix(correct).root), 'the pairs a correct key server writes')
  assertSettled(t, dashOnly, r)
})

t.test('DRMSystem children and the top-level lists are put in schema order', async t => {
  const correct = await answer(REQUEST)
  const psshLast = editSystem(correct, AUDIO, PLAYREADY, b => {
    const pssh = /<cpix:PSSH>[^<]*<\/cpix:PSSH>/.exec(b)?.[0] ?? ''
    return b.replace(pssh, '').replace('</cpix:DRMSystem>', `${pssh}</cpix:DRMSystem>`)
  })
  t.same(childOrder(blockOf(psshLast, AUDIO, PLAYREADY)).slice(-1), ['cpix:PSSH'])
  const periods = /<cpix:ContentKeyPeriodList>[\s\S]*?<\/cpix:ContentKeyPeriodList>/.exec(correct)?.[0] ?? ''
  const listsFirst = psshLast.replace(periods, '').replace('<cpix:ContentKeyList>', `${periods}<cpix:ContentKeyList>`)
  t.same(topOrder(listsFirst), ['ContentKeyPeriodList', 'ContentKeyList', 'DRMSystemList', 'ContentKeyUsageRuleList'])
  const r = repair(REQUEST, listsFirst)
  t.ok(r.before.includes('top-level lists are not in CPIX schema order'))
  t.ok(r.before.includes(`DRMSystem ${PLAYREADY} (kid ${AUDIO}): children are not in CPIX schema order`))
  t.same(r.result.repairs, ['DRMSystem children in schema order', 'lists in schema order'])
  t.same(topOrder(r.xml), ['ContentKeyList', 'DRMSystemList', 'ContentKeyPeriodList', 'ContentKeyUsageRuleList'])
  t.same(childOrder(blockOf(r.xml, AUDIO, PLAYREADY)), ['cpix:PSSH', 'cpix:ContentProtectionData', 'cpix:HLSSignalingData', 'cpix:HLSSignalingData'])
  assertSettled(t, REQUEST, r)
})

t.test('key periods and usage rules are echoed as the request had them, under the reply\'s kids', async t => {
  // PallyCon's kids, in an otherwise SPEKE v2 reply.
  const correct = repair(REQUEST, await answer(REQUEST, 'pallycon-v2')).xml
  const kids = [...correct.matchAll(/<cpix:ContentKey kid="([^"]+)"/g)].map(m => m[1])
  t.notOk(kids.includes(VIDEO), 'the KMS assigned its own kids')
  const dropped = correct.replace(/<cpix:ContentKeyPeriodList>[\s\S]*?<\/cpix:ContentKeyPeriodList>/, '').replace(/<cpix:(KeyPeriodFilter|VideoFilter|AudioFilter)\b[^>]*\/>/g, '')
  const r = repair(REQUEST, dropped)
  t.ok(r.before.includes('ContentKeyUsageRuleList is not echoed as the request had it'))
  t.ok(r.before.includes('ContentKeyPeriodList is not echoed as the request had it'))
  t.same(r.result.repairs, ['ContentKeyPeriodList echoed', 'ContentKeyUsageRuleList echoed', 'lists in schema order'], 'echoed, the added list put in its place')
  t.match(r.xml, PERIODS, 'the period list, as the request had it')
  t.match(r.xml, RULES.replace(VIDEO, kids[0]).replace(AUDIO, kids[1]), 'the rules, as the request had them, with the reply\'s kids')
  assertSettled(t, REQUEST, r)

  const rewritten = correct.replace('<cpix:ContentKeyUsageRuleList>', '<cpix:ContentKeyUsageRuleList><!-- PallyCon -->').replace(/intendedTrackType="AUDIO"/, 'intendedTrackType="STEREO_AUDIO"')
  const changed = repair(REQUEST, rewritten)
  t.same(changed.result.repairs, ['ContentKeyUsageRuleList echoed'], 'a rule the KMS altered is put back')
  t.match(changed.xml, /intendedTrackType="AUDIO"/)
  const commented = correct.replace('<cpix:ContentKeyUsageRuleList>', '<cpix:ContentKeyUsageRuleList><!-- PallyCon -->')
  const kept = repair(REQUEST, commented)
  t.same(kept.result, { changed: false, repairs: [] }, 'a list that already matches is left as the KMS wrote it')
  t.match(kept.xml, '<!-- PallyCon -->')
})

t.test('the whole PallyCon shape is repaired in one pass, and the repairs are named without values', async t => {
  for (const route of ['speke', 'pallycon-v2'] as const) {
    const correct = await answer(REQUEST, route)
    const shaped = pallyconShape(correct)
    const r = repair(REQUEST, shaped)
    t.ok(r.before.length >= 8, `${route}: the unrepaired shape has ${r.before.length} SPEKE v2 problems`)
    t.same([...r.result.repairs].sort(), [
      'ContentProtectionData rebuilt from PSSH',
      'DRMSystem children in schema order',
      'HLSSignalingData for media and master',
      'SPEKE v1 items removed',
      'lists in schema order',
      'systemId case'
    ], `${route}: every repair, once`)
    t.notMatch(r.result.repairs.join(' '), /[0-9a-f]{8}-[0-9a-f]{4}|[A-Za-z0-9+/]{10,}={1,2}/i, `${route}: no kid or base64 value in the repair notes`)
    assertSettled(t, REQUEST, r)
    // Only the explicitIV PallyCon made constant remains different from a correct reply.
    const normal = (x: string): string => x.replace(/explicitIV="[^"]*"/g, '').replace(/>\s+</g, '><').replace(' xmlns:speke="urn:aws:amazon:com:speke"', '')
    t.equal(normal(r.xml), normal(writeXml(parseCpix(route === 'speke' ? correct : repair(REQUEST, correct).xml).root)), `${route}: otherwise what a correct key server writes`)
  }
})
