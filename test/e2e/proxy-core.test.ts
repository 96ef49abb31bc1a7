// The proxy core, end to end: the real server on 127.0.0.1:0 in front of a fake KMS on loopback.

import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { request } from 'undici'
import { encodeEncToken } from '../../src/tenants/enc-token.js'
import { replyWith, startFakeKms } from '../helpers/fake-kms.js'
import type { FakeKms } from '../helpers/fake-kms.js'
import { DEMO_ACCESS_KEY, DEMO_TOKEN, PROJECT_ROOT, capturedBody, fixture, EXPECTED_USER_AGENT } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'
import type { RunningProxy } from '../helpers/proxy.js'

const V1_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
const V1_RESPONSE = fixture('aws-speke-v1/aws-doc-v1-vod-response-aes128-sampleaes-widevine-playready.xml')
const V2_REQUEST = fixture('aws-speke-v2/aws-doc-v2-kid-override-request-widevine-cbcs-live.xml')
const V2_RESPONSE = fixture('aws-speke-v2/aws-doc-v2-kid-override-response-widevine-cbcs-live.xml')
const PY_REQUEST = capturedBody('pallycon/python-client/captured-multi-key-audio-sd-hd-cbcs.http')
const RESPONSE_KEY = '5dGAgwGuUYu4dHeHtNlxJw=='

/** A token whose base64 holds both '+' and '/', the characters URL handling likes to break. */
function awkwardToken (): string {
  for (let i = 0; ; i++) {
    const token = encodeEncToken('TEST', `key-${i}-~~~>>>???`)
    if (token.includes('+') && token.includes('/')) return token
  }
}

async function setup (t: Tap.Test, env: Record<string, string> = {}): Promise<{ kms: FakeKms, proxy: RunningProxy }> {
  const kms = await startFakeKms(replyWith(200, 'application/xml', V1_RESPONSE))
  const proxy = await startProxy({ KMS_URL: kms.url, KMS_TIMEOUT_MS: '1500', RESPONSE_MODE: 'passthrough', AUDIT: 'off', ...env })
  t.teardown(async () => { await proxy.close(); await kms.close() })
  return { kms, proxy }
}

async function post (url: string, body: Buffer | string, headers: Record<string, string> = { 'content-type': 'application/xml' }): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, text: string }> {
  const res = await request(url, { method: 'POST', body, headers })
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

t.test('heartbeat answers SUCCESS as text/plain', async t => {
  const { proxy, kms } = await setup(t)
  const res = await request(`${proxy.url}/cpix/getKey/heartbeat`)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  t.equal(await res.body.text(), 'SUCCESS')
  t.equal(kms.received.length, 0, 'the heartbeat does not touch the KMS')
})

t.test('SPEKE v1: token, path, headers and body arrive unchanged; the reply comes back byte for byte', async t => {
  const { proxy, kms } = await setup(t)
  const token = awkwardToken()
  const res = await post(`${proxy.url}/cpix/getKey?enc-token=${encodeURIComponent(token)}`, V1_REQUEST, {
    'content-type': 'application/xml',
    authorization: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/execute-api/aws4_request',
    cookie: 'session=abc',
    'x-amz-date': '20261123T000000Z',
    'x-amz-security-token': 'FQoGZXIvYXdzE',
    connection: 'keep-alive'
  })
  t.equal(res.status, 200)
  t.equal(res.text, V1_RESPONSE.toString('utf8'), 'the body is the KMS body')
  t.match(res.headers['content-type'], /application\/xml/)
  t.equal(res.headers['speke-user-agent'], EXPECTED_USER_AGENT)
  t.equal(res.headers['x-speke-version'], undefined, 'v1 replies carry no X-Speke-Version')

  t.equal(kms.received.length, 1)
  const got = kms.received[0]
  t.equal(got.method, 'POST')
  const url = new URL(got.url, 'http://kms')
  t.equal(url.pathname, '/cpix/getKey')
  t.equal(url.searchParams.get('enc-token'), token, 'the enc-token arrives exactly, + and / included')
  t.same(got.body, V1_REQUEST, 'the body bytes arrive unchanged')
  t.equal(got.headers['content-type'], 'application/xml')
  t.equal(got.headers.authorization, undefined, 'Authorization is not forwarded')
  t.equal(got.headers.cookie, undefined, 'Cookie is not forwarded')
  t.equal(got.headers['x-amz-date'], undefined, 'X-Amz-* is not forwarded')
  t.equal(got.headers['x-amz-security-token'], undefined, 'X-Amz-* is not forwarded')
  t.equal(got.headers['x-speke-version'], undefined)
})

t.test('SPEKE v2: X-Speke-Version is forwarded and echoed, X-Speke-User-Agent is set', async t => {
  const { proxy, kms } = await setup(t)
  kms.handle(replyWith(200, 'application/xml', V2_RESPONSE))
  const res = await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, V2_REQUEST, { 'content-type': 'application/xml', 'x-speke-version': '2.0' })
  t.equal(res.status, 200)
  t.equal(res.headers['x-speke-version'], '2.0')
  t.equal(res.headers['x-speke-user-agent'], EXPECTED_USER_AGENT)
  t.equal(kms.received[0].headers['x-speke-version'], '2.0')
  t.equal(res.text, V2_RESPONSE.toString('utf8'))
})

t.test('SPEKE v2: an unsupported X-Speke-Version is refused with AWS\'s string and nothing is forwarded', async t => {
  const { proxy, kms } = await setup(t)
  const res = await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, V2_REQUEST, { 'content-type': 'application/xml', 'x-speke-version': '3.0' })
  t.equal(res.status, 400)
  t.equal(res.text, 'Unsupported SPEKE version')
  t.equal(kms.received.length, 0)
})

t.test('PallyCon API: the path token and key-rotation pass through; no Content-Type is accepted', async t => {
  const { proxy, kms } = await setup(t)
  const token = awkwardToken()
  const res = await post(`${proxy.url}/v2/cpix/pallycon/getKey/${token}?key-rotation=true`, PY_REQUEST, {})
  t.equal(res.status, 200)
  const got = kms.received[0]
  t.equal(got.url, `/v2/cpix/pallycon/getKey/${token}?key-rotation=true`)
  t.same(got.body, PY_REQUEST)

  const v1 = await post(`${proxy.url}/v1/cpix/pallycon/getKey/${DEMO_TOKEN}`, PY_REQUEST, { 'content-type': 'text/xml; charset=utf-8' })
  t.equal(v1.status, 200)
  t.equal(kms.received[1].url, `/v1/cpix/pallycon/getKey/${DEMO_TOKEN}`)
})

t.test('Anevia: GET with format, token and content id in the path', async t => {
  const { proxy, kms } = await setup(t)
  const res = await request(`${proxy.url}/cpix/anevia/dash/${DEMO_TOKEN}/test-cid`)
  t.equal(res.statusCode, 200)
  await res.body.text()
  t.equal(kms.received[0].method, 'GET')
  t.equal(kms.received[0].url, `/cpix/anevia/dash/${DEMO_TOKEN}/test-cid`)
  const bad = await request(`${proxy.url}/cpix/anevia/smooth/${DEMO_TOKEN}/test-cid`)
  t.equal(bad.statusCode, 404)
  t.match(await bad.body.text(), /dash or hls/)
})

t.test('wrong Content-Type gets 415, oversized body 413, and nothing is forwarded', async t => {
  const { proxy, kms } = await setup(t, { BODY_LIMIT: '4096' })
  const json = await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, '{"a":1}', { 'content-type': 'application/json' })
  t.equal(json.status, 415)
  t.match(json.text, /application\/xml or text\/xml/)
  const form = await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, V1_REQUEST, { 'content-type': 'application/x-www-form-urlencoded' })
  t.equal(form.status, 415)
  const big = Buffer.concat([V1_REQUEST.subarray(0, V1_REQUEST.length - 20), Buffer.from(`<!--${'x'.repeat(8000)}-->`), V1_REQUEST.subarray(V1_REQUEST.length - 20)])
  const large = await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, big)
  t.equal(large.status, 413)
  t.match(large.text, /BODY_LIMIT/)
  t.equal(kms.received.length, 0)
})

t.test('invalid requests get a 4xx naming the problem and nothing is forwarded', async t => {
  const { proxy, kms } = await setup(t)
  const cases: Array<[string, string | Buffer, number, RegExp]> = [
    ['malformed XML', '<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" id="a"><cpix:ContentKeyList>', 400, /Malformed XML/],
    ['a DOCTYPE (XXE)', '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" id="a">&e;</cpix:CPIX>', 400, /DOCTYPE/],
    ['not CPIX', '<html><body/></html>', 400, /Not a CPIX document/],
    ['empty body', '', 400, /empty/],
    ['unknown DRM system', V1_REQUEST.toString().replace('edef8ba9-79d6-4ace-a3c8-27dcd51d21ed', '11111111-2222-3333-4444-555555555555'), 422, /Unknown DRM systemId 11111111-2222-3333-4444-555555555555/],
    ['broken base64', V1_REQUEST.toString().replace('explicitIV="OFj2IjCsPJFfMAxmQxLGPw=="', 'explicitIV="not*base64"'), 400, /explicitIV .* not valid base64/]
  ]
  for (const [name, body, status, message] of cases) {
    const res = await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, body)
    t.equal(res.status, status, `${name}: status`)
    t.match(res.text, message, `${name}: message`)
  }
  t.equal(kms.received.length, 0)
})

t.test('tokens: a token that does not decode gets 401 and nothing is forwarded', async t => {
  const { proxy, kms } = await setup(t)
  const res = await post(`${proxy.url}/cpix/getKey?enc-token=not-a-token`, V1_REQUEST)
  t.equal(res.status, 401)
  t.match(res.text, /neither a known proxy credential nor a PallyCon KMS token/)
  const missing = await post(`${proxy.url}/cpix/getKey`, V1_REQUEST)
  t.equal(missing.status, 401)
  t.equal(kms.received.length, 0)
})

t.test('managed tenants: a proxy credential is swapped for the tenant\'s enc-token; raw tokens refused when pass-through is off', async t => {
  const dir = t.testdir()
  const credential = 'proxy-cred-acme-1f7c'
  const tenantToken = encodeEncToken('ACME', 'acme-access-key-0123456789')
  const file = join(dir, 'tenants.json')
  writeFileSync(file, JSON.stringify({
    tenants: [{ id: 'acme', encToken: 'env:ACME_TOKEN', credentials: [`sha256:${createHash('sha256').update(credential).digest('hex')}`] }]
  }))
  const { proxy, kms } = await setup(t, { TENANTS_FILE: file, ACME_TOKEN: tenantToken, ALLOW_PASSTHROUGH: 'false' })
  const ok = await post(`${proxy.url}/cpix/getKey?enc-token=${credential}`, V1_REQUEST)
  t.equal(ok.status, 200)
  t.equal(new URL(kms.received[0].url, 'http://kms').searchParams.get('enc-token'), tenantToken, 'the tenant token goes upstream')
  const viaPath = await post(`${proxy.url}/v2/cpix/pallycon/getKey/${credential}`, PY_REQUEST, {})
  t.equal(viaPath.status, 200)
  t.equal(kms.received[1].url, `/v2/cpix/pallycon/getKey/${tenantToken}`)
  const raw = await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, V1_REQUEST)
  t.equal(raw.status, 403)
  t.match(raw.text, /ALLOW_PASSTHROUGH=false/)
  t.equal(kms.received.length, 2)
  t.ok(proxy.logs.some(l => l.includes('"tenant":"acme"')), 'the log names the managed tenant')
})

t.test('KMS trouble becomes a clear 5xx within the deadline', async t => {
  const { proxy, kms } = await setup(t)
  const url = `${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`

  kms.handle(replyWith(200, 'application/json', JSON.stringify({ error_code: 1003, message: 'Cannot find the Site ID.' })))
  const json = await post(url, V1_REQUEST)
  t.equal(json.status, 403, 'JSON with status 200 is an error; one that blames the site is the caller\'s to fix')
  t.match(json.text, /KMS error \(HTTP 200\): 1003 Cannot find the Site ID/)

  kms.handle(replyWith(200, 'application/json', JSON.stringify({ error: 'Invalid request parameter: kid' })))
  const badRequest = await post(url, V1_REQUEST)
  t.equal(badRequest.status, 400, 'a JSON error that blames the request is a 400')

  kms.handle(replyWith(500, 'application/json', JSON.stringify({ message: 'Internal failure while generating keys' })))
  const internal = await post(url, V1_REQUEST)
  t.equal(internal.status, 502, 'any other JSON error is the KMS\'s trouble: 502')
  t.match(internal.text, /Internal failure while generating keys/)

  kms.handle(replyWith(200, 'application/xml', ''))
  const empty = await post(url, V1_REQUEST)
  t.equal(empty.status, 502)
  t.match(empty.text, /KMS returned no CPIX \(HTTP 200, an empty body\)/)

  kms.handle(replyWith(502, 'text/html', '<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>'))
  const html = await post(url, V1_REQUEST)
  t.equal(html.status, 502)
  t.match(html.text, /KMS returned no CPIX/)

  kms.handle((_req, res) => { res.socket?.destroy() })
  const reset = await post(url, V1_REQUEST)
  t.equal(reset.status, 502)
  t.match(reset.text, /KMS connection failed/)

  kms.handle(() => { /* never answers */ })
  const started = Date.now()
  const timeout = await post(url, V1_REQUEST)
  const elapsed = Date.now() - started
  t.equal(timeout.status, 504)
  t.match(timeout.text, /did not answer within 1500 ms/)
  t.ok(elapsed < 4000, `answered within the deadline (${elapsed} ms)`)
})

t.test('one retry on 503 when the deadline allows', async t => {
  const { proxy, kms } = await setup(t)
  let calls = 0
  kms.handle((_req, res) => {
    calls++
    if (calls === 1) { res.writeHead(503); res.end('busy'); return }
    res.writeHead(200, { 'content-type': 'application/xml' }); res.end(V1_RESPONSE)
  })
  const res = await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, V1_REQUEST)
  t.equal(res.status, 200)
  t.equal(calls, 2)
})

t.test('connection refused gives 502 after one retry', async t => {
  const proxy = await startProxy({ KMS_URL: 'http://127.0.0.1:1', KMS_TIMEOUT_MS: '1500', AUDIT: 'off' })
  t.teardown(() => proxy.close())
  const res = await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, V1_REQUEST)
  t.equal(res.status, 502)
  t.match(res.text, /ECONNREFUSED/)
})

t.test('logs: one line per key request, and no token, access key or content key anywhere', async t => {
  const { proxy, kms } = await setup(t)
  const token = awkwardToken()
  await post(`${proxy.url}/cpix/getKey?enc-token=${encodeURIComponent(token)}`, V1_REQUEST)
  await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, V1_REQUEST)
  await post(`${proxy.url}/v2/cpix/pallycon/getKey/${DEMO_TOKEN}`, PY_REQUEST, {})
  await request(`${proxy.url}/cpix/anevia/hls/${DEMO_TOKEN}/cid-1`).then(r => r.body.text())
  kms.handle(replyWith(200, 'application/json', JSON.stringify({ message: `bad token ${DEMO_TOKEN}` })))
  const echoed = await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, V1_REQUEST)
  t.notMatch(echoed.text, DEMO_TOKEN, 'a KMS message that echoes the token is scrubbed')
  await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, '<broken')
  await post(`${proxy.url}/nothing/here?enc-token=${DEMO_TOKEN}`, V1_REQUEST)

  const all = proxy.logs.join('')
  const keyLines = proxy.logs.filter(l => l.includes('"msg":"key request"'))
  t.equal(keyLines.length, 6, 'one line per key request')
  const first = JSON.parse(keyLines[0]) as Record<string, unknown>
  t.equal(first.tenant, 'site:TEST', 'a pass-through caller is named by its site id behind "site:"')
  t.equal(first.route, 'speke')
  t.equal(first.contentId, 'abc123')
  t.equal(first.outcome, 'ok')
  t.equal(first.upstreamStatus, 200)
  t.type(first.upstreamMs, 'number')
  t.type(first.reqId, 'string')
  for (const secret of [token, encodeURIComponent(token), DEMO_TOKEN, DEMO_ACCESS_KEY, RESPONSE_KEY, Buffer.from(RESPONSE_KEY, 'base64').toString('hex')]) {
    t.notOk(all.includes(secret), `logs do not contain ${secret.slice(0, 6)}…`)
  }
})

t.test('every negative case of AWS\'s SPEKE v2 suite gets a 4xx over HTTP, and nothing reaches the KMS', async t => {
  const { proxy, kms } = await setup(t)
  const dir = join(PROJECT_ROOT, 'test', 'fixtures', 'aws-suite')
  const cases = (JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as Array<{ file: string, expect: string, spekeVersion: string, expectedBody?: string }>)
    .filter(c => c.expect === 'reject')
  for (const c of cases) {
    const res = await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, readFileSync(join(dir, c.file)), { 'content-type': 'application/xml', 'x-speke-version': c.spekeVersion })
    t.ok(res.status >= 400 && res.status < 500, `${c.file}: ${res.status} ${res.text}`)
    t.equal(res.headers['x-speke-version'], c.spekeVersion, `${c.file}: X-Speke-Version echoed on errors too`)
    if (c.expectedBody !== undefined) t.equal(res.text, c.expectedBody, `${c.file}: AWS's string as the body`)
  }
  const empty = await post(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, '', { 'content-type': 'application/xml', 'x-speke-version': '2.0' })
  t.equal(empty.status, 400, 'an empty body (the suite\'s first negative case)')
  t.equal(kms.received.length, 0)
})
