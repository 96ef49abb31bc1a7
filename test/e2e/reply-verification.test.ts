// KMS replies end to end: a fake PallyCon KMS on loopback serves real replies of PallyCon's documented shapes and broken variants.

import t from 'tap'
import type { Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { CPIX_NS } from '../../src/cpix/model.js'
import type { CpixDocument } from '../../src/cpix/model.js'
import { parseCpix } from '../../src/cpix/parse.js'
import { spekeV2Problems } from '../../src/cpix/speke-v2-conformance.js'
import { verifyReply } from '../../src/cpix/verify-reply.js'
import { childElements } from '../../src/cpix/xml.js'
import type { XmlElement } from '../../src/cpix/xml.js'
import { localProvider } from '../../src/kms/local/provider.js'
import type { KeyRoute } from '../../src/protocol.js'
import { replyWith, startFakeKms } from '../helpers/fake-kms.js'
import type { FakeKms } from '../helpers/fake-kms.js'
import { DEMO_TOKEN, PROJECT_ROOT, capturedBody, fixture, fixtureText, EXPECTED_USER_AGENT } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'
import type { RunningProxy } from '../helpers/proxy.js'
import { dialectFor } from '../../src/pipeline/dialect.js'

const WIDEVINE = 'edef8ba9-79d6-4ace-a3c8-27dcd51d21ed'
const PLAYREADY = '9a04f079-9840-4286-ab92-e65be0885f95'
const FAIRPLAY = '94ce86fb-07ff-4f43-adb8-93d2fa968ca2'
const HLS_ONLY = new Set([FAIRPLAY, '3ea8778f-7742-4bf9-b18b-e834b2acbd47', 'be58615b-19c4-4684-88b3-c8c57e99e957', '81376844-f976-481e-a84e-cc25d39b0b33', '48582a1d-1ff4-426e-8cd5-06424fcc578c'])
/** PallyCon's constant VOD explicitIV, ASCII "0123456789abcdef" (pallycon-kms.md §4). */
const PALLYCON_IV = 'MDEyMzQ1Njc4OWFiY2RlZg=='
const USER_AGENT = EXPECTED_USER_AGENT

// ---------------------------------------------------------------------------------------------
// Real replies: the embedded key provider answers every request completely and correctly.
// ---------------------------------------------------------------------------------------------

const embedded = localProvider({
  secret: Buffer.alloc(32, 7),
  playReadyLaUrl: 'https://license.pallycon.com/ri/licenseManager.do',
  hlsKeyUrlBase: 'https://testtokyo.pallycon.com/ri/hlskeyPackager.do',
  widevineProvider: 'inkaentworks'
})

/** route 'speke' keeps the request's kids; 'pallycon-v2' answers as PallyCon's KMS does, with kids of its own. */
async function realReply (route: KeyRoute, body: Buffer, spekeVersion?: string): Promise<string> {
  const request = { route, dialect: dialectFor(route, spekeVersion), token: DEMO_TOKEN, spekeVersion, body }
  const reply = await embedded.getKeys(request, AbortSignal.timeout(5000))
  if (reply.status !== 200) throw new Error(`the embedded provider refused the request: ${reply.status} ${reply.body.toString()}`)
  return reply.body.toString('utf8')
}

// ---------------------------------------------------------------------------------------------
// Pure helpers: turn a correct reply's XML text into PallyCon's shapes and into broken variants.
// ---------------------------------------------------------------------------------------------

const b64 = (text: string | Buffer): string => Buffer.from(text).toString('base64')
const unb64 = (text: string): string => Buffer.from(text, 'base64').toString('utf8')
const DRM_SYSTEM = /<cpix:DRMSystem\b[^>]*>[\s\S]*?<\/cpix:DRMSystem>/g

function eachDrmSystem (xml: string, edit: (block: string, systemId: string) => string): string {
  return xml.replace(DRM_SYSTEM, block => edit(block, (/systemId="([^"]*)"/.exec(block)?.[1] ?? '').toLowerCase()))
}

/** Text of the first child element called `name` (qualified, e.g. cpix:PSSH). */
function childText (block: string, name: string): string | undefined {
  return new RegExp(`<${name}(?:\\s[^>]*)?>([^<]*)</${name}>`).exec(block)?.[1]
}

/** The child elements of a DRMSystem block, as written. */
function drmChildren (block: string): string[] {
  const inner = block.replace(/^<cpix:DRMSystem\b[^>]*>/, '').replace(/<\/cpix:DRMSystem>$/, '')
  return [...inner.matchAll(/<(\w+:\w+)\b[^>]*?(?:\/>|>[^<]*<\/\1>)/g)].map(m => m[0])
}

function rebuildDrmSystem (block: string, children: string[]): string {
  const open = /^<cpix:DRMSystem\b[^>]*>/.exec(block)?.[0] ?? ''
  return `${open}\n            ${children.join('\n            ')}\n        </cpix:DRMSystem>`
}

/** The data of a pssh box (Widevine protobuf, PlayReady Object): what PallyCon puts in ContentProtectionData. */
function psshData (pssh: string): Buffer {
  const box = Buffer.from(pssh, 'base64')
  const kids = box[8] === 1 ? box.readUInt32BE(28) : 0
  const at = 28 + (box[8] === 1 ? 4 + 16 * kids : 0)
  return box.subarray(at + 4, at + 4 + box.readUInt32BE(at))
}

const upperCaseSystemIds = (xml: string): string => xml.replace(/systemId="([^"]+)"/g, (_m, id: string) => `systemId="${id.toUpperCase()}"`)
const lowerCaseSystemIds = (xml: string): string => xml.replace(/systemId="([^"]+)"/g, (_m, id: string) => `systemId="${id.toLowerCase()}"`)
const constantExplicitIv = (xml: string): string => xml.replace(/explicitIV="[^"]*"/g, `explicitIV="${PALLYCON_IV}"`)
const declareSpeke = (xml: string): string => xml.includes('xmlns:speke=') ? xml : xml.replace('<cpix:CPIX ', '<cpix:CPIX xmlns:speke="urn:aws:amazon:com:speke" ')

function listElement (xml: string, local: string): string | undefined {
  return new RegExp(`<cpix:${local}>[\\s\\S]*?</cpix:${local}>|<cpix:${local}/>`).exec(xml)?.[0]
}

/** PallyCon writes ContentKeyPeriodList and ContentKeyUsageRuleList before DRMSystemList. */
function listsBeforeDrmSystemList (xml: string): string {
  const lists = ['ContentKeyPeriodList', 'ContentKeyUsageRuleList'].map(l => listElement(xml, l)).filter((l): l is string => l !== undefined)
  let out = xml
  for (const list of lists) out = out.replace(list, '')
  return out.replace('<cpix:DRMSystemList>', `${lists.join('\n    ')}\n    <cpix:DRMSystemList>`)
}

/**
 * A correct reply rewritten the way PallyCon answers (pallycon-kms.md §4, speke-cpix-rules.md §5): upper-case system ids,
 * usage rules and key periods before DRMSystemList, constant explicitIV, ContentProtectionData holding the bare pssh payload
 * and written before PSSH, speke:ProtectionHeader for PlayReady, URIExtXKey for HLS systems, the media HLSSignalingData without @playlist.
 */
function pallyconShape (xml: string): string {
  const out = eachDrmSystem(xml, (block, systemId) => {
    const pssh = childText(block, 'cpix:PSSH')
    const hls = drmChildren(block).filter(c => c.startsWith('<cpix:HLSSignalingData'))
    const others = drmChildren(block).filter(c => !/^<(cpix:(PSSH|ContentProtectionData|HLSSignalingData|URIExtXKey)|speke:ProtectionHeader)\b/.test(c))
    const children: string[] = []
    if (pssh !== undefined && pssh !== '') {
      const payload = b64(psshData(pssh))
      children.push(`<cpix:ContentProtectionData>${payload}</cpix:ContentProtectionData>`)
      if (systemId === PLAYREADY) children.push(`<speke:ProtectionHeader>${payload}</speke:ProtectionHeader>`)
    }
    children.push(...hls.map(h => h.replace(' playlist="media"', '')))
    const mediaTag = hls.map(h => unb64(/>([^<]*)</.exec(h)?.[1] ?? '')).find(text => text.startsWith('#EXT-X-KEY:'))
    const uri = childText(block, 'cpix:URIExtXKey') ?? (mediaTag === undefined ? undefined : b64(/URI="([^"]+)"/.exec(mediaTag)?.[1] ?? ''))
    if (HLS_ONLY.has(systemId) && uri !== undefined) children.push(`<cpix:URIExtXKey>${uri}</cpix:URIExtXKey>`)
    children.push(...others)
    if (pssh !== undefined && pssh !== '') children.push(`<cpix:PSSH>${pssh}</cpix:PSSH>`)
    return rebuildDrmSystem(block, children)
  })
  return declareSpeke(listsBeforeDrmSystemList(constantExplicitIv(upperCaseSystemIds(out))))
}

/** PallyCon's 2020 samples: only one HLSSignalingData, for one playlist. */
function hlsForOnePlaylist (xml: string, keep: 'master' | 'media'): string {
  return eachDrmSystem(xml, block => rebuildDrmSystem(block, drmChildren(block).filter(c =>
    !c.startsWith('<cpix:HLSSignalingData') || (keep === 'master') === /playlist="(master|multiVariant)"/.test(c))))
}

/** A KMS that drops the period list and the filters of its usage rules. */
function withoutPeriodsAndFilters (xml: string): string {
  const periods = listElement(xml, 'ContentKeyPeriodList')
  const out = periods === undefined ? xml : xml.replace(periods, '')
  return out.replace(/<cpix:(KeyPeriodFilter|VideoFilter|AudioFilter)\b[^>]*\/>/g, '')
}

function plainValues (xml: string): string[] {
  return [...xml.matchAll(/<pskc:PlainValue>([^<]+)<\/pskc:PlainValue>/g)].map(m => m[1].trim())
}

/** The first Widevine PSSH carries another kid than its DRMSystem names. */
function wrongKidInWidevinePssh (xml: string): string {
  let done = false
  return eachDrmSystem(xml, (block, systemId) => {
    const pssh = childText(block, 'cpix:PSSH')
    if (done || systemId !== WIDEVINE || pssh === undefined) return block
    const kid = Buffer.from((/ kid="([^"]+)"/.exec(block)?.[1] ?? '').replace(/-/g, ''), 'hex')
    const box = Buffer.from(pssh, 'base64')
    const at = box.indexOf(kid)
    if (at === -1) throw new Error('the Widevine PSSH does not hold its kid')
    Buffer.alloc(16, 0x5a).copy(box, at)
    done = true
    return block.replace(pssh, box.toString('base64'))
  })
}

function withoutFirstDrmSystem (xml: string, systemId: string): string {
  let done = false
  return eachDrmSystem(xml, (block, id) => {
    if (done || id !== systemId) return block
    done = true
    return '<!-- removed -->'
  })
}

/** The first key loses its last byte: 15 bytes of base64. */
function fifteenByteKey (xml: string): string {
  const key = plainValues(xml)[0]
  return xml.replace(`<pskc:PlainValue>${key}</pskc:PlainValue>`, `<pskc:PlainValue>${b64(Buffer.from(key, 'base64').subarray(0, 15))}</pskc:PlainValue>`)
}

/** The PlayReady header's CHECKSUM (UTF-16LE inside the PSSH box) replaced by another of the same length. */
function badPlayReadyChecksum (xml: string): string {
  return eachDrmSystem(xml, (block, systemId) => {
    const pssh = childText(block, 'cpix:PSSH')
    if (systemId !== PLAYREADY || pssh === undefined) return block
    const box = Buffer.from(pssh, 'base64')
    const open = box.indexOf(Buffer.from('<CHECKSUM>', 'utf16le'))
    if (open === -1) throw new Error('this PlayReady header has no CHECKSUM')
    const start = open + Buffer.byteLength('<CHECKSUM>', 'utf16le')
    const end = box.indexOf(Buffer.from('</CHECKSUM>', 'utf16le'), start)
    const old = box.subarray(start, end).toString('utf16le')
    const replacement = old.startsWith('AAAA') ? 'BBBBBBBBBBB=' : 'AAAAAAAAAAA='
    Buffer.from(replacement, 'utf16le').copy(box, start)
    return block.replace(pssh, box.toString('base64'))
  })
}

function checksumOf (xml: string): string | undefined {
  const pssh = /systemId="9a04f079-9840-4286-ab92-e65be0885f95"[^>]*>[\s\S]*?<cpix:PSSH>([^<]+)</i.exec(xml)?.[1]
  return pssh === undefined ? undefined : /<CHECKSUM>([^<]+)</.exec(psshData(pssh).toString('utf16le'))?.[1]
}

const truncated = (xml: string): string => xml.slice(0, Math.floor(xml.length / 2))

interface Served { status: number, type: string, body: string }
interface Broken { name: string, serve: (correct: string) => Served, status: number, message: RegExp }

const xmlReply = (body: string): Served => ({ status: 200, type: 'application/xml', body })
const HTML_502 = '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n'

/** The broken replies of the issue; `status`/`message` are what the caller must get instead of keys. */
const BROKEN: Broken[] = [
  { name: 'wrong kid in the Widevine pssh', serve: x => xmlReply(wrongKidInWidevinePssh(x)), status: 502, message: /^KMS reply: the PSSH of DRM system \S+ for kid \S+ does not carry kid / },
  { name: 'missing DRM system', serve: x => xmlReply(withoutFirstDrmSystem(x, PLAYREADY)), status: 502, message: /^KMS reply: DRM system 9a04f079-9840-4286-ab92-e65be0885f95 for kid \S+ is missing$/i },
  { name: '15-byte key', serve: x => xmlReply(fifteenByteKey(x)), status: 502, message: /^KMS reply: the key for kid \S+ has 15 bytes, not 16$/ },
  { name: 'bad PlayReady checksum', serve: x => xmlReply(badPlayReadyChecksum(x)), status: 502, message: /^KMS reply: PlayReady CHECKSUM does not match the key for kid / },
  { name: 'JSON error with HTTP 200', serve: () => ({ status: 200, type: 'application/json', body: JSON.stringify({ error_code: 5000, message: 'Key generation failed in the HSM' }) }), status: 502, message: /^KMS error \(HTTP 200\): 5000 Key generation failed in the HSM$/ },
  { name: 'JSON error with HTTP 200 blaming the site', serve: () => ({ status: 200, type: 'application/json;charset=UTF-8', body: JSON.stringify({ error_code: 1004, message: "The Site ID's service is stopped." }) }), status: 403, message: /^KMS error \(HTTP 200\): 1004 The Site ID's service is stopped\.$/ },
  { name: 'HTML 502 page', serve: () => ({ status: 502, type: 'text/html', body: HTML_502 }), status: 502, message: /^KMS returned no CPIX \(HTTP 502, an HTML page\)$/ },
  { name: 'HTML page with HTTP 200', serve: () => ({ status: 200, type: 'text/html; charset=utf-8', body: '<!DOCTYPE html>\n<html><body>Service temporarily unavailable</body></html>' }), status: 502, message: /^KMS returned no CPIX \(HTTP 200, an HTML page\)$/ },
  { name: 'truncated XML', serve: x => xmlReply(truncated(x)), status: 502, message: /^KMS reply is not a usable CPIX document: Malformed XML/ }
]

// ---------------------------------------------------------------------------------------------
// The proxy in front of a fake KMS
// ---------------------------------------------------------------------------------------------

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, text: string }

async function setup (t: Test, env: Record<string, string> = {}): Promise<{ kms: FakeKms, proxy: RunningProxy }> {
  const kms = await startFakeKms(replyWith(500, 'text/plain', 'no reply scripted'))
  const proxy = await startProxy({ KMS_URL: kms.url, KMS_TIMEOUT_MS: '3000', AUDIT: 'off', ...env })
  t.teardown(async () => { await proxy.close(); await kms.close() })
  return { kms, proxy }
}

type Caller = { kind: 'speke-v2', version: string } | { kind: 'speke-v1' } | { kind: 'pallycon' }

async function ask (proxy: RunningProxy, kms: FakeKms, caller: Caller, body: Buffer, served: Served): Promise<Answer> {
  kms.handle(replyWith(served.status, served.type, served.body))
  const headers: Record<string, string> = { 'content-type': 'application/xml' }
  if (caller.kind === 'speke-v2') headers['x-speke-version'] = caller.version
  const url = caller.kind === 'pallycon' ? `${proxy.url}/v2/cpix/pallycon/getKey/${DEMO_TOKEN}` : `${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`
  const res = await request(url, { method: 'POST', body, headers })
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

/** The caller gets the documented error instead of keys: status, message, and not one key byte. */
function assertRefused (t: Test, res: Answer, broken: Broken, keys: string[], label: string): void {
  t.equal(res.status, broken.status, `${label}: ${broken.name} → ${broken.status}`)
  t.match(res.text, broken.message, `${label}: ${broken.name} → the body names the problem`)
  t.match(res.headers['content-type'], /^text\/plain/, `${label}: ${broken.name} → a plain-text error, not CPIX`)
  for (const key of keys) {
    t.notOk(res.text.includes(key), `${label}: ${broken.name} → key ${key.slice(0, 4)}… is not in the reply`)
    t.notOk(res.text.toLowerCase().includes(Buffer.from(key, 'base64').toString('hex')), `${label}: ${broken.name} → nor its hex`)
  }
}

// ---------------------------------------------------------------------------------------------
// What a repaired SPEKE v2 reply must look like
// ---------------------------------------------------------------------------------------------

/** An element and its descendants as comparable text: names and attributes (kids through `kidMap`), not prefixes or whitespace. */
function canonical (el: XmlElement | undefined, kidMap?: Map<string, string>): string {
  if (el === undefined) return '(absent)'
  const attrs = Object.entries(el.attrs).filter(([k]) => !k.startsWith('xmlns')).map(([k, v]) => {
    const value = k === 'kid' ? (kidMap?.get(v.toLowerCase()) ?? v.toLowerCase()) : v
    return `${k}=${value}`
  }).sort()
  return `${el.local}(${attrs.join(',')})[${childElements(el).map(c => canonical(c, kidMap)).join(',')}]`
}

function list (doc: CpixDocument, local: string): XmlElement | undefined {
  return childElements(doc.root, CPIX_NS, local)[0]
}

function hlsParts (text: string): { tag: string, attributes: string } {
  const m = /^#(EXT-X-KEY|EXT-X-SESSION-KEY):(.*)$/.exec(text)
  return { tag: m?.[1] ?? `not a tag: ${text.slice(0, 20)}`, attributes: m?.[2] ?? '' }
}

function assertSpekeV2Reply (t: Test, requestBody: Buffer, served: string, res: Answer, version: string, label: string): void {
  t.equal(res.status, 200, `${label}: 200 (${res.status === 200 ? 'ok' : res.text})`)
  if (res.status !== 200) return
  t.equal(res.headers['x-speke-version'], version, `${label}: X-Speke-Version echoed`)
  t.equal(res.headers['x-speke-user-agent'], USER_AGENT, `${label}: X-Speke-User-Agent set`)
  t.equal(res.headers['speke-user-agent'], undefined, `${label}: no SPEKE v1 Speke-User-Agent`)
  t.match(res.headers['content-type'], /^application\/xml/, `${label}: application/xml`)

  const req = parseCpix(requestBody.toString('utf8'))
  const reply = parseCpix(res.text)
  const { kidMap } = verifyReply(req, reply)
  t.same(spekeV2Problems(req, reply, kidMap), [], `${label}: passes the SPEKE v2 response checks`)
  t.equal(reply.contentId, req.contentId, `${label}: CPIX@contentId as requested`)
  t.equal(reply.version, req.version, `${label}: CPIX@version as requested`)
  t.same(plainValues(res.text).sort(), plainValues(served).sort(), `${label}: the KMS's keys, untouched`)

  const topOrder = ['ContentKeyList', 'DRMSystemList', 'ContentKeyPeriodList', 'ContentKeyUsageRuleList']
  const top = childElements(reply.root, CPIX_NS).map(e => e.local)
  t.same(top, topOrder.filter(l => top.includes(l)), `${label}: top-level lists in schema order`)

  t.notMatch(res.text, /<\w+:(ProtectionHeader|KeyFormat|KeyFormatVersions)\b/, `${label}: no speke:* items`)
  t.notMatch(res.text, /URIExtXKey/, `${label}: no URIExtXKey`)

  for (const system of reply.drmSystems) {
    const where = `${label}: ${system.systemId}/${system.kid}`
    t.ok(req.drmSystems.some(s => s.systemId === system.systemId), `${where}: systemId in the caller's case`)
    const order = childElements(system.element, CPIX_NS).map(e => e.local)
    const rank = ['PSSH', 'ContentProtectionData', 'HLSSignalingData', 'SmoothStreamingProtectionHeaderData']
    t.same(order, [...order].sort((a, b) => rank.indexOf(a) - rank.indexOf(b)), `${where}: children in schema order`)
    if (system.pssh !== undefined && system.pssh !== '') {
      const fragment = unb64(system.contentProtectionData ?? '')
      t.equal(/<cenc:pssh xmlns:cenc="urn:mpeg:cenc:2013">([^<]+)<\/cenc:pssh>/.exec(fragment)?.[1], system.pssh, `${where}: ContentProtectionData is the <cenc:pssh> fragment of the PSSH`)
      if (system.systemId.toLowerCase() === PLAYREADY) {
        t.equal(/<mspr:pro xmlns:mspr="urn:microsoft:playready">([^<]+)<\/mspr:pro>/.exec(fragment)?.[1], b64(psshData(system.pssh)), `${where}: + the <mspr:pro> of the PSSH's PlayReady Object`)
      }
    }
    const asked = req.drmSystems.find(s => s.systemId === system.systemId && (kidMap.get(s.kid) ?? s.kid) === system.kid)
    if (asked !== undefined && asked.hlsSignaling.length > 0) {
      const masterName = asked.hlsSignaling.some(h => h.playlist === 'multiVariant') ? 'multiVariant' : 'master'
      t.same(system.hlsSignaling.map(h => h.playlist), ['media', masterName], `${where}: HLSSignalingData for media and ${masterName}`)
      const [media, master] = system.hlsSignaling.map(h => hlsParts(unb64(h.value)))
      t.equal(media?.tag, 'EXT-X-KEY', `${where}: media is #EXT-X-KEY`)
      t.equal(master?.tag, 'EXT-X-SESSION-KEY', `${where}: master is #EXT-X-SESSION-KEY`)
      t.equal(master?.attributes, media?.attributes, `${where}: identical attributes`)
    }
  }
  for (const local of ['ContentKeyPeriodList', 'ContentKeyUsageRuleList']) {
    t.equal(canonical(list(reply, local)), canonical(list(req, local), kidMap), `${label}: ${local} echoed as the request had it`)
  }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

const suiteDir = join(PROJECT_ROOT, 'test', 'fixtures', 'aws-suite')
const POSITIVE = (JSON.parse(readFileSync(join(suiteDir, 'cases.json'), 'utf8')) as Array<{ file: string, expect: string, spekeVersion: string }>)
  .filter(c => c.expect === 'accept')
  .map(c => ({ name: c.file, version: c.spekeVersion, body: readFileSync(join(suiteDir, c.file)) }))
const SHARED_V2 = ['aws-speke-v2/aws-doc-v2-kid-override-request-widevine-cbcs-live.xml']
  .map(file => ({ name: file, version: '2.0', body: fixture(file) }))
const V2_REQUESTS = [...POSITIVE, ...SHARED_V2]
/** Widevine + PlayReady, cenc: the PlayReady header carries a CHECKSUM. */
const V2_CENC = POSITIVE.find(c => c.name === 'positive-p-v1-a1-widevine-playready.xml') ?? POSITIVE[0]

t.test('fixtures: the v2 requests are what these tests need', async t => {
  t.ok(POSITIVE.length >= 20, `${POSITIVE.length} positive cases of AWS's suite`)
  t.ok(V2_REQUESTS.some(r => r.version === '2.1'), 'a SPEKE v2.1 request is among them')
  t.equal(V2_CENC.name, 'positive-p-v1-a1-widevine-playready.xml')
  const sample = pallyconShape(await realReply('speke', V2_CENC.body, '2.0'))
  t.match(sample, /systemId="EDEF8BA9-79D6-4ACE-A3C8-27DCD51D21ED"/, 'PallyCon shape: upper-case system ids')
  t.match(sample, /<cpix:ContentKeyUsageRuleList>[\s\S]*<cpix:DRMSystemList>/, 'PallyCon shape: usage rules before DRMSystemList')
  t.match(sample, /<speke:ProtectionHeader>/, 'PallyCon shape: speke:ProtectionHeader')
  t.match(sample, /<cpix:ContentProtectionData>EhA/, 'PallyCon shape: ContentProtectionData holds the bare Widevine payload (key_id first)')
  t.match(sample, /<cpix:ContentProtectionData>igIAAAEAAQ/, 'PallyCon shape: ContentProtectionData holds the bare PlayReady Object')
  t.notMatch(sample, /<cpix:ContentProtectionData>PG/, 'PallyCon shape: no ContentProtectionData is an XML fragment')
  t.match(sample, /<cpix:ContentProtectionData>[^<]+<\/cpix:ContentProtectionData>\s*<speke:ProtectionHeader>[^<]+<\/speke:ProtectionHeader>(?:(?!<\/cpix:DRMSystem>)[\s\S])*<cpix:PSSH>/, 'PallyCon shape: ContentProtectionData and ProtectionHeader before PSSH')
  t.match(sample, `explicitIV="${PALLYCON_IV}"`, 'PallyCon shape: the constant explicitIV')
  t.notMatch(sample, /playlist="media"/, 'PallyCon shape: the media HLSSignalingData has no @playlist')
  t.ok(checksumOf(sample) !== undefined, 'the cenc PlayReady header has a CHECKSUM')
  t.not(checksumOf(badPlayReadyChecksum(sample)), checksumOf(sample), 'badPlayReadyChecksum changes it')
  const fp = pallyconShape(await realReply('speke', readFileSync(join(suiteDir, 'positive-p-v1-a1-fairplay.xml')), '2.0'))
  t.match(fp, /<cpix:URIExtXKey>c2tkOi8v/, 'PallyCon shape: FairPlay gets a URIExtXKey with its skd:// URI')
})

// ---------------------------------------------------------------------------------------------
// SPEKE v2 callers
// ---------------------------------------------------------------------------------------------

t.test('SPEKE v2: every PallyCon-shaped reply is repaired into one that passes the SPEKE v2 response checks', async t => {
  const { proxy, kms } = await setup(t)
  for (const c of V2_REQUESTS) {
    const caller: Caller = { kind: 'speke-v2', version: c.version }
    const kept = pallyconShape(await realReply('speke', c.body, c.version))
    // The embedded provider's PallyCon mode refuses CPIX 2.4 periods with both index and start/end: those keep their kids.
    const overridden = c.version === '2.0' ? pallyconShape(await realReply('pallycon-v2', c.body)) : kept
    const variants: Array<[string, string]> = [
      ['PallyCon shape, request kids', kept],
      ['PallyCon shape, KMS-assigned kids', overridden],
      ['PallyCon shape, HLS for the master playlist only', hlsForOnePlaylist(kept, 'master')],
      ['PallyCon shape, one HLSSignalingData without @playlist', hlsForOnePlaylist(overridden, 'media')],
      ['PallyCon shape, no key periods, usage rules without filters', withoutPeriodsAndFilters(kept)]
    ]
    for (const [name, served] of variants) {
      const res = await ask(proxy, kms, caller, c.body, xmlReply(served))
      assertSpekeV2Reply(t, c.body, served, res, c.version, `${c.name} [${name}]`)
      t.not(res.text, served, `${c.name} [${name}]: the reply was repaired`)
    }
  }
})

t.test('SPEKE v2: HLS signalling the caller did not ask for, for one playlist only, is completed rather than refused', async t => {
  const { proxy, kms } = await setup(t)
  const dashOnly = Buffer.from(V2_CENC.body.toString('utf8').replace(/<cpix:HLSSignalingData[^>]*>\s*<\/cpix:HLSSignalingData>/g, ''))
  t.notMatch(dashOnly.toString(), /HLSSignalingData/, 'the request asks for no HLS signalling')
  const served = hlsForOnePlaylist(pallyconShape(await realReply('speke', V2_CENC.body, '2.0')), 'media')
  t.match(served, /<cpix:HLSSignalingData>/, 'the KMS sends one HLSSignalingData without @playlist anyway')
  const res = await ask(proxy, kms, { kind: 'speke-v2', version: '2.0' }, dashOnly, xmlReply(served))
  assertSpekeV2Reply(t, dashOnly, served, res, '2.0', 'unasked HLS')
  const reply = parseCpix(res.text)
  t.ok(reply.drmSystems.length > 0 && reply.drmSystems.every(s => s.hlsSignaling.map(h => h.playlist).join() === 'media,master'), 'each DRMSystem has media and master')
})

t.test('SPEKE v2: system ids come back in the caller\'s case, whichever case the KMS used', async t => {
  const { proxy, kms } = await setup(t)
  const upperRequest = Buffer.from(upperCaseSystemIds(V2_CENC.body.toString('utf8')))
  const served = lowerCaseSystemIds(pallyconShape(await realReply('speke', upperRequest, '2.0')))
  t.match(served, /systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"/, 'the KMS answers in lower case')
  const res = await ask(proxy, kms, { kind: 'speke-v2', version: '2.0' }, upperRequest, xmlReply(served))
  assertSpekeV2Reply(t, upperRequest, served, res, '2.0', 'upper-case caller')
  t.match(res.text, /systemId="EDEF8BA9-79D6-4ACE-A3C8-27DCD51D21ED"/, 'Widevine in upper case')
  t.match(res.text, /systemId="9A04F079-9840-4286-AB92-E65BE0885F95"/, 'PlayReady in upper case')
  t.notMatch(res.text, /systemId="[^"]*[a-f][^"]*"/, 'no lower-case system id left')
})

t.test('SPEKE v2.1: a caller that names the master playlist multiVariant (CPIX 2.4) gets multiVariant back', async t => {
  const { proxy, kms } = await setup(t)
  const v21 = V2_REQUESTS.find(c => c.version === '2.1')
  if (v21 === undefined) throw new Error('no SPEKE v2.1 request')
  const body = v21.body
  t.match(body.toString(), /playlist="multiVariant"/, 'the request says multiVariant')
  t.notMatch(body.toString(), /playlist="master"/, 'and never master, which CPIX 2.4 does not know')
  const correct = await realReply('speke', body, '2.1')
  t.match(correct, /playlist="multiVariant"/, 'a correct reply says multiVariant')
  const unchanged = await ask(proxy, kms, { kind: 'speke-v2', version: '2.1' }, body, xmlReply(correct))
  t.equal(unchanged.status, 200)
  t.equal(unchanged.text, correct, 'a correct multiVariant reply needs no repair: byte for byte')
  for (const [name, served] of [['one HLSSignalingData without @playlist', hlsForOnePlaylist(pallyconShape(correct), 'media')], ['master only', hlsForOnePlaylist(pallyconShape(correct), 'master')]]) {
    const res = await ask(proxy, kms, { kind: 'speke-v2', version: '2.1' }, body, xmlReply(served))
    assertSpekeV2Reply(t, body, served, res, '2.1', `multiVariant caller [${name}]`)
    t.notMatch(res.text, /playlist="master"/, `multiVariant caller [${name}]: no playlist="master", which CPIX 2.4 does not know`)
  }
})

t.test('SPEKE v2: a correct reply that needs no repair comes back byte for byte', async t => {
  const { proxy, kms } = await setup(t)
  for (const c of V2_REQUESTS) {
    const correct = await realReply('speke', c.body, c.version)
    // Not what the proxy's own serialiser would write: another declaration, a comment, CRLF and a trailing newline.
    const served = correct.replace(/^<\?xml[^>]*\?>\n/, '<?xml version="1.0" encoding="UTF-8"?>\r\n<!-- PallyCon KMS -->\r\n') + '\r\n'
    t.not(served, correct)
    kms.handle(replyWith(200, 'application/xml;charset=UTF-8', served))
    const res = await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', body: c.body, headers: { 'content-type': 'application/xml', 'x-speke-version': c.version } })
    const text = await res.body.text()
    t.equal(res.statusCode, 200, `${c.name}: 200`)
    t.equal(text, served, `${c.name}: the KMS's bytes, unchanged`)
    t.equal(res.headers['content-type'], 'application/xml;charset=UTF-8', `${c.name}: the KMS's content type, unchanged`)
    t.equal(res.headers['x-speke-version'], c.version, `${c.name}: X-Speke-Version echoed`)
    t.equal(res.headers['x-speke-user-agent'], USER_AGENT, `${c.name}: X-Speke-User-Agent set`)
  }
})

t.test('SPEKE v2: every broken reply gives the documented error and no key', async t => {
  const { proxy, kms } = await setup(t)
  const caller: Caller = { kind: 'speke-v2', version: '2.0' }
  for (const [shape, correct] of [
    ['correct reply', await realReply('speke', V2_CENC.body, '2.0')],
    ['PallyCon shape, KMS-assigned kids', pallyconShape(await realReply('pallycon-v2', V2_CENC.body))]
  ]) {
    const keys = plainValues(correct)
    t.equal(keys.length, 2, `${shape}: two keys to keep out of error replies`)
    for (const broken of BROKEN) {
      const served = broken.serve(correct)
      const res = await ask(proxy, kms, caller, V2_CENC.body, served)
      assertRefused(t, res, broken, [...keys, ...plainValues(served.body)], `v2 ${shape}`)
      t.equal(res.headers['x-speke-version'], '2.0', `v2 ${shape}: ${broken.name} → X-Speke-Version echoed on the error`)
      t.equal(res.headers['x-speke-user-agent'], USER_AGENT, `v2 ${shape}: ${broken.name} → X-Speke-User-Agent on the error`)
    }
  }
  // Keys made for another key period are not relabelled by echoing the request's period list: 502.
  const shaped = pallyconShape(await realReply('pallycon-v2', V2_CENC.body))
  const otherPeriod = shaped.replace(/(<cpix:ContentKeyPeriod id="[^"]+" index=")0"/, '$11"')
  t.not(otherPeriod, shaped)
  const period = await ask(proxy, kms, caller, V2_CENC.body, xmlReply(otherPeriod))
  assertRefused(t, period, { name: 'another key period', serve: xmlReply, status: 502, message: /^KMS reply: ContentKeyPeriod keyPeriod_\S+ has index 1, the request asked for 0$/ }, plainValues(shaped), 'v2')

  // A ContentProtectionData fragment whose pssh is not the PSSH is not guessed at: 502.
  const correct = await realReply('speke', V2_CENC.body, '2.0')
  const firstCpd = /<cpix:ContentProtectionData>([^<]+)</.exec(correct)?.[1] ?? ''
  const otherBox = /<cpix:PSSH>([^<]+)</g.exec(correct.slice(correct.indexOf('</cpix:DRMSystem>')))?.[1] ?? ''
  const mismatched = correct.replace(firstCpd, b64(unb64(firstCpd).replace(/>[^<]+<\/cenc:pssh>/, `>${otherBox}</cenc:pssh>`)))
  t.not(mismatched, correct)
  const res = await ask(proxy, kms, caller, V2_CENC.body, xmlReply(mismatched))
  t.equal(res.status, 502)
  t.match(res.text, /^KMS reply: the pssh inside ContentProtectionData of DRM system \S+ for kid \S+ differs from its PSSH$/)
})

// ---------------------------------------------------------------------------------------------
// PallyCon's documented responses, elided values replaced by real ones of the same shape
// ---------------------------------------------------------------------------------------------

/**
 * PallyCon's samples elide `qAUAAAEAAQCeB...A=` (PlayReady payload) and `I0VYVC1YLUtFWTpN...DA1` (HLS tags).
 * Fill them from what the same DRMSystem carries: the PlayReady Object of its PSSH, the skd:// URI of its URIExtXKey.
 */
function completeDocumented (xml: string): string {
  return eachDrmSystem(xml, (block, systemId) => {
    let out = block
    const pssh = childText(block, 'cpix:PSSH')
    if (systemId === PLAYREADY && pssh !== undefined) out = out.replace(/qAUAAAEAAQCeB\.\.\.A=/g, b64(psshData(pssh)))
    const uri = childText(block, 'cpix:URIExtXKey')
    if (systemId === FAIRPLAY && uri !== undefined) {
      const attrs = `METHOD=SAMPLE-AES,URI="${unb64(uri)}",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"`
      out = out.replace(/I0VYVC1YLUtFWTpN\.\.\.DA1/, b64(`#EXT-X-KEY:${attrs}`)).replace(/I0VYVC1YLVNFU\.\.\.DU=/, b64(`#EXT-X-SESSION-KEY:${attrs}`))
    }
    return out
  })
}

const DOCUMENTED = [
  { request: 'dash-vod-request.xml', response: 'dash-vod-response.xml' },
  { request: 'dash-live-keyrotation-request.xml', response: 'dash-live-keyrotation-response.xml' },
  { request: 'hls-live-fairplay-request.xml', response: 'hls-live-fairplay-response.xml' },
  { request: 'hls-vod-fairplay-ncgaes128-request.xml', response: 'hls-vod-fairplay-ncgaes128-response.xml' }
].map(d => ({
  name: d.response,
  // PallyCon's sample requests say "your-content-id" where their responses say "cpix-test-cid".
  request: Buffer.from(fixtureText(`pallycon/${d.request}`).replace('id="your-content-id"', 'id="cpix-test-cid"')),
  response: completeDocumented(fixtureText(`pallycon/${d.response}`))
}))

t.test('PallyCon\'s documented responses, completed, are real: no elision left and every value decodes', async t => {
  for (const d of DOCUMENTED) {
    t.notMatch(d.response, /\.\.\./, `${d.name}: nothing elided`)
    t.ok(d.response.length > fixtureText(`pallycon/${d.name}`).length, `${d.name}: values filled in`)
    t.doesNotThrow(() => verifyReply(parseCpix(d.request.toString('utf8')), parseCpix(d.response)), `${d.name}: verifies against its request`)
  }
})

t.test('PallyCon API and SPEKE v1 callers: PallyCon\'s documented responses come back byte for byte, in PallyCon\'s shape', async t => {
  const { proxy, kms } = await setup(t)
  for (const caller of [{ kind: 'pallycon' }, { kind: 'speke-v1' }] as const) {
    // Two of PallyCon's sample requests name a DRMSystem kid that is no ContentKey: only the PallyCon API tolerates that.
    for (const d of DOCUMENTED.filter(d => caller.kind === 'pallycon' || !['dash-live-keyrotation-response.xml', 'hls-vod-fairplay-ncgaes128-response.xml'].includes(d.name))) {
      const res = await ask(proxy, kms, caller, d.request, xmlReply(d.response))
      t.equal(res.status, 200, `${caller.kind} ${d.name}: 200 (${res.status === 200 ? 'ok' : res.text})`)
      t.equal(res.text, d.response, `${caller.kind} ${d.name}: byte for byte`)
      t.match(res.text, /<cpix:CPIX [\s\S]*<pskc:PlainValue>/, `${caller.kind} ${d.name}: literal cpix:/pskc: prefixes`)
      t.match(res.text, /systemId="[0-9A-F-]{36}"/, `${caller.kind} ${d.name}: upper-case system ids as PallyCon sent them`)
      t.match(res.text, /<speke:ProtectionHeader>|<cpix:URIExtXKey>/, `${caller.kind} ${d.name}: v1 items kept`)
      t.equal(res.headers['x-speke-version'], undefined, `${caller.kind} ${d.name}: no X-Speke-Version`)
      t.equal(res.headers['speke-user-agent'], caller.kind === 'speke-v1' ? USER_AGENT : undefined, `${caller.kind} ${d.name}: Speke-User-Agent only on the SPEKE face`)
    }
  }
})

t.test('Anevia: PallyCon\'s documented Anevia response comes back byte for byte', async t => {
  const { proxy, kms } = await setup(t)
  const documented = fixtureText('pallycon/anevia-dash-response.xml')
  kms.handle(replyWith(200, 'application/xml', documented))
  const res = await request(`${proxy.url}/cpix/anevia/dash/${DEMO_TOKEN}/test-cid`)
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), documented)
  kms.handle(replyWith(200, 'application/xml', fifteenByteKey(documented)))
  const broken = await request(`${proxy.url}/cpix/anevia/dash/${DEMO_TOKEN}/test-cid`)
  t.equal(broken.statusCode, 502, 'a broken Anevia reply is refused too')
  t.match(await broken.body.text(), /has 15 bytes, not 16/)
})

t.test('SPEKE v2: PallyCon\'s documented responses are repaired for a SPEKE v2 caller asking the same', async t => {
  const { proxy, kms } = await setup(t)
  const kid = '0b1c2d3e-4f50-4617-8283-94a5b6c7d8e9'
  const drm = (systemId: string, children: string): string => `<cpix:DRMSystem kid="${kid}" systemId="${systemId}">${children}</cpix:DRMSystem>`
  const v2Request = (scheme: string, systems: string, periodIndex?: string): Buffer => Buffer.from(
    '<?xml version="1.0" encoding="UTF-8"?>\n<cpix:CPIX contentId="cpix-test-cid" version="2.3" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">\n' +
    `  <cpix:ContentKeyList><cpix:ContentKey kid="${kid}" commonEncryptionScheme="${scheme}"/></cpix:ContentKeyList>\n` +
    `  <cpix:DRMSystemList>${systems}</cpix:DRMSystemList>\n` +
    (periodIndex === undefined ? '' : `  <cpix:ContentKeyPeriodList><cpix:ContentKeyPeriod id="keyPeriod_e7c4423c-a2c6-46f4-bef3-2bfed6bae9c9" index="${periodIndex}"/></cpix:ContentKeyPeriodList>\n`) +
    `  <cpix:ContentKeyUsageRuleList><cpix:ContentKeyUsageRule kid="${kid}" intendedTrackType="VIDEO">${periodIndex === undefined ? '' : '<cpix:KeyPeriodFilter periodId="keyPeriod_e7c4423c-a2c6-46f4-bef3-2bfed6bae9c9"/>'}<cpix:VideoFilter/></cpix:ContentKeyUsageRule></cpix:ContentKeyUsageRuleList>\n` +
    '</cpix:CPIX>\n')
  const cenc = '<cpix:PSSH/><cpix:ContentProtectionData/>'
  const hls = '<cpix:HLSSignalingData playlist="media"/><cpix:HLSSignalingData playlist="master"/>'
  const cases: Array<[string, Buffer]> = [
    ['dash-vod-response.xml', v2Request('cenc', drm(PLAYREADY, cenc) + drm(WIDEVINE, cenc))],
    ['dash-live-keyrotation-response.xml', v2Request('cenc', drm(PLAYREADY, cenc) + drm(WIDEVINE, cenc), '128')],
    ['hls-live-fairplay-response.xml', v2Request('cbcs', drm(FAIRPLAY, hls), '128')]
  ]
  for (const [name, body] of cases) {
    const served = DOCUMENTED.find(d => d.name === name)?.response ?? ''
    const res = await ask(proxy, kms, { kind: 'speke-v2', version: '2.0' }, body, xmlReply(served))
    assertSpekeV2Reply(t, body, served, res, '2.0', `documented ${name}`)
    t.match(res.text, /^<cpix:CPIX[^>]* contentId="cpix-test-cid"/m, `documented ${name}: CPIX@contentId added`)
    t.match(res.text, /^<cpix:CPIX[^>]* version="2\.3"/m, `documented ${name}: CPIX@version added`)
  }
})

// ---------------------------------------------------------------------------------------------
// SPEKE v1 and PallyCon API callers: verification only
// ---------------------------------------------------------------------------------------------

const V1_REQUESTS = [
  'aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml',
  'aws-speke-v1/aws-doc-v1-live-request-aes128-sampleaes-widevine-playready.xml',
  'aws-speke-v1/aws-doc-v1-kid-override-request-widevine.xml'
].map(file => ({ name: file, body: fixture(file) }))

const PALLYCON_REQUESTS = [
  ...['captured-multi-key-audio-sd-hd-cbcs.http', 'captured-single-key-wv-pr-fp.http', 'captured-key-rotation-period128.http', 'captured-ncg-ncghlsaes128.http']
    .map(file => ({ name: file, body: capturedBody(`pallycon/python-client/${file}`) })),
  ...DOCUMENTED.map(d => ({ name: d.name.replace('response', 'request'), body: d.request }))
]

t.test('SPEKE v1: the v1 items are kept, the reply comes back byte for byte, Speke-User-Agent set', async t => {
  const { proxy, kms } = await setup(t)
  for (const c of V1_REQUESTS) {
    const served = constantExplicitIv(await realReply('speke', c.body))
    const res = await ask(proxy, kms, { kind: 'speke-v1' }, c.body, xmlReply(served))
    t.equal(res.status, 200, `${c.name}: 200 (${res.status === 200 ? 'ok' : res.text})`)
    t.equal(res.text, served, `${c.name}: byte for byte`)
    t.equal(res.headers['speke-user-agent'], USER_AGENT, `${c.name}: Speke-User-Agent`)
    t.equal(res.headers['x-speke-version'], undefined, `${c.name}: no X-Speke-Version`)
    t.equal(res.headers['x-speke-user-agent'], undefined, `${c.name}: no X-Speke-User-Agent`)
    if (c.body.includes('<speke:')) t.match(res.text, /<speke:(ProtectionHeader|KeyFormat)>[^<]+</, `${c.name}: speke:* items kept`)
    if (c.body.includes('URIExtXKey')) t.match(res.text, /<cpix:URIExtXKey>[^<]+</, `${c.name}: URIExtXKey kept`)
  }
})

t.test('SPEKE v1: every broken reply gives the documented error and no key', async t => {
  const { proxy, kms } = await setup(t)
  const c = V1_REQUESTS[0]
  const correct = await realReply('speke', c.body)
  t.ok(checksumOf(correct) !== undefined, 'the v1 PlayReady header has a CHECKSUM')
  for (const broken of BROKEN) {
    const served = broken.serve(correct)
    const res = await ask(proxy, kms, { kind: 'speke-v1' }, c.body, served)
    assertRefused(t, res, broken, [...plainValues(correct), ...plainValues(served.body)], 'v1')
    t.equal(res.headers['speke-user-agent'], USER_AGENT, `v1: ${broken.name} → Speke-User-Agent on the error`)
  }
})

t.test('PallyCon API: replies stay in PallyCon\'s shape byte for byte; only verification applies', async t => {
  const { proxy, kms } = await setup(t)
  for (const c of PALLYCON_REQUESTS) {
    const served = pallyconShape(await realReply('pallycon-v2', c.body))
    const res = await ask(proxy, kms, { kind: 'pallycon' }, c.body, xmlReply(served))
    t.equal(res.status, 200, `${c.name}: 200 (${res.status === 200 ? 'ok' : res.text})`)
    t.equal(res.text, served, `${c.name}: byte for byte`)
    t.match(res.text, /^<\?xml[^>]*\?>\s*<cpix:CPIX /, `${c.name}: cpix: prefix`)
    t.match(res.text, /<pskc:Secret><pskc:PlainValue>/, `${c.name}: pskc: prefix`)
    t.match(res.text, /<cpix:ContentKeyUsageRuleList>[\s\S]*<cpix:DRMSystemList>/, `${c.name}: PallyCon's list order kept`)
  }
})

t.test('PallyCon API: every broken reply gives the documented error and no key', async t => {
  const { proxy, kms } = await setup(t)
  const documented = DOCUMENTED[0]
  t.ok(checksumOf(lowerCaseSystemIds(documented.response)) !== undefined, 'PallyCon\'s documented PlayReady header has a CHECKSUM')
  const lowered = (x: string): string => lowerCaseSystemIds(x)
  for (const broken of BROKEN) {
    // The helpers find systems case-insensitively; serve PallyCon's upper-case ids back after breaking.
    const served = broken.serve(lowered(documented.response))
    const upper = { ...served, body: served.type === 'application/xml' ? upperCaseSystemIds(served.body) : served.body }
    const res = await ask(proxy, kms, { kind: 'pallycon' }, documented.request, upper)
    assertRefused(t, res, broken, plainValues(documented.response), 'PallyCon API')
  }
})

t.test('RESPONSE_MODE=passthrough: even broken or unrepaired replies come back unchanged', async t => {
  const { proxy, kms } = await setup(t, { RESPONSE_MODE: 'passthrough' })
  const correct = await realReply('speke', V2_CENC.body, '2.0')
  const shaped = pallyconShape(await realReply('pallycon-v2', V2_CENC.body))
  const caller: Caller = { kind: 'speke-v2', version: '2.0' }
  const variants: Array<[string, string]> = [
    ['PallyCon shape', shaped],
    ...BROKEN.filter(b => b.serve(correct).type === 'application/xml').map((b): [string, string] => [b.name, b.serve(correct).body])
  ]
  t.equal(variants.length, 6, 'the shape and the five broken XML replies')
  for (const [name, served] of variants) {
    const res = await ask(proxy, kms, caller, V2_CENC.body, xmlReply(served))
    t.equal(res.status, 200, `${name}: 200`)
    t.equal(res.text, served, `${name}: byte for byte`)
    t.equal(res.headers['x-speke-version'], '2.0', `${name}: X-Speke-Version echoed`)
  }
})
