// A failed key request names its code everywhere: the X-Speke-Proxy-Error header (body unchanged), the log line, the audit record, metrics.

import t from 'tap'
import { createServer } from 'node:net'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { DEMO_TOKEN, PROJECT_ROOT, fixture } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

const XML = { 'content-type': 'application/xml' }
const V1_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
const V2_WRONG_VERSION = readFileSync(join(PROJECT_ROOT, 'test', 'fixtures', 'aws-suite', 'negative-wrong-cpix-version.xml'))

interface Answer { status: number, code: unknown, body: string }

async function post (url: string, body: string | Buffer, headers: Record<string, string>): Promise<Answer> {
  const res = await request(url, { method: 'POST', headers, body })
  return { status: res.statusCode, code: res.headers['x-speke-proxy-error'], body: await res.body.text() }
}

async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>(resolve => server.close(() => { resolve() }))
  return typeof address === 'object' && address !== null ? address.port : 0
}

t.test('refusals carry the code in a header; SPEKE v2 bodies stay AWS\'s exact strings; successes carry none', async t => {
  const auditDir = join(t.testdir(), 'audit')
  const proxy = await startProxy({ KMS_URL: 'local', AUDIT_DIR: auditDir })
  t.teardown(() => proxy.close())
  const getKey = `${proxy.url}/cpix/getKey?enc-token=${encodeURIComponent(DEMO_TOKEN)}`

  const aws = await post(getKey, V2_WRONG_VERSION, { ...XML, 'x-speke-version': '2.0' })
  t.same(aws, { status: 422, code: 'SPEKE_V2_PROFILE', body: 'Unsupported CPIX@version' })

  const version = await post(getKey, V1_REQUEST, { ...XML, 'x-speke-version': '3.0' })
  t.same(version, { status: 400, code: 'UNSUPPORTED_SPEKE_VERSION', body: 'Unsupported SPEKE version' })

  const missing = await post(`${proxy.url}/cpix/getKey`, V1_REQUEST, XML)
  t.same([missing.status, missing.code], [401, 'MISSING_TOKEN'], 'refused before the pipeline, by the key guard')

  const json = await post(`${proxy.url}/v2/keys?enc-token=${encodeURIComponent(DEMO_TOKEN)}`, '{', { 'content-type': 'application/json' })
  t.same(json, { status: 400, code: 'BAD_JSON', body: JSON.stringify({ error: 'The body is not valid JSON' }) })

  const ok = await post(getKey, V1_REQUEST, XML)
  t.same([ok.status, ok.code], [200, undefined], 'no header on a success')

  await proxy.close()
  const logged = proxy.logs.flatMap(l => l.split('\n')).filter(l => l.includes('"key request"')).map(l => JSON.parse(l) as { errorCode?: string })
  t.same(logged.map(l => l.errorCode), ['SPEKE_V2_PROFILE', 'UNSUPPORTED_SPEKE_VERSION', 'MISSING_TOKEN', 'BAD_JSON', undefined], 'the log line of each request names its code')

  const records = readdirSync(auditDir).filter(f => f.endsWith('.jsonl'))
    .flatMap(f => readFileSync(join(auditDir, f), 'utf8').split('\n').filter(l => l !== '').map(l => JSON.parse(l) as { route: string, status: number, error_code?: string }))
    .filter(r => !r.route.startsWith('audit-'))
  const coded = records.filter(r => r.route !== 'refusal-summary').map(r => [r.status, r.error_code])
  t.same(coded, [[422, 'SPEKE_V2_PROFILE'], [400, 'UNSUPPORTED_SPEKE_VERSION'], [400, 'BAD_JSON'], [200, undefined]], 'each audit record keeps its code')
  t.match(records.find(r => r.route === 'refusal-summary'), { refusals: { top: [{ status: 401, reason: 'MISSING_TOKEN' }] } }, 'refusals without a credential are counted by code')
})

t.test('an unreachable KMS: 502 KMS_UNREACHABLE, counted as kind connection', async t => {
  const proxy = await startProxy({ KMS_URL: `http://127.0.0.1:${await closedPort()}`, KMS_TIMEOUT_MS: '2000', AUDIT: 'off' })
  t.teardown(() => proxy.close())
  const res = await post(`${proxy.url}/cpix/getKey?enc-token=${encodeURIComponent(DEMO_TOKEN)}`, V1_REQUEST, XML)
  t.same([res.status, res.code], [502, 'KMS_UNREACHABLE'])
  t.match(res.body, /^KMS connection failed/)
  const metrics = await (await request(`${proxy.url}/metrics`)).body.text()
  t.match(metrics, /speke_proxy_upstream_errors_total\{kind="connection"\} 1/)
})
