// `npm start` as a newcomer runs it: the embedded provider behind the real routes
// answers SPEKE v1 and v2 clients completely and deterministically.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { decodeXmlBytes } from '../../src/cpix/decode.js'
import { parseCpix } from '../../src/cpix/parse.js'
import { spekeV2Problems } from '../../src/cpix/speke-v2-conformance.js'
import { verifyReply } from '../../src/cpix/verify-reply.js'
import { DEMO_TOKEN, PROJECT_ROOT, fixture, EXPECTED_USER_AGENT } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

const suiteDir = join(PROJECT_ROOT, 'test', 'fixtures', 'aws-suite')

async function post (
  url: string, body: Buffer, headers: Record<string, string>
): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: Buffer }> {
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/xml', ...headers }, body })
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) }
}

t.test('SPEKE v2 presets over HTTP: 200, headers, and replies MediaPackage accepts', async t => {
  const proxy = await startProxy({ AUDIT: 'off' })
  t.teardown(() => proxy.close())
  const cases = (JSON.parse(readFileSync(join(suiteDir, 'cases.json'), 'utf8')) as Array<{ file: string, expect: string, spekeVersion: string }>).filter(c => c.expect === 'accept')
  for (const c of cases) {
    const body = readFileSync(join(suiteDir, c.file))
    const res = await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, body, { 'x-speke-version': c.spekeVersion })
    t.equal(res.status, 200, c.file)
    t.equal(res.headers['x-speke-version'], c.spekeVersion, `${c.file}: X-Speke-Version echoed`)
    t.equal(res.headers['x-speke-user-agent'], EXPECTED_USER_AGENT, `${c.file}: X-Speke-User-Agent`)
    const request = parseCpix(decodeXmlBytes(body))
    const reply = parseCpix(decodeXmlBytes(res.body))
    t.same(spekeV2Problems(request, reply, verifyReply(request, reply).kidMap), [], `${c.file}: SPEKE v2 response checks`)
  }
})

t.test('SPEKE v1 live and VOD over HTTP; the same request twice gives the same keys, also after a restart', async t => {
  const dataDir = t.testdir()
  const first = await startProxy({ AUDIT: 'off', DATA_DIR: dataDir })
  const keysOf = (b: Buffer): string[] => parseCpix(decodeXmlBytes(b)).contentKeys.map(k => `${k.kid}=${k.plainValue ?? ''}/${k.explicitIV ?? ''}`)
  const live = fixture('aws-speke-v1/aws-doc-v1-live-request-aes128-sampleaes-widevine-playready.xml')
  const vod = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
  const a = await post(`${first.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, live, {})
  const b = await post(`${first.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, live, {})
  const v = await post(`${first.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, vod, {})
  t.equal(a.status, 200)
  t.equal(v.status, 200)
  t.equal(a.headers['speke-user-agent'], EXPECTED_USER_AGENT)
  t.same(keysOf(a.body), keysOf(b.body), 'AWS\'s suite sends the same request twice and expects identical keys')
  await first.close()
  const second = await startProxy({ AUDIT: 'off', DATA_DIR: dataDir })
  t.teardown(() => second.close())
  const c = await post(`${second.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, live, {})
  t.same(keysOf(c.body), keysOf(a.body), 'the same keys after a restart with the secret kept in DATA_DIR')
  const other = await startProxy({ AUDIT: 'off', DATA_DIR: t.testdir() })
  t.teardown(() => other.close())
  const d = await post(`${other.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, live, {})
  t.notSame(keysOf(d.body), keysOf(a.body), 'another DATA_DIR (another generated secret) gives other keys')
})

t.test('PallyCon API: HLSSignalingData asked for WisePlay (HLS has no key tag for it) is left out, the rest is served', async t => {
  const proxy = await startProxy({ AUDIT: 'off' })
  t.teardown(() => proxy.close())
  const kid = 'c0ffee00-0000-4000-8000-000000000001'
  const systems = ['EDEF8BA9-79D6-4ACE-A3C8-27DCD51D21ED', '3D5E6D35-9B9A-41E8-B843-DD3C6E72C42C']
  const body = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?><cpix:CPIX id="wiseplay-hls" xmlns:cpix="urn:dashif:org:cpix"><cpix:ContentKeyList><cpix:ContentKey kid="${kid}" commonEncryptionScheme="cbcs"/></cpix:ContentKeyList><cpix:DRMSystemList>${systems.map(s => `<cpix:DRMSystem kid="${kid}" systemId="${s}"><cpix:PSSH/><cpix:HLSSignalingData/></cpix:DRMSystem>`).join('')}</cpix:DRMSystemList></cpix:CPIX>`)
  const res = await post(`${proxy.url}/v2/cpix/pallycon/getKey/${DEMO_TOKEN}`, body, {})
  t.equal(res.status, 200, res.status === 200 ? 'served' : res.body.toString().slice(0, 200))
  const reply = parseCpix(decodeXmlBytes(res.body))
  const bySystem = new Map(reply.drmSystems.map(d => [d.systemId.toLowerCase(), d]))
  t.ok(bySystem.get('edef8ba9-79d6-4ace-a3c8-27dcd51d21ed')?.hlsSignaling.some(h => h.value !== ''), 'Widevine gets its HLS key tag')
  t.same(bySystem.get('3d5e6d35-9b9a-41e8-b843-dd3c6e72c42c')?.hlsSignaling.filter(h => h.value !== ''), [], 'WisePlay gets none, and no 502 for it')
  t.ok(bySystem.get('3d5e6d35-9b9a-41e8-b843-dd3c6e72c42c')?.pssh, 'WisePlay still gets its pssh')
})
