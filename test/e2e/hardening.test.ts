// Hostile and odd input: no token is ever echoed, nothing crashes into a 500, limits cannot be gamed,
// and SPEKE headers stay on every refusal.

import t from 'tap'
import { request } from 'undici'
import { loadConfig } from '../../src/config.js'
import { createUpstreamHealth } from '../../src/upstream-health.js'
import type { KeyRequestRecord } from '../../src/request-record.js'
import { encodeEncToken } from '../../src/tenants/enc-token.js'
import { replyWith, startFakeKms } from '../helpers/fake-kms.js'
import { DEMO_ACCESS_KEY, DEMO_TOKEN, fixture, EXPECTED_USER_AGENT } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

const V1_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
const V2_REQUEST = fixture('aws-speke-v2/aws-doc-v2-kid-override-request-widevine-cbcs-live.xml')
const XML = { 'content-type': 'application/xml' }

async function call (
  url: string, init: Parameters<typeof request>[1] = {}
): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, text: string }> {
  const res = await request(url, init)
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

t.test('the KMS quoting the token or access key back never reaches the caller or the log', async t => {
  const kms = await startFakeKms(replyWith(401, 'text/plain', `bad token in /cpix/getKey?enc-token=${DEMO_TOKEN}`))
  const proxy = await startProxy({ KMS_URL: kms.url, AUDIT: 'off' })
  t.teardown(async () => { await proxy.close(); await kms.close() })
  const url = `${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`
  const text401 = await call(url, { method: 'POST', headers: XML, body: V1_REQUEST })
  t.equal(text401.status, 401, 'a KMS 4xx stays a 4xx')
  t.match(text401.text, /^KMS refused the request \(HTTP 401\): the KMS did not accept the enc-token/, 'a proxy-written message')
  t.notMatch(text401.text, /bad token in/, 'never the KMS\'s own text')
  kms.handle(replyWith(200, 'application/json', JSON.stringify({ message: `${'x'.repeat(240)} enc-token=${DEMO_TOKEN} and invalid access_key ${DEMO_ACCESS_KEY}` })))
  const json = await call(url, { method: 'POST', headers: XML, body: V1_REQUEST })
  t.equal(json.status, 403)
  kms.handle(replyWith(500, 'text/plain', `upstream failure for ${encodeURIComponent(DEMO_TOKEN)}`))
  const encoded = await call(url, { method: 'POST', headers: XML, body: V1_REQUEST })
  t.equal(encoded.status, 502, 'a KMS 5xx is a 502')
  for (const [name, body] of [['text 401', text401.text], ['JSON', json.text], ['URL-encoded', encoded.text]] as const) {
    for (const secret of [DEMO_TOKEN, DEMO_TOKEN.slice(0, 40), encodeURIComponent(DEMO_TOKEN), DEMO_ACCESS_KEY]) t.notOk(body.includes(secret), `${name}: no ${secret.slice(0, 6)}… in the body`)
  }
  const logs = proxy.logs.join('')
  t.notOk(logs.includes(DEMO_TOKEN.slice(0, 40)) || logs.includes(DEMO_ACCESS_KEY), 'nor in the log')
})

t.test('URLs that go wrong never echo the token', async t => {
  const proxy = await startProxy({ AUDIT: 'off' })
  t.teardown(() => proxy.close())
  const cases = [
    await call(`${proxy.url}/cpix/anevia/${DEMO_TOKEN}/cid`),
    await call(`${proxy.url}/cpix/getKey/${DEMO_TOKEN}`, { method: 'POST', headers: XML, body: V1_REQUEST }),
    await call(`${proxy.url}/v2/cpix/pallycon/getKey/${DEMO_TOKEN}%ZZ`, { method: 'POST', body: V1_REQUEST }),
    await call(`${proxy.url}/cpix/anevia/dash/${DEMO_TOKEN}`)
  ]
  t.same(cases.map(c => c.status), [404, 404, 400, 400])
  for (const c of cases) t.notOk(c.text.includes(DEMO_TOKEN.slice(0, 20)), `no token in "${c.text.slice(0, 50)}…"`)
  t.notOk(proxy.logs.join('').includes(DEMO_TOKEN.slice(0, 20)), 'no token in the log')
})

t.test('HEAD never runs a key request', async t => {
  const kms = await startFakeKms(replyWith(200, 'application/xml', '<x/>'))
  const proxy = await startProxy({ KMS_URL: kms.url, AUDIT: 'off' })
  t.teardown(async () => { await proxy.close(); await kms.close() })
  const head = await call(`${proxy.url}/cpix/anevia/dash/${DEMO_TOKEN}/cid`, { method: 'HEAD' })
  t.equal(head.status, 404)
  t.equal(kms.received.length, 0)
})

t.test('odd input is a 4xx, never a 500', async t => {
  const proxy = await startProxy({ AUDIT: 'off' })
  t.teardown(() => proxy.close())
  const url = `${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`
  const v1 = V1_REQUEST.toString()
  const cases: Array<[string, string, Record<string, string>, number]> = [
    ['deep nesting', `<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" id="a">${'<x>'.repeat(5000)}${'</x>'.repeat(5000)}</cpix:CPIX>`, XML, 400],
    ['&constructor;', v1.replace('id="abc123"', 'id="&constructor;"'), XML, 400],
    ['code point beyond Unicode', v1.replace('id="abc123"', 'id="&#x110000;"'), XML, 400],
    ['period index beyond uint32 (v2)', V2_REQUEST.toString().replace('index="1"', 'index="4294967296"'), { ...XML, 'x-speke-version': '2.0' }, 422]
  ]
  for (const [name, body, headers, status] of cases) {
    const res = await call(url, { method: 'POST', headers, body })
    t.equal(res.status, status, `${name}: ${res.text.slice(0, 80)}`)
  }
  const json = await call(`${proxy.url}/v2/keys?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content_id: 'c', drm_types: ['constructor'] }) })
  t.equal(json.status, 422, 'drm_types ["constructor"]')
  const period = await call(`${proxy.url}/v2/keys?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content_id: 'c', key_rotation: true, period_index: 2 ** 32 }) })
  t.equal(period.status, 422, 'period_index 2^32')
  const spaced = await call(`${proxy.url}/v2/cpix/pallycon/getKey/${DEMO_TOKEN}%20`, { method: 'POST', body: V1_REQUEST })
  t.equal(spaced.status, 401, 'a token with whitespace is refused before anything is sent')
  const ready = await call(`${proxy.url}/readyz`)
  t.equal(ready.status, 200, 'and does not count against the upstream')
})

t.test('rate limits: forged site ids neither drain another caller\'s budget nor escape the limit', async t => {
  const proxy = await startProxy({ AUDIT: 'off', RATE_LIMIT_PER_MINUTE: '2' })
  t.teardown(() => proxy.close())
  for (let i = 0; i < 4; i++) {
    const forged = encodeEncToken('DEMO', `forged-${i}`)
    await call(`${proxy.url}/cpix/getKey?enc-token=${forged}`, { method: 'POST', headers: XML, body: V1_REQUEST })
  }
  const real = await call(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: XML, body: V1_REQUEST })
  t.equal(real.status, 200, 'the real DEMO token still has its budget')
  const statuses: number[] = []
  for (let i = 0; i < 2; i++) statuses.push((await call(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: XML, body: V1_REQUEST })).status)
  t.same(statuses, [200, 429])
})

t.test('refusals outside the pipeline keep the SPEKE headers; metrics labels come from known values only', async t => {
  const proxy = await startProxy({ AUDIT: 'off', RATE_LIMIT_PER_MINUTE: '1', BODY_LIMIT: '2048' })
  t.teardown(() => proxy.close())
  const url = `${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`
  const big = await call(url, { method: 'POST', headers: { ...XML, 'x-speke-version': '2.0' }, body: Buffer.alloc(4096, 0x20) })
  t.equal(big.status, 413)
  t.equal(big.headers['x-speke-version'], '2.0')
  t.equal(big.headers['x-speke-user-agent'], EXPECTED_USER_AGENT)
  const limited = await call(url, { method: 'POST', headers: XML, body: V1_REQUEST })
  t.equal(limited.status, 429)
  t.equal(limited.headers['speke-user-agent'], EXPECTED_USER_AGENT, 'v1: Speke-User-Agent on a 429')
  await call(url, { method: 'POST', headers: { ...XML, 'x-speke-version': 'x-random-9f8e' }, body: V1_REQUEST })
  const metrics = await call(`${proxy.url}/metrics`)
  t.notOk(metrics.text.includes('x-random-9f8e'), 'a random X-Speke-Version is not a label')
  t.match(metrics.text, /speke_version="invalid"/)
})

t.test('upstream readiness lapses by itself after the cool-down', async t => {
  let clock = 0
  const health = createUpstreamHealth(3, 30_000, () => clock)
  const failure: KeyRequestRecord = { route: 'speke', authenticated: true, outcome: 'upstream_error', status: 502, keysReturned: 0 }
  for (let i = 0; i < 3; i++) health.note(failure)
  t.equal(health.healthy(), false)
  clock = 29_000
  t.equal(health.healthy(), false)
  clock = 31_000
  t.equal(health.healthy(), true, 'back in rotation to try again')
  health.note(failure)
  t.equal(health.healthy(), false, 'one more failure trips it again')
  health.note({ route: 'speke', outcome: 'ok', status: 200, upstreamStatus: 200, keysReturned: 1 })
  t.equal(health.healthy(), true)
})

t.test('bad secrets and deadlines that overrun API Gateway stop startup with a message naming the setting', async t => {
  t.throws(() => loadConfig({ AUDIT_HMAC_KEY: 'c2hvcnQ=' }), /AUDIT_HMAC_KEY must be base64 of at least 32 bytes/)
  t.throws(() => loadConfig({ LOCAL_KMS_SECRET: 'not base64!' }), /LOCAL_KMS_SECRET must be base64/)
  t.throws(() => loadConfig({ AUDIT_DATABASE_SCHEMA: 'x; drop table y' }), /AUDIT_DATABASE_SCHEMA must be a lower-case SQL identifier/)
  t.throws(() => loadConfig({ KMS_TIMEOUT_MS: '27000', AUDIT_WRITE_TIMEOUT_MS: '2000' }), /KMS_TIMEOUT_MS \(27000\) \+ AUDIT_WRITE_TIMEOUT_MS \(2000\) must stay under 28000/)
  t.doesNotThrow(() => loadConfig({ KMS_TIMEOUT_MS: '27000', AUDIT: 'off' }))
})

t.test('every key refusal says whether the caller was identified: the guard refuses from the URL alone, before the body is read', async t => {
  const proxy = await startProxy({ AUDIT: 'off', BODY_LIMIT: '2048' })
  t.teardown(() => proxy.close())
  const cases: Array<[string, Parameters<typeof request>[1], number]> = [
    ['/cpix/getKey', { method: 'POST', headers: { 'content-type': 'text/html' }, body: 'x' }, 401],
    [`/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: { 'content-type': 'text/html' }, body: 'x' }, 415],
    [`/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: XML, body: Buffer.alloc(4096, 0x20) }, 413],
    ['/v2/cpix/pallycon/getKey/not-a-token', { method: 'POST', body: 'x' }, 401],
    [`/cpix/anevia/dash/${DEMO_TOKEN}/cid`, { method: 'GET' }, 200]
  ]
  for (const [path, init, status] of cases) {
    const res = await call(`${proxy.url}${path}`, init)
    t.equal(res.status, status, `${path.slice(0, 30)}: ${res.text.slice(0, 60)}`)
  }
  const lines = proxy.logs.join('').split('\n').filter(l => l.includes('"msg":"key request"')).map(l => JSON.parse(l) as Record<string, unknown>)
  t.same(lines.map(l => [l.status, l.authenticated]), [[401, false], [415, true], [413, true], [401, false], [200, true]])
  t.same(lines.map(l => typeof l.tenant === 'string' && l.tenant.includes('DEMO')), [false, true, true, false, true], 'identified requests, refused or not, name the tenant')
})
