// Running it: health, readiness, metrics, rate limits, TLS with reload, graceful shutdown, production safety.

import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { Agent, request } from 'undici'
import { replyWith, startFakeKms } from '../helpers/fake-kms.js'
import { DEMO_TOKEN, fixture } from '../helpers/fixtures.js'
import { startChildProxy } from '../helpers/child-proxy.js'
import { startProxy } from '../helpers/proxy.js'
import { localProvider } from '../../src/kms/local/provider.js'

const V1_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
const XML = { 'content-type': 'application/xml' }

t.test('healthz is liveness only; readyz names the provider and turns 503 when the upstream keeps failing', async t => {
  const kms = await startFakeKms((_req, res) => { res.socket?.destroy() })
  const proxy = await startProxy({ KMS_URL: kms.url, AUDIT: 'off', KMS_TIMEOUT_MS: '1000' })
  t.teardown(async () => { await proxy.close(); await kms.close() })
  const ready = await request(`${proxy.url}/readyz`)
  t.equal(ready.statusCode, 200)
  t.same(await ready.body.json(), { status: 'ready', provider: 'pallycon', checks: { audit: true, upstream: true, accepting: true } })
  for (let i = 0; i < 3; i++) {
    const res = await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: XML, body: V1_REQUEST })
    t.equal(res.statusCode, 502)
    await res.body.text()
  }
  const notReady = await request(`${proxy.url}/readyz`)
  t.equal(notReady.statusCode, 503)
  t.match(await notReady.body.json(), { status: 'not ready', checks: { upstream: false } })
  const live = await request(`${proxy.url}/healthz`)
  t.equal(live.statusCode, 200, 'liveness does not depend on the KMS')
  await live.body.text()
  kms.handle(replyWith(200, 'application/xml', fixture('aws-speke-v1/aws-doc-v1-vod-response-aes128-sampleaes-widevine-playready.xml')))
  const ok = await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: XML, body: V1_REQUEST })
  await ok.body.text()
  const again = await request(`${proxy.url}/readyz`)
  t.equal(again.statusCode, 200, 'one good upstream answer makes it ready again')
  await again.body.text()
})

t.test('metrics: key requests by route, tenant (managed, else passthrough or none), SPEKE version and outcome, latency histograms, process metrics', async t => {
  const proxy = await startProxy({ AUDIT: 'off' })
  t.teardown(() => proxy.close())
  await (await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: XML, body: V1_REQUEST })).body.text()
  await (await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: XML, body: '<broken' })).body.text()
  await (await request(`${proxy.url}/cpix/getKey?enc-token=not-a-token`, { method: 'POST', headers: XML, body: V1_REQUEST })).body.text()
  const res = await request(`${proxy.url}/metrics`)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/plain/)
  const text = await res.body.text()
  t.match(text, /speke_proxy_key_requests_total\{route="speke",tenant="passthrough",speke_version="1.0",outcome="ok",status="200"\} 1/)
  t.match(text, /speke_proxy_key_requests_total\{route="speke",tenant="passthrough",speke_version="1.0",outcome="rejected",status="400"\} 1/)
  t.match(text, /speke_proxy_key_requests_total\{route="speke",tenant="none",speke_version="1.0",outcome="rejected",status="401"\} 1/)
  t.match(text, /speke_proxy_request_duration_seconds_count\{route="speke"\} 3/)
  t.match(text, /speke_proxy_kms_duration_seconds_count\{route="speke"\} 1/)
  t.match(text, /speke_proxy_process_cpu_seconds_total/)
  t.notOk(text.includes(DEMO_TOKEN) || text.includes('not-a-token'), 'no token in metrics')
})

t.test('per-tenant rate limit: 429 with Retry-After past the limit, other tenants unaffected, health untouched', async t => {
  const proxy = await startProxy({ AUDIT: 'off', RATE_LIMIT_PER_MINUTE: '3' })
  t.teardown(() => proxy.close())
  const statuses: number[] = []
  let retryAfter: string | string[] | undefined
  for (let i = 0; i < 5; i++) {
    const res = await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: XML, body: V1_REQUEST })
    statuses.push(res.statusCode)
    if (res.statusCode === 429) { retryAfter = res.headers['retry-after']; t.match(await res.body.text(), /Rate limit of 3 key requests per minute/) } else await res.body.text()
  }
  t.same(statuses, [200, 200, 200, 429, 429])
  t.ok(Number(retryAfter) > 0, `Retry-After: ${String(retryAfter)}`)
  const other = Buffer.from(JSON.stringify({ site_id: 'OTHR', access_key: 'x'.repeat(64) })).toString('base64')
  const res = await request(`${proxy.url}/cpix/getKey?enc-token=${other}`, { method: 'POST', headers: XML, body: V1_REQUEST })
  t.equal(res.statusCode, 200, 'another tenant has its own budget')
  await res.body.text()
  for (let i = 0; i < 5; i++) {
    const hb = await request(`${proxy.url}/cpix/getKey/heartbeat`)
    t.equal(hb.statusCode, 200)
    await hb.body.text()
  }
})

t.test('NODE_ENV=production without KMS_URL refuses to start, naming KMS_URL', async t => {
  await t.rejects(startChildProxy({ NODE_ENV: 'production', DATA_DIR: t.testdir() }), /KMS_URL is not set/)
})

t.test('SIGTERM during in-flight requests: all complete, the audit is flushed, exit 0', async t => {
  // A correct reply (the embedded provider's), served slowly, so requests are in flight when SIGTERM arrives.
  const answer = (await localProvider({ secret: Buffer.alloc(32, 1), playReadyLaUrl: 'https://license.example.com/pr', hlsKeyUrlBase: 'https://keys.example.com', widevineProvider: 'test' })
    .getKeys({ route: 'speke', dialect: 'speke-v1', token: DEMO_TOKEN, body: V1_REQUEST }, AbortSignal.timeout(5000))).body
  const kms = await startFakeKms((_req, res) => { setTimeout(() => { res.writeHead(200, { 'content-type': 'application/xml' }); res.end(answer) }, 700) })
  const dir = t.testdir()
  const proxy = await startChildProxy({ KMS_URL: kms.url, DATA_DIR: dir, INSTANCE_ID: 'sigterm-test' })
  t.teardown(async () => { proxy.child.kill('SIGKILL'); await kms.close() })
  const inflight = Array.from({ length: 8 }, async () => {
    const res = await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: XML, body: V1_REQUEST })
    return { status: res.statusCode, body: await res.body.text() }
  })
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(kms.received.length, 8, 'all eight are at the KMS when SIGTERM arrives')
  proxy.child.kill('SIGTERM')
  const results = await Promise.all(inflight)
  t.same(results.map(r => r.status), Array(8).fill(200), 'every in-flight request completes')
  t.equal(await proxy.exited, 0, 'exit code 0')
  if (!/shut down cleanly/.test(proxy.output())) t.comment(proxy.output())
  t.match(proxy.output(), /shut down cleanly/)
  const auditDir = join(dir, 'audit')
  const lines = execFileSync('sh', ['-c', `cat ${auditDir}/*.jsonl 2>/dev/null || cat ${auditDir}/*/*.jsonl`]).toString().trim().split('\n')
  // Key request records only: the trail also holds its own records (checkpoints, summaries).
  const keyRecords = lines.map(l => JSON.parse(l) as { route?: string, outcome?: string }).filter(r => r.route === 'speke' && r.outcome === 'ok')
  t.equal(keyRecords.length, 8, 'eight key request records on disk')
})

t.test('TLS in process (TLS 1.2+), certificate reloaded on SIGHUP without dropping connections', async t => {
  const dir = t.testdir()
  const makeCert = (name: string): void => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`), '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  }
  makeCert('first')
  makeCert('second')
  writeFileSync(join(dir, 'live.crt'), readFileSync(join(dir, 'first.crt')))
  writeFileSync(join(dir, 'live.key'), readFileSync(join(dir, 'first.key')))
  const proxy = await startChildProxy({ DATA_DIR: dir, AUDIT: 'off', TLS_CERT_FILE: join(dir, 'live.crt'), TLS_KEY_FILE: join(dir, 'live.key') })
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  t.match(proxy.url, /^https:/)
  const peerCn = async (): Promise<string> => await new Promise((resolve, reject) => {
    const port = Number(new URL(proxy.url).port)
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(String(socket.getPeerCertificate().subject.CN))
      socket.end()
    })
    socket.on('error', reject)
  })
  t.equal(await peerCn(), 'first')
  const agent = new Agent({ connect: { ca: readFileSync(join(dir, 'first.crt')) } })
  const keepAlive = await request(`${proxy.url}/cpix/getKey/heartbeat`, { dispatcher: agent })
  t.equal(await keepAlive.body.text(), 'SUCCESS', 'HTTPS request with the first certificate trusted')
  const oldTls = await new Promise<Error | undefined>(resolve => {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(proxy.url).port), maxVersion: 'TLSv1.1', minVersion: 'TLSv1', rejectUnauthorized: false }, () => { socket.end(); resolve(undefined) })
    socket.on('error', resolve)
  })
  t.ok(oldTls instanceof Error, 'TLS 1.1 is refused')

  writeFileSync(join(dir, 'live.crt'), readFileSync(join(dir, 'second.crt')))
  writeFileSync(join(dir, 'live.key'), readFileSync(join(dir, 'second.key')))
  proxy.child.kill('SIGHUP')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.match(proxy.output(), /TLS certificate reloaded/)
  t.equal(await peerCn(), 'second', 'new connections get the new certificate')
  const sameConnection = await request(`${proxy.url}/cpix/getKey/heartbeat`, { dispatcher: agent })
  t.equal(await sameConnection.body.text(), 'SUCCESS', 'the existing keep-alive connection still works')
  await agent.close()
})

t.test('keyserver: the embedded provider alone on its own port', async t => {
  const proxy = await startChildProxy({ DATA_DIR: t.testdir(), KEYSERVER_PORT: '0' }, ['keyserver'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  t.match(proxy.output(), /GENERATED LOCALLY/)
  const res = await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: XML, body: V1_REQUEST })
  t.equal(res.statusCode, 200)
  t.match(await res.body.text(), /<pskc:PlainValue>[A-Za-z0-9+/]{22}==<\/pskc:PlainValue>/)
  const ready = await request(`${proxy.url}/readyz`)
  t.match(await ready.body.json(), { provider: 'local' })
})

t.test('admin API in the full app: JSON bodies reach it, the bearer token guards it, audit search finds a request', async t => {
  const proxy = await startProxy({ ADMIN_TOKEN: 'admin-secret-token-of-at-least-32-characters' })
  t.teardown(() => proxy.close())
  const keyReply = await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: XML, body: V1_REQUEST })
  const key = /<pskc:PlainValue>([^<]+)</.exec(await keyReply.body.text())?.[1] ?? ''
  const auth = { authorization: 'Bearer admin-secret-token-of-at-least-32-characters', 'content-type': 'application/json' }
  const hash = await request(`${proxy.url}/admin/audit/hash`, { method: 'POST', headers: auth, body: JSON.stringify({ value: key, encoding: 'base64' }) })
  t.equal(hash.statusCode, 200)
  const { hmac } = await hash.body.json() as { hmac: string }
  t.match(hmac, /^hmac-sha256:[0-9a-f]{64}$/)
  const found = await request(`${proxy.url}/admin/audit?fingerprint=${encodeURIComponent(hmac)}`, { headers: auth })
  t.equal(found.statusCode, 200)
  const page = await found.body.json() as { records: Array<{ content_id: string, tenant: string }> }
  t.equal(page.records.length, 1, 'the key\'s fingerprint finds the request that received it')
  t.equal(page.records[0]?.content_id, 'abc123')
  const denied = await request(`${proxy.url}/admin/audit`, { headers: { authorization: 'Bearer wrong' } })
  t.equal(denied.statusCode, 401)
  await denied.body.text()
})
