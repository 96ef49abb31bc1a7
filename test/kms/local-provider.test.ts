// The embedded key provider answers every request a real key server would, completely, deterministically and to the letter.

import t from 'tap'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { decodeXmlBytes } from '../../src/cpix/decode.js'
import { parseCpix } from '../../src/cpix/parse.js'
import { spekeV2Problems } from '../../src/cpix/speke-v2-conformance.js'
import { verifyReply } from '../../src/cpix/verify-reply.js'
import { decodeBase64 } from '../../src/cpix/base64.js'
import { parsePsshBoxes } from '../../src/cpix/pssh.js'
import { decodeWidevinePsshData } from '../../src/cpix/widevine.js'
import { parsePlayReadyObject, parseWrmHeader } from '../../src/cpix/playready.js'
import { SPEKE_NS } from '../../src/cpix/model.js'
import type { CpixDocument } from '../../src/cpix/model.js'
import { localProvider } from '../../src/kms/local/provider.js'
import { credentialKey, credentialPrk, deriveKeyAndIv, deriveKid } from '../../src/kms/local/derive.js'
import { parseHlsTag } from '../../src/cpix/hls.js'
import { hkdfSync } from 'node:crypto'
import { loadOrCreateSecret } from '../../src/kms/local/secret.js'
import type { KeyProvider, ProviderRequest } from '../../src/kms/provider.js'
import { DEMO_TOKEN, PROJECT_ROOT, capturedBody, fixture } from '../helpers/fixtures.js'
import { xsdErrorsMany } from '../helpers/xsd.js'
import { dialectFor } from '../../src/pipeline/dialect.js'

const SECRET = Buffer.alloc(32, 7)
const SETTINGS = { secret: SECRET, playReadyLaUrl: 'https://license.pallycon.com/ri/licenseManager.do', hlsKeyUrlBase: 'https://keys.example.com/hls', widevineProvider: 'inkaentworks' }
const provider = localProvider(SETTINGS)

async function ask (p: KeyProvider, request: Omit<ProviderRequest, 'token' | 'dialect'>): Promise<{ status: number, xml: string }> {
  const dialect = dialectFor(request.route, request.spekeVersion)
  const reply = await p.getKeys({ token: DEMO_TOKEN, dialect, ...request }, AbortSignal.timeout(5000))
  return { status: reply.status, xml: reply.body.toString('utf8') }
}

function parse (bytes: Buffer | string): CpixDocument {
  return parseCpix(typeof bytes === 'string' ? bytes : decodeXmlBytes(bytes))
}

/** XSD errors of each reply that its request did not already have, all pairs in one batched xmllint run per schema. */
async function newXsdErrors (pairs: Array<{ request: Buffer, reply: string, version: string | undefined }>): Promise<string[][]> {
  const errors = await xsdErrorsMany(pairs.flatMap(p => [{ xml: p.request.toString('utf8'), cpixVersion: p.version }, { xml: p.reply, cpixVersion: p.version }]))
  return pairs.map((_, i) => {
    const before = new Set(errors[2 * i])
    return errors[2 * i + 1].filter(e => !before.has(e))
  })
}

const suiteDir = join(PROJECT_ROOT, 'test', 'fixtures', 'aws-suite')
const suite = JSON.parse(readFileSync(join(suiteDir, 'cases.json'), 'utf8')) as Array<{ file: string, expect: string, spekeVersion: string }>

t.test('SPEKE v2: every positive case of AWS\'s suite is answered in full and passes the SPEKE v2 response checks and the XSD', async t => {
  const forXsd: Array<{ file: string, request: Buffer, reply: string, version: string | undefined }> = []
  for (const c of suite.filter(c => c.expect === 'accept')) {
    const body = readFileSync(join(suiteDir, c.file))
    const { status, xml } = await ask(provider, { route: 'speke', spekeVersion: c.spekeVersion, body })
    t.equal(status, 200, `${c.file}: 200`)
    const request = parse(body)
    const reply = parse(xml)
    const verified = verifyReply(request, reply)
    t.same([...verified.kidMap.entries()].filter(([a, b]) => a !== b), [], `${c.file}: SPEKE keeps the request's kids`)
    t.same(spekeV2Problems(request, reply, verified.kidMap), [], `${c.file}: SPEKE v2 response checks`)
    t.notOk(xml.includes(SPEKE_NS) && /<\w+:(ProtectionHeader|KeyFormat)/.test(xml), `${c.file}: no speke:* items`)
    forXsd.push({ file: c.file, request: body, reply: xml, version: reply.version })
  }
  const added = await newXsdErrors(forXsd)
  forXsd.forEach((c, i) => t.same(added[i], [], `${c.file}: the reply adds no error against the CPIX ${c.version ?? ''} XSD`))
})

t.test('SPEKE v1: AWS\'s documented requests get every placeholder filled, v1 items kept, XSD-valid', async t => {
  const forXsd: Array<{ file: string, xml: string }> = []
  for (const file of ['aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml', 'aws-speke-v1/aws-doc-v1-live-request-aes128-sampleaes-widevine-playready.xml', 'aws-speke-v1/aws-doc-v1-kid-override-request-widevine.xml']) {
    const body = fixture(file)
    const { status, xml } = await ask(provider, { route: 'speke', body })
    t.equal(status, 200, `${file}: 200`)
    const request = parse(body)
    const reply = parse(xml)
    verifyReply(request, reply)
    for (const system of reply.drmSystems) {
      for (const [name, value] of Object.entries(system.speke)) t.not(value, '', `${file}: speke:${name} of ${system.systemId} filled`)
      const asked = request.drmSystems.find(s => s.systemId === system.systemId)
      if (asked?.uriExtXKey !== undefined) t.match(decodeBase64(system.uriExtXKey ?? '')?.toString(), /^(skd|https):\/\//, `${file}: URIExtXKey of ${system.systemId}`)
      if (asked?.pssh !== undefined) t.not(system.pssh, '', `${file}: PSSH of ${system.systemId}`)
    }
    const playready = reply.drmSystems.find(s => s.systemId === '9a04f079-9840-4286-ab92-e65be0885f95')
    if (playready !== undefined) {
      t.equal(playready.speke.ProtectionHeader, parsePsshBoxes(Buffer.from(playready.pssh ?? '', 'base64'))[0].data.toString('base64'), `${file}: speke:ProtectionHeader is the PlayReady Object of the PSSH`)
    }
    // SPEKE v1 requests carry ContentKey@explicitIV, which the CPIX 2.0 schema lacks: they are checked against 2.3.
    forXsd.push({ file, xml })
  }
  const errors = await xsdErrorsMany(forXsd.map(f => ({ xml: f.xml, cpixVersion: '2.3' })))
  forXsd.forEach((f, i) => t.same(errors[i], [], `${f.file}: valid against the CPIX 2.3 XSD`))
})

t.test('deterministic: same secret, same answer across a restart; another secret, other keys', async t => {
  const body = readFileSync(join(suiteDir, 'positive-p-v1-a1-widevine-playready.xml'))
  const first = await ask(provider, { route: 'speke', spekeVersion: '2.0', body })
  const again = await ask(localProvider({ ...SETTINGS, secret: Buffer.from(SECRET) }), { route: 'speke', spekeVersion: '2.0', body })
  t.equal(again.xml, first.xml, 'a fresh provider with the same secret answers byte for byte the same')
  const other = await ask(localProvider({ ...SETTINGS, secret: Buffer.alloc(32, 8) }), { route: 'speke', spekeVersion: '2.0', body })
  const keys = (xml: string): string[] => parse(xml).contentKeys.map(k => k.plainValue ?? '')
  t.equal(keys(first.xml).length, 2)
  t.not(keys(other.xml)[0], keys(first.xml)[0], 'a different secret gives different keys')
  t.not(keys(first.xml)[0], keys(first.xml)[1], 'VIDEO and AUDIO keys differ')
})

t.test('the generated secret is kept in DATA_DIR with mode 0600 and reused', async t => {
  const dir = t.testdir()
  const a = loadOrCreateSecret(dir, undefined)
  const b = loadOrCreateSecret(dir, undefined)
  t.same(a, b)
  t.equal(a.length, 32)
  t.equal(statSync(join(dir, 'local-kms.secret')).mode & 0o777, 0o600)
  t.throws(() => loadOrCreateSecret(dir, 'c2hvcnQ='), /LOCAL_KMS_SECRET must be base64 of at least 32 bytes/)
})

t.test('key rotation: each ContentKeyPeriod index gives distinct keys; periods and rules echo unchanged', async t => {
  const base = readFileSync(join(suiteDir, 'positive-key-rotation-index.xml'), 'utf8')
  const index = /index="(\d+)"/.exec(base)?.[1] ?? ''
  const a = await ask(provider, { route: 'speke', spekeVersion: '2.0', body: Buffer.from(base) })
  const b = await ask(provider, { route: 'speke', spekeVersion: '2.0', body: Buffer.from(base.replace(`index="${index}"`, `index="${Number(index) + 1}"`)) })
  t.not(parse(a.xml).contentKeys[0].plainValue, parse(b.xml).contentKeys[0].plainValue)
  const wv = parse(a.xml).drmSystems.find(s => s.systemId.toLowerCase() === 'edef8ba9-79d6-4ace-a3c8-27dcd51d21ed')
  if (wv !== undefined) t.equal(decodeWidevinePsshData(parsePsshBoxes(Buffer.from(wv.pssh ?? '', 'base64'))[0].data).cryptoPeriodIndex, Number(index), 'Widevine carries crypto_period_index')
})

t.test('PallyCon API: the KMS assigns kids from content and track type, whatever kids the request carried', async t => {
  const body = capturedBody('pallycon/python-client/captured-multi-key-audio-sd-hd-cbcs.http')
  const first = await ask(provider, { route: 'pallycon-v2', body })
  t.equal(first.status, 200)
  const request = parse(body)
  const reply = parse(first.xml)
  const verified = verifyReply(request, reply)
  const fresh = body.toString().replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (kid) => kid.split('').reverse().join('').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, (_m, a, b, c, d, e) => `${a}-${b}-${c}-${d}-${e}`).replace(/-/g, '').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5'))
  const second = parse((await ask(provider, { route: 'pallycon-v2', body: Buffer.from(fresh) })).xml)
  t.same(second.contentKeys.map(k => [k.kid, k.plainValue]), reply.contentKeys.map(k => [k.kid, k.plainValue]), 'fresh random kids in the request, same kids and keys in the reply')
  t.notOk(request.contentKeys.some(k => reply.contentKeys.some(r => r.kid === k.kid)), 'reply kids are the KMS\'s own')
  t.equal(reply.usageRules.length, 3, 'ContentKeyUsageRuleList present, which PallyCon\'s client needs')
  t.same(reply.usageRules.map(r => r.intendedTrackType), ['AUDIO', 'SD', 'HD'])
  t.equal(verified.keys.length, 3)
  for (const system of reply.drmSystems) {
    t.equal(system.systemId, system.systemId.toUpperCase(), 'system ids in the caller\'s (upper) case')
    t.not(system.pssh ?? '', '', `${system.systemId} has a PSSH`)
    t.not(system.contentProtectionData ?? '', '', `${system.systemId} has the PallyCon payload-only ContentProtectionData`)
  }
  const pr = reply.drmSystems.find(s => s.systemId === '9A04F079-9840-4286-AB92-E65BE0885F95')
  const header = parseWrmHeader(parsePlayReadyObject(Buffer.from(pr?.contentProtectionData ?? '', 'base64')).wrmHeader)
  t.equal(header.version, '4.3.0.0', 'cbcs PlayReady uses WRMHEADER 4.3')
  t.equal(header.kids[0].algId, 'AESCBC')
})

t.test('PallyCon API: documented requests, rotation and NCG; python-client requests with no XML errors', async t => {
  const cases: Array<[string, Buffer, ProviderRequest['route'], boolean?]> = [
    ['dash-vod', fixture('pallycon/dash-vod-request.xml'), 'pallycon-v2'],
    ['dash-live-keyrotation', fixture('pallycon/dash-live-keyrotation-request.xml'), 'pallycon-v2', true],
    ['hls-live-fairplay', fixture('pallycon/hls-live-fairplay-request.xml'), 'pallycon-v2', true],
    ['hls-vod-fairplay-ncgaes128', fixture('pallycon/hls-vod-fairplay-ncgaes128-request.xml'), 'pallycon-v2'],
    ['python single key', capturedBody('pallycon/python-client/captured-single-key-wv-pr-fp.http'), 'pallycon-v2'],
    ['python rotation', capturedBody('pallycon/python-client/captured-key-rotation-period128.http'), 'pallycon-v2', true],
    ['python ncg', capturedBody('pallycon/python-client/captured-ncg-ncghlsaes128.http'), 'pallycon-v1'],
    ['OvenMediaEngine', fixture('other/ovenmediaengine-request.xml'), 'pallycon-v2']
  ]
  for (const [name, body, route, keyRotation] of cases) {
    const res = await ask(provider, { route, body, keyRotation })
    t.equal(res.status, 200, `${name}: 200 ${res.status === 200 ? '' : res.xml}`)
    if (res.status !== 200) continue
    const reply = parse(res.xml)
    verifyReply(parse(body), reply)
    t.ok(reply.usageRules.length >= 1, `${name}: usage rules present`)
    const fairplay = reply.drmSystems.find(s => s.systemId.toLowerCase() === '94ce86fb-07ff-4f43-adb8-93d2fa968ca2')
    if (fairplay !== undefined) {
      t.match(decodeBase64(fairplay.uriExtXKey ?? '')?.toString(), /^skd:\/\//, `${name}: FairPlay skd:// URI`)
      t.equal(fairplay.hlsSignaling.length, 2, `${name}: FairPlay HLS signalling for media and master`)
    }
  }
})

t.test('Anevia: dash answers Widevine + PlayReady, hls answers FairPlay, for the content id of the path', async t => {
  const dash = parse((await ask(provider, { route: 'anevia', anevia: { format: 'dash', contentId: 'test-cid' } })).xml)
  t.equal(dash.id, 'test-cid')
  t.same(dash.drmSystems.map(s => s.systemId.toLowerCase()).sort(), ['9a04f079-9840-4286-ab92-e65be0885f95', 'edef8ba9-79d6-4ace-a3c8-27dcd51d21ed'])
  const hls = parse((await ask(provider, { route: 'anevia', anevia: { format: 'hls', contentId: 'test-cid' } })).xml)
  t.same(hls.drmSystems.map(s => s.systemId.toLowerCase()), ['94ce86fb-07ff-4f43-adb8-93d2fa968ca2'])
  t.equal(hls.contentKeys[0].kid, dash.contentKeys[0].kid, 'the same content gets the same kid on both formats')
})

t.test('requests the provider cannot answer get a 4xx with the reason', async t => {
  const fairplayCenc = readFileSync(join(suiteDir, 'negative-fairplay-cenc.xml'))
  const res = await ask(provider, { route: 'speke', spekeVersion: '2.0', body: fairplayCenc })
  t.equal(res.status, 422)
  t.match(res.xml, /non compatible with DRMSystem/)
  const encrypted = await ask(provider, { route: 'speke', body: Buffer.from(fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml').toString().replace('<cpix:ContentKeyList>', '<cpix:DeliveryDataList><cpix:DeliveryData><cpix:DeliveryKey/></cpix:DeliveryData></cpix:DeliveryDataList><cpix:ContentKeyList>')) })
  t.equal(encrypted.status, 422)
  t.match(encrypted.xml, /in the clear only/)
})

t.test('SPEKE v2: a request asking HLS signalling for one playlist gets both; CPIX 2.4 names the second multiVariant', async t => {
  const base = fixture('aws-speke-v2/aws-doc-v2-kid-override-request-widevine-cbcs-live.xml').toString().replace(/\s*<cpix:HLSSignalingData playlist="master"><\/cpix:HLSSignalingData>/, '')
  const v20 = parse((await ask(provider, { route: 'speke', spekeVersion: '2.0', body: Buffer.from(base) })).xml)
  t.same(v20.drmSystems[0].hlsSignaling.map(h => h.playlist), ['media', 'master'])
  const v21 = parse((await ask(provider, { route: 'speke', spekeVersion: '2.1', body: Buffer.from(base.replace('version="2.3"', 'version="2.4"')) })).xml)
  t.same(v21.drmSystems[0].hlsSignaling.map(h => h.playlist), ['media', 'multiVariant'])
  t.match(decodeBase64(v21.drmSystems[0].hlsSignaling[1].value)?.toString(), /^#EXT-X-SESSION-KEY:/)
})

t.test('key derivation: HKDF-SHA256 (RFC 5869) from one extract per credential gives the keys and kids it always gave', async t => {
  const credential = credentialKey(SECRET, 'BNCH', 'bench-access-key')
  const prk = credentialPrk(credential)
  // Pinned: what the provider answered before the extract was shared (hkdfSync per key); changing them loses every stored key.
  const pinned = deriveKeyAndIv(prk, 'bench-channel-1', '8A2F5E3C-1b4d-4e6f-9a81-0c2d3e4f5a61', undefined)
  t.equal(pinned.key.toString('base64'), '0NeABbxqG3QRCAJUJSbArA==')
  t.equal(pinned.iv.toString('base64'), 'iMLCgc4zkuZMRVZ0kOPRwQ==')
  const kid = deriveKid(prk, 'bench-channel-1', 'SD', undefined)
  t.equal(kid, '44a4bbe2-658d-51b2-65d3-72a2df4d0c90')
  t.equal(deriveKeyAndIv(prk, 'bench-channel-1', kid, undefined).key.toString('base64'), 'LcyHABBLNoQby5jLFKOM4g==')

  // The reference: node's HKDF (extract and expand in one call) over the same length-prefixed info.
  const info = (fields: Array<string | number | undefined>): string =>
    fields.map(f => f === undefined ? '-' : String(f)).map(f => `${Buffer.byteLength(f)}:${f}`).join('|')
  const hkdf = (fields: Array<string | number | undefined>, length: number): Buffer =>
    Buffer.from(hkdfSync('sha256', credential, 'speke-proxy/local-kms/v2', info(fields), length))
  for (const contentId of ['bench-channel-1', 'chaîne ✓ 1', 'a\u0000b|3:c', '']) {
    for (const period of [undefined, 0, 7, 4294967295]) {
      const both = hkdf(['content-key', contentId, 'bd5182a6-4e70-4192-8db4-3f5a6b7c8d94', period], 32)
      const derived = deriveKeyAndIv(prk, contentId, 'BD5182A6-4E70-4192-8DB4-3F5A6B7C8D94', period)
      t.same([derived.key, derived.iv], [both.subarray(0, 16), both.subarray(16)], `key and IV of ${JSON.stringify(contentId)}, period ${String(period)}`)
      for (const track of [undefined, 'SD', 'AUDIO']) {
        const expected = hkdf(['kid', contentId, track ?? 'ALL', period], 16).toString('hex')
        t.equal(deriveKid(prk, contentId, track, period).replace(/-/g, ''), expected, `kid of ${JSON.stringify(contentId)}, ${String(track)}, period ${String(period)}`)
      }
    }
  }
  t.not(credentialPrk(credentialKey(SECRET, 'BNCH', 'other-key')).prk.toString('hex'), prk.prk.toString('hex'), 'another access key, another PRK')

  // hkdfSync refuses an info over 1024 bytes: what it refused stays refused, what it took up to the limit is the same.
  let room = 1024
  while (info(['kid', 'c', 'T'.repeat(room), undefined]).length > 1024) room--
  t.equal(info(['kid', 'c', 'T'.repeat(room), undefined]).length, 1024)
  t.equal(deriveKid(prk, 'c', 'T'.repeat(room), undefined).replace(/-/g, ''), hkdf(['kid', 'c', 'T'.repeat(room), undefined], 16).toString('hex'), 'an info of exactly 1024 bytes')
  t.throws(() => hkdf(['kid', 'c', 'T'.repeat(room + 1), undefined], 16), { code: 'ERR_OUT_OF_RANGE' }, 'hkdfSync: 1025 bytes refused')
  t.throws(() => deriveKid(prk, 'c', 'T'.repeat(room + 1), undefined), RangeError, 'and refused here too')
})

t.test('HLS: the master playlist tag is the media tag as #EXT-X-SESSION-KEY, attributes alike, for every DRM and scheme', async t => {
  const files = ['positive-p-v5-a3-widevine-playready-fairplay.xml', 'positive-clearkey-aes128-cbcs-hls.xml', 'positive-key-rotation-index.xml']
  let pairs = 0
  for (const file of files) {
    const body = readFileSync(join(suiteDir, file))
    const reply = await ask(provider, { route: 'speke', spekeVersion: '2.0', body })
    t.equal(reply.status, 200, file)
    for (const system of parse(reply.xml).drmSystems) {
      const tag = (playlist: string): string => decodeBase64(system.hlsSignaling.find(h => h.playlist === playlist)?.value ?? '')?.toString('utf8') ?? ''
      const media = tag('media')
      const master = tag('master')
      if (media === '' && master === '') continue
      t.ok(media.startsWith('#EXT-X-KEY:'), `${file} ${system.systemId}: media tag`)
      t.equal(master, `#EXT-X-SESSION-KEY:${media.slice('#EXT-X-KEY:'.length)}`, `${file} ${system.systemId}: master tag`)
      t.same(parseHlsTag(master).attributes, parseHlsTag(media).attributes)
      pairs++
    }
  }
  t.ok(pairs >= 4, `${pairs} DRM systems with both playlists`)
})

t.test('given the parsed request, the provider answers from a copy: the pipeline\'s document is left as it was', async t => {
  const body = readFileSync(join(suiteDir, 'positive-p-v5-a3-widevine-playready-fairplay.xml'))
  const document = parse(body)
  const before = JSON.stringify(document.root)
  const fromDocument = await provider.getKeys({ route: 'speke', dialect: 'speke-v2.0', token: DEMO_TOKEN, spekeVersion: '2.0', body, document }, AbortSignal.timeout(5000))
  const fromBytes = await ask(provider, { route: 'speke', spekeVersion: '2.0', body })
  t.equal(JSON.stringify(document.root), before)
  t.equal(fromDocument.body.toString('utf8'), fromBytes.xml, 'the same answer as from the bytes')
})
