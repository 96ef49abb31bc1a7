// Attack: XML whose cost grows faster than its size (issue 10 §3). The worst documents of BODY_LIMIT size are answered in under 0.5 s.

import t from 'tap'
import { Agent, request } from 'undici'
import { decodeXmlBytes } from '../../src/cpix/decode.js'
import { parseCpix } from '../../src/cpix/parse.js'
import { MAX_LIST_ENTRIES, validateRequest } from '../../src/cpix/validate.js'
import { MAX_ATTRIBUTES, MAX_ATTRIBUTES_PER_ELEMENT, MAX_DEPTH, MAX_NODES, parseXml } from '../../src/cpix/xml.js'
import { localProvider } from '../../src/kms/local/provider.js'
import type { KeyRoute } from '../../src/protocol.js'
import { startFakeKms } from '../helpers/fake-kms.js'
import type { FakeKms } from '../helpers/fake-kms.js'
import { DEMO_TOKEN } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'
import type { RunningProxy } from '../helpers/proxy.js'
import { dialectFor } from '../../src/pipeline/dialect.js'

const LIMIT = 262_144 // BODY_LIMIT's default
const BOUND_MS = 500
const CPIX = 'xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:speke="urn:aws:amazon:com:speke"'
const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'

/** head + as many units as fit + tail, at most LIMIT bytes (ASCII only, so characters are bytes). */
function fill (head: string, unit: (i: number) => string, tail: string, maxUnits = Infinity): string {
  const parts: string[] = []
  let size = head.length + tail.length
  for (let i = 0; i < maxUnits; i++) {
    const u = unit(i)
    if (size + u.length > LIMIT) break
    parts.push(u)
    size += u.length
  }
  return head + parts.join('') + tail
}

const kid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`

/** `levels` nested elements, each declaring `perLevel` namespace prefixes: the scope a leaf sees holds levels × perLevel declarations. */
function nestedScopes (levels: number, perLevel: number): [string, string] {
  let open = ''
  let close = ''
  for (let l = 0; l < levels; l++) {
    const decls = Array.from({ length: perLevel }, (_, i) => ` xmlns:p${l}x${i}="urn:x:${l}:${i}"`).join('')
    open += `<n${l}${decls}>`
    close = `</n${l}>` + close
  }
  return [open, close]
}

interface Attack { name: string, body: string, route: 'v1' | 'v2' | 'pallycon' }

function attacks (): Attack[] {
  const list: Attack[] = []
  const add = (name: string, body: string, route: Attack['route'] = 'v1'): void => { list.push({ name, body, route }) }

  // The issue's document: K declarations on the root × E elements (every element used to copy all K).
  const rootDecls = Array.from({ length: 8000 }, (_, i) => ` xmlns:n${i}="u"`).join('')
  add('8000 namespace declarations on the root × 30000 elements', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}${rootDecls}>`, () => '<a/>', '</cpix:CPIX>'))
  // The same attack kept inside every cap: 62 levels × 63 declarations in scope (3906) over as many leaves as the caps allow,
  // unprefixed so each leaf's lookup walks the whole scope chain. The old per-element copy did 3906 × ~9900 map insertions.
  const [open, close] = nestedScopes(MAX_DEPTH - 2, MAX_ATTRIBUTES_PER_ELEMENT - 1)
  add('3906 declarations in scope (62 × 63) × 9900 leaf elements, within every cap', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}>${open}`, () => '<a/>', `${close}</cpix:CPIX>`, MAX_NODES - MAX_DEPTH - 5))
  add('3906 declarations in scope × 9900 prefixed leaves (prefix of the outermost level)', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}>${open}`, () => '<p0x0:a/>', `${close}</cpix:CPIX>`, MAX_NODES - MAX_DEPTH - 5))
  add('a declaration on every one of 9990 elements', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}>`, i => `<q:a xmlns:q="urn:q${i}"/>`, '</cpix:CPIX>', MAX_NODES - 10))

  add('65000 tiny elements', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}>`, () => '<a/>', '</cpix:CPIX>'))
  add('9990 elements with 2 attributes each, values full of entities', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}>`, i => `<a x="${'&amp;'.repeat(2)}" y="&#x41;${i}"/>`, '</cpix:CPIX>', MAX_NODES - 10))
  add('27000 attributes on one element', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}`, i => ` a${i}=""`, '/>'))
  add('64 attributes per element up to the total cap', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}>`, i => `<e${i}${Array.from({ length: MAX_ATTRIBUTES_PER_ELEMENT }, (_, j) => ` a${j}="${'&lt;'.repeat(2)}"`).join('')}/>`, '</cpix:CPIX>', Math.floor(MAX_ATTRIBUTES / MAX_ATTRIBUTES_PER_ELEMENT) - 1))
  add('52000 boolean attributes (no = to count)', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}`, i => ` a${i}`, '/>'))
  add('one 256 KB attribute value', `${HEAD}<cpix:CPIX ${CPIX} id="${'a'.repeat(LIMIT - 400)}"/>`)
  add('one attribute value of 52000 entities', `${HEAD}<cpix:CPIX ${CPIX} id="${'&amp;'.repeat(Math.floor((LIMIT - 400) / 5))}"/>`)
  add('43000 character references in text', `${HEAD}<cpix:CPIX id="c" ${CPIX}>${'&#x41;'.repeat(Math.floor((LIMIT - 400) / 6))}</cpix:CPIX>`)
  add('37000 comments', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}>`, () => '<!---->', '</cpix:CPIX>'))
  add('9990 comments', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}>`, () => '<!---->', '</cpix:CPIX>', MAX_NODES - 10))
  add('9990 processing instructions', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}>`, () => '<?a?>', '</cpix:CPIX>', MAX_NODES - 10))
  add('9990 CDATA sections', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}>`, () => '<![CDATA[<]]>', '</cpix:CPIX>', MAX_NODES - 10))
  const chain = Array.from({ length: MAX_DEPTH - 2 }, (_, l) => `<d${l}>`).join('') + Array.from({ length: MAX_DEPTH - 2 }, (_, l) => `</d${MAX_DEPTH - 3 - l}>`).join('')
  add('chains 62 deep, repeated to the element cap', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}>`, () => chain, '</cpix:CPIX>', Math.floor(MAX_NODES / (MAX_DEPTH - 2)) - 1))
  add('65000 unclosed tags (the validator names its whole tag stack)', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}>`, () => '<a>', ''))
  add('9990 unclosed tags', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}>`, () => '<a>', '', MAX_NODES - 10))
  add('9990 undeclared prefixes', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}>`, () => '<zz:a/>', '</cpix:CPIX>', MAX_NODES - 10))
  add('256 KB of one element name', `${HEAD}<cpix:CPIX id="c" ${CPIX}><${'a'.repeat(LIMIT - 400)}/></cpix:CPIX>`)
  add('256 KB of whitespace inside a tag', `${HEAD}<cpix:CPIX id="c" ${CPIX}${' '.repeat(LIMIT - 400)}/>`)
  add('UTF-16 with 3906 declarations in scope', fill(`<cpix:CPIX id="c" ${CPIX}>${open}`, () => '<a/>', `${close}</cpix:CPIX>`, 3000))

  // Valid documents as large as the caps let them be: all the work (validation, the key provider, the reply checks) happens.
  const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)
  const systems = ['edef8ba9-79d6-4ace-a3c8-27dcd51d21ed', '9a04f079-9840-4286-ab92-e65be0885f95', '94ce86fb-07ff-4f43-adb8-93d2fa968ca2', '3d5e6d35-9b9a-41e8-b843-dd3c6e72c42c']
  const perKey = MAX_LIST_ENTRIES.DRMSystem / MAX_LIST_ENTRIES.ContentKey
  const v1Drm = (i: number): string => systems.slice(0, perKey).map(s => `<cpix:DRMSystem kid="${kid(i)}" systemId="${s}"><cpix:PSSH/><cpix:URIExtXKey/><speke:ProtectionHeader/><speke:KeyFormat/></cpix:DRMSystem>`).join('')
  add(`SPEKE v1 at the list caps: ${MAX_LIST_ENTRIES.ContentKey} keys × ${perKey} DRM systems (valid)`, `${HEAD}<cpix:CPIX id="c" ${CPIX}><cpix:ContentKeyList>${range(MAX_LIST_ENTRIES.ContentKey).map(i => `<cpix:ContentKey kid="${kid(i)}"/>`).join('')}</cpix:ContentKeyList><cpix:DRMSystemList>${range(MAX_LIST_ENTRIES.ContentKey).map(v1Drm).join('')}</cpix:DRMSystemList></cpix:CPIX>`)
  const pcDrm = (i: number): string => systems.slice(0, perKey).map(s => `<cpix:DRMSystem kid="${kid(i)}" systemId="${s.toUpperCase()}"><cpix:PSSH/><cpix:ContentProtectionData/><cpix:HLSSignalingData/></cpix:DRMSystem>`).join('')
  add(`PallyCon API at the list caps: ${MAX_LIST_ENTRIES.ContentKey} keys × ${perKey} DRM systems (valid)`, `${HEAD}<cpix:CPIX id="c" ${CPIX}><cpix:ContentKeyList>${range(MAX_LIST_ENTRIES.ContentKey).map(i => `<cpix:ContentKey kid="${kid(i)}" commonEncryptionScheme="cbcs"/>`).join('')}</cpix:ContentKeyList><cpix:DRMSystemList>${range(MAX_LIST_ENTRIES.ContentKey).map(pcDrm).join('')}</cpix:DRMSystemList><cpix:ContentKeyUsageRuleList>${range(MAX_LIST_ENTRIES.ContentKeyUsageRule).map(i => `<cpix:ContentKeyUsageRule kid="${kid(i)}" intendedTrackType="T${i}"/>`).join('')}</cpix:ContentKeyUsageRuleList></cpix:CPIX>`, 'pallycon')
  add('SPEKE v1, 7000 content keys (over the list cap)', fill(`${HEAD}<cpix:CPIX id="c" ${CPIX}><cpix:ContentKeyList>`, i => `<cpix:ContentKey kid="${kid(i)}"/>`, '</cpix:ContentKeyList></cpix:CPIX>', 7000))
  add('SPEKE v2.0 header, 9990 usage rules', fill(`${HEAD}<cpix:CPIX contentId="c" version="2.3" ${CPIX}><cpix:ContentKeyList><cpix:ContentKey kid="${kid(0)}" commonEncryptionScheme="cenc"/></cpix:ContentKeyList><cpix:DRMSystemList><cpix:DRMSystem kid="${kid(0)}" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><cpix:PSSH/></cpix:DRMSystem></cpix:DRMSystemList><cpix:ContentKeyUsageRuleList>`, i => `<cpix:ContentKeyUsageRule kid="${kid(0)}" intendedTrackType="T${i}"/>`, '</cpix:ContentKeyUsageRuleList></cpix:CPIX>', MAX_NODES - 20), 'v2')
  return list
}

function bodyOf (attack: Attack): Buffer {
  if (attack.name.startsWith('UTF-16')) return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(attack.body, 'utf16le')])
  return Buffer.from(attack.body, 'utf8')
}

t.test('every attack document fits in BODY_LIMIT', async t => {
  for (const a of attacks()) t.ok(bodyOf(a).length <= LIMIT, `${a.name}: ${bodyOf(a).length} bytes`)
})

t.test('unit: parsing any attack document costs under 0.5 s, and the caps refuse with a clear 400', async t => {
  let worst = { name: '', wall: 0, cpu: 0 }
  for (const a of attacks()) {
    const cost = bestOf(5, () => {
      try {
        const doc = parseCpix(decodeXmlBytes(bodyOf(a)))
        validateRequest(doc, a.route === 'pallycon' ? 'pallycon' : a.route === 'v2' ? 'speke-v2.0' : 'speke-v1')
      } catch {}
    })
    if (cost.wall > worst.wall) worst = { name: a.name, ...cost }
    t.ok(cost.wall < BOUND_MS, `${a.name}: ${cost.wall.toFixed(0)} ms (CPU ${cost.cpu.toFixed(0)} ms)`)
  }
  t.comment(`slowest parse + validation: ${worst.name}, ${worst.wall.toFixed(0)} ms (CPU ${worst.cpu.toFixed(0)} ms)`)

  const refused = (xml: string): unknown => { try { parseXml(xml); return 'accepted' } catch (err) { return err } }
  t.match(refused(`<r>${'<a/>'.repeat(MAX_NODES)}</r>`), { status: 400, code: 'XML_TOO_LARGE', message: `XML document too large: more than ${MAX_NODES} elements, comments, CDATA sections and processing instructions; a CPIX document has far fewer` })
  t.match(refused(`<r>${'<!---->'.repeat(MAX_NODES)}</r>`), { status: 400, code: 'XML_TOO_LARGE' })
  t.match(refused(`<r${Array.from({ length: MAX_ATTRIBUTES_PER_ELEMENT + 1 }, (_, i) => ` a${i}="&quot;=&quot;"`).join('')}/>`), { status: 400, code: 'XML_TOO_LARGE', message: /an element has 65 attributes, more than 64/ })
  const attrs = (n: number): string => Array.from({ length: n }, (_, i) => i % 2 === 0 ? ` b${i}="=>"` : ` c${i}='a=b'`).join('')
  t.match(refused(`<r>${`<a${attrs(64)}/>`.repeat(MAX_ATTRIBUTES / 64 + 1)}</r>`), { status: 400, code: 'XML_TOO_LARGE', message: /more than 20000 attributes/ })
  t.equal(refused(`<r>${'<a/>'.repeat(MAX_NODES - 1)}</r>`) instanceof Error, false, 'exactly at the element cap is accepted')
  t.equal(refused(`<r>${`<a${attrs(MAX_ATTRIBUTES_PER_ELEMENT)}/>`.repeat(MAX_ATTRIBUTES / MAX_ATTRIBUTES_PER_ELEMENT)}<!-- <a b="c"> --><![CDATA[<a b="c">]]></r>`) instanceof Error, false, 'exactly at the attribute caps is accepted; = inside values, comments and CDATA does not count')
  const unclosed = refused(`<r>${'<abcdefgh>'.repeat(5000)}`)
  t.match(unclosed, { status: 400, code: 'MALFORMED_XML' })
  t.ok((unclosed as Error).message.length < 300, `a malformed document's message is cut short (${(unclosed as Error).message.length} characters)`)
})

/**
 * A fake PallyCon KMS that answers as the embedded provider does, so valid documents get full replies. It runs in
 * this process: each answer is remembered, so the repeated attempts time the proxy rather than the fake.
 */
async function pallyconLikeKms (): Promise<FakeKms> {
  const provider = localProvider({ secret: Buffer.alloc(32, 3), playReadyLaUrl: 'https://license.pallycon.com/ri/licenseManager.do', hlsKeyUrlBase: 'https://keys.example.com/hls', widevineProvider: 'inkaentworks' })
  const answers = new Map<string, { status: number, contentType?: string, body: Buffer }>()
  return await startFakeKms((req, res) => {
    const key = `${req.url} ${String(req.headers['x-speke-version'])} ${req.body.toString('base64')}`
    const known = answers.get(key)
    if (known !== undefined) {
      res.writeHead(known.status, { 'content-type': known.contentType ?? 'application/xml' })
      res.end(known.body)
      return
    }
    const url = new URL(req.url, 'http://kms')
    const pallycon = /^\/(v[12])\/cpix\/pallycon\/getKey\/([^/]+)$/.exec(url.pathname)
    const route: KeyRoute = pallycon === null ? 'speke' : pallycon[1] === 'v1' ? 'pallycon-v1' : 'pallycon-v2'
    const token = pallycon?.[2] ?? url.searchParams.get('enc-token') ?? ''
    const spekeVersion = req.headers['x-speke-version'] as string | undefined
    Promise.resolve().then(async () => await provider.getKeys({ route, dialect: dialectFor(route, spekeVersion), token, spekeVersion, body: req.body, keyRotation: url.searchParams.get('key-rotation') === 'true' }, AbortSignal.timeout(5000))).then(reply => {
      answers.set(key, reply)
      res.writeHead(reply.status, { 'content-type': reply.contentType ?? 'application/xml' })
      res.end(reply.body)
    }, () => { res.writeHead(500); res.end('fake KMS failed') })
  })
}

const SETTINGS = { AUDIT: 'off', RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_IP_PER_MINUTE: '0', MAX_EVENT_LOOP_DELAY_MS: '0' }

t.test('through the real server: every attack document is answered in under 0.5 s', async t => {
  const kms = await pallyconLikeKms()
  const proxies: Array<[string, RunningProxy]> = [
    ['embedded provider (KMS_URL=local)', await startProxy({ ...SETTINGS, KMS_URL: 'local' })],
    ['fake PallyCon KMS', await startProxy({ ...SETTINGS, KMS_URL: kms.url })]
  ]
  const agent = new Agent({ connections: 1, pipelining: 0 })
  t.teardown(async () => { await agent.close(); for (const [, p] of proxies) await p.close(); await kms.close() })
  let worst = { name: '', wall: 0, cpu: 0, status: 0 }
  for (const [label, proxy] of proxies) {
    for (const a of attacks()) {
      const path = a.route === 'pallycon' ? `/v2/cpix/pallycon/getKey/${DEMO_TOKEN}` : `/cpix/getKey?enc-token=${encodeURIComponent(DEMO_TOKEN)}`
      const headers: Record<string, string> = { 'content-type': 'application/xml', ...(a.route === 'v2' ? { 'x-speke-version': '2.0' } : {}) }
      const body = bodyOf(a)
      let status = 0
      let text = ''
      const cost = await bestOfAsync(5, async () => {
        const res = await request(`${proxy.url}${path}`, { method: 'POST', headers, body, dispatcher: agent })
        status = res.statusCode
        text = await res.body.text()
      })
      if (cost.wall > worst.wall) worst = { name: `${a.name} (${label})`, ...cost, status }
      t.ok(cost.wall < BOUND_MS, `${label}: ${a.name}: HTTP ${status} in ${cost.wall.toFixed(0)} ms (CPU ${cost.cpu.toFixed(0)} ms)`)
      if (status >= 400) t.ok(text.length > 0 && text.length <= 1000 && !/\n\s+at /.test(text), `${label}: ${a.name}: a short plain reason (${text.slice(0, 120)})`)
    }
  }
  t.comment(`slowest answer: ${worst.name}, HTTP ${worst.status}, ${worst.wall.toFixed(0)} ms (CPU ${worst.cpu.toFixed(0)} ms)`)
})

interface Cost { wall: number, cpu: number }

/**
 * The best of up to n runs, in wall time and in this process's CPU time (the server runs in this process):
 * the cost of the work, not of whatever else the machine was doing at that moment.
 */
function bestOf (n: number, run: () => void): Cost {
  const best = { wall: Infinity, cpu: Infinity }
  for (let i = 0; i < n && best.wall >= BOUND_MS / 2; i++) {
    const cpu = process.cpuUsage()
    const started = performance.now()
    run()
    best.wall = Math.min(best.wall, performance.now() - started)
    best.cpu = Math.min(best.cpu, cpuMs(process.cpuUsage(cpu)))
  }
  return best
}

async function bestOfAsync (n: number, run: () => Promise<void>): Promise<Cost> {
  const best = { wall: Infinity, cpu: Infinity }
  for (let i = 0; i < n && best.wall >= BOUND_MS / 2; i++) {
    const cpu = process.cpuUsage()
    const started = performance.now()
    await run()
    best.wall = Math.min(best.wall, performance.now() - started)
    best.cpu = Math.min(best.cpu, cpuMs(process.cpuUsage(cpu)))
  }
  return best
}

function cpuMs (usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000
}
