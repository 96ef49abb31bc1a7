// Specification of the PallyCon KMS client and of how its answers are classified: what is retried, what times out,
// and which status and code each kind of KMS reply becomes. The KMS is a real HTTP server on 127.0.0.1.

import t from 'tap'
import type { Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ProxyError } from '../../src/errors.js'
import { createPallyConProvider, upstreamPath } from '../../src/kms/pallycon.js'
import type { KeyProvider, ProviderReply, ProviderRequest } from '../../src/kms/provider.js'
import { jsonErrorStatus, rejectNonCpix } from '../../src/pipeline/kms-reply.js'
import { replyWith, startFakeKms } from '../helpers/fake-kms.js'
import type { FakeHandler, FakeKms } from '../helpers/fake-kms.js'

const TOKEN = Buffer.from(JSON.stringify({ site_id: 'ACME', access_key: 'k3Yq8/Zr+T0pWm5?xy~Hn2Lb7VcXs4RdQe' })).toString('base64')
const CPIX = '<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" id="movie-1"/>'
const REQUEST: ProviderRequest = { route: 'speke', dialect: 'speke-v1', token: TOKEN, body: Buffer.from(CPIX), contentType: 'application/xml' }

async function kmsWith (t: Test, handler: FakeHandler): Promise<FakeKms> {
  const kms = await startFakeKms(handler)
  t.teardown(kms.close)
  return kms
}

function providerFor (t: Test, url: string, options: { timeoutMs?: number, maxReplyBytes?: number } = {}): KeyProvider {
  const provider = createPallyConProvider({ baseUrl: new URL(url), timeoutMs: options.timeoutMs ?? 2000, userAgent: 'speke-proxy-test', maxReplyBytes: options.maxReplyBytes })
  t.teardown(provider.close)
  return provider
}

/** The ProxyError a promise rejects with (the test fails when it resolves or rejects with anything else). */
async function proxyErrorOf (promise: Promise<unknown>): Promise<ProxyError> {
  try {
    await promise
  } catch (err) {
    if (err instanceof ProxyError) return err
    throw err
  }
  throw new Error('expected a ProxyError, the call succeeded')
}

/** The status, code and message rejectNonCpix throws for a reply; undefined when the reply may go on. */
type Classified = { status: number, code: string, message: string } | undefined

function classify (status: number, contentType: string | undefined, body: string | Buffer, refusal?: string): Classified {
  const reply: ProviderReply = { status, contentType, body: Buffer.isBuffer(body) ? body : Buffer.from(body), latencyMs: 1, refusal }
  try {
    rejectNonCpix(reply, [TOKEN])
    return undefined
  } catch (err) {
    if (!(err instanceof ProxyError)) throw err
    return { status: err.status, code: err.code, message: err.message }
  }
}

async function closedPort (): Promise<string> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>(resolve => server.close(() => resolve()))
  return `http://127.0.0.1:${port}`
}

t.test('upstream path: the URL family the caller used, with the upstream token', async t => {
  t.same(upstreamPath('/', REQUEST), { method: 'POST', path: `/cpix/getKey?enc-token=${TOKEN.replace(/\+/g, '%2B')}` }, "SPEKE: '+' never turns into a space, '/' and '=' stay readable")
  t.same(upstreamPath('/kms/', { ...REQUEST, route: 'pallycon-v1', token: 'tok' }), { method: 'POST', path: '/kms/v1/cpix/pallycon/getKey/tok' }, 'a base path is kept')
  t.same(upstreamPath('', { ...REQUEST, route: 'pallycon-v2', token: 'tok', keyRotation: true }), { method: 'POST', path: '/v2/cpix/pallycon/getKey/tok?key-rotation=true' })
  t.same(upstreamPath('', { route: 'anevia', dialect: 'pallycon', token: 'tok', anevia: { format: 'hls', contentId: 'a b/c' } }), { method: 'GET', path: '/cpix/anevia/hls/tok/a%20b%2Fc' }, 'the Anevia content id is one path segment')
  t.throws(() => upstreamPath('', { route: 'anevia', dialect: 'pallycon', token: 'tok' }), TypeError, 'an Anevia request names its format and content id')
})

t.test('a reply is passed on with its status, content type and bytes; the request goes out as the caller sent it', async t => {
  const kms = await kmsWith(t, replyWith(200, 'application/xml; charset=utf-8', CPIX))
  const reply = await providerFor(t, kms.url).getKeys({ ...REQUEST, spekeVersion: '2.0' }, AbortSignal.timeout(5000))
  t.equal(reply.status, 200)
  t.equal(reply.contentType, 'application/xml; charset=utf-8')
  t.equal(reply.body.toString(), CPIX)
  t.ok(reply.latencyMs >= 0)
  const [received] = kms.received
  t.equal(received.method, 'POST')
  t.match(received.headers, { 'content-type': 'application/xml', 'x-speke-version': '2.0', 'user-agent': 'speke-proxy-test' })
  t.equal(received.body.toString(), CPIX)
})

t.test('a 4xx or 500 from the KMS is a reply, not an exception, and is not retried', async t => {
  for (const status of [400, 401, 403, 404, 429, 500]) {
    const kms = await kmsWith(t, replyWith(status, 'text/plain', 'no'))
    const reply = await providerFor(t, kms.url).getKeys(REQUEST, AbortSignal.timeout(5000))
    t.equal(reply.status, status, `${status} passed on`)
    t.equal(kms.received.length, 1, `${status} asked once`)
  }
})

t.test('502, 503 and 504 are retried once while more than half the deadline is left', async t => {
  for (const status of [502, 503, 504]) {
    let calls = 0
    const kms = await kmsWith(t, (req, res) => (++calls === 1 ? replyWith(status, 'text/plain', 'busy') : replyWith(200, 'application/xml', CPIX))(req, res))
    const reply = await providerFor(t, kms.url).getKeys(REQUEST, AbortSignal.timeout(5000))
    t.equal(reply.status, 200, `${status}, then the retry's answer`)
    t.equal(kms.received.length, 2)
  }
  const always = await kmsWith(t, replyWith(503, 'text/plain', 'busy'))
  t.equal((await providerFor(t, always.url).getKeys(REQUEST, AbortSignal.timeout(5000))).status, 503, 'a second 503 is the reply')
  t.equal(always.received.length, 2, 'asked twice, never three times')

  const late = await kmsWith(t, (req, res) => { setTimeout(() => replyWith(503, 'text/plain', 'busy')(req, res), 700) })
  t.equal((await providerFor(t, late.url, { timeoutMs: 1000 }).getKeys(REQUEST, AbortSignal.timeout(5000))).status, 503)
  t.equal(late.received.length, 1, 'no retry with less than half the deadline left')
})

t.test('no answer within KMS_TIMEOUT_MS is a 504 KMS_TIMEOUT, and so is the request deadline firing', async t => {
  const silent = await kmsWith(t, () => { /* never answers */ })
  const timedOut = await proxyErrorOf(providerFor(t, silent.url, { timeoutMs: 300 }).getKeys(REQUEST, AbortSignal.timeout(5000)))
  t.match(timedOut, { status: 504, code: 'KMS_TIMEOUT', message: 'KMS did not answer within 300 ms (KMS_TIMEOUT_MS)' })

  const aborted = await proxyErrorOf(providerFor(t, silent.url, { timeoutMs: 5000 }).getKeys(REQUEST, AbortSignal.timeout(200)))
  t.match(aborted, { status: 504, code: 'KMS_TIMEOUT' }, 'the overall deadline aborts the call')

  const trickle = await kmsWith(t, (_req, res) => { res.writeHead(200, { 'content-type': 'application/xml' }); res.write('<cpix:CPIX') })
  const stalled = await proxyErrorOf(providerFor(t, trickle.url, { timeoutMs: 300 }).getKeys(REQUEST, AbortSignal.timeout(5000)))
  t.match(stalled, { status: 504, code: 'KMS_TIMEOUT' }, 'a body that stops half-way times out too')
})

t.test('a refused or dropped connection is retried once, then a 502 KMS_UNREACHABLE naming the error code', async t => {
  const refused = await proxyErrorOf(providerFor(t, await closedPort()).getKeys(REQUEST, AbortSignal.timeout(5000)))
  t.match(refused, { status: 502, code: 'KMS_UNREACHABLE', message: 'KMS connection failed (ECONNREFUSED)' })

  const dropping = await kmsWith(t, (_req, res) => res.socket?.destroy())
  const dropped = await proxyErrorOf(providerFor(t, dropping.url).getKeys(REQUEST, AbortSignal.timeout(5000)))
  t.match(dropped, { status: 502, code: 'KMS_UNREACHABLE', message: /^KMS connection failed \(UND_ERR_SOCKET\)$/ })
  t.equal(dropping.received.length, 2, 'tried twice')

  let calls = 0
  const flaky = await kmsWith(t, (req, res) => { if (++calls === 1) res.socket?.destroy(); else replyWith(200, 'application/xml', CPIX)(req, res) })
  t.equal((await providerFor(t, flaky.url).getKeys(REQUEST, AbortSignal.timeout(5000))).status, 200, 'a dropped first connection is retried')
})

t.test('a reply larger than the limit is a 502 KMS_REPLY_TOO_LARGE and is not retried', async t => {
  const kms = await kmsWith(t, replyWith(200, 'application/xml', 'x'.repeat(64 * 1024)))
  const err = await proxyErrorOf(providerFor(t, kms.url, { maxReplyBytes: 1024 }).getKeys(REQUEST, AbortSignal.timeout(5000)))
  t.match(err, { status: 502, code: 'KMS_REPLY_TOO_LARGE', message: 'KMS reply is larger than 1024 bytes' })
  t.equal(kms.received.length, 1)
})

t.test('classification: CPIX goes on; every other reply becomes a proxy-written error', async t => {
  t.equal(classify(200, 'application/xml', CPIX), undefined, 'CPIX with 200')
  t.equal(classify(200, undefined, CPIX), undefined, 'CPIX without a content type')
  t.equal(classify(201, 'text/xml', `\uFEFF  ${CPIX}`), undefined, 'a BOM and leading white space')
  t.match(classify(200, 'text/html', '<!DOCTYPE html><html><body>Portal</body></html>'), { status: 502, code: 'KMS_NO_CPIX', message: 'KMS returned no CPIX (HTTP 200, an HTML page)' })
  t.match(classify(503, 'text/html', '<html>down</html>'), { status: 502, code: 'KMS_NO_CPIX', message: 'KMS returned no CPIX (HTTP 503, an HTML page)' })
  t.match(classify(200, 'application/xml', ''), { status: 502, code: 'KMS_NO_CPIX', message: 'KMS returned no CPIX (HTTP 200, an empty body)' })
  t.match(classify(500, undefined, ' \n '), { status: 502, code: 'KMS_NO_CPIX', message: 'KMS returned no CPIX (HTTP 500, an empty body)' })
  t.match(classify(200, 'text/plain', 'SUCCESS'), { status: 502, code: 'KMS_NO_CPIX', message: 'KMS returned no CPIX (HTTP 200, text/plain)' })
  t.match(classify(200, `text/${TOKEN}`, 'hello'), { message: 'KMS returned no CPIX (HTTP 200, an unexpected content type)' }, 'a content type that is not one is not quoted')
  t.match(classify(200, 'application/xml', `<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" id="${TOKEN}"/>`), { status: 502, code: 'KMS_REPLY_QUOTES_SECRET' })
})

t.test('classification: a non-2xx status that is not JSON; 4xx is the caller\'s, the rest the KMS\'s, its text never quoted', async t => {
  const hints: Array<[number, number, string, string]> = [
    [401, 401, 'KMS_REFUSED', 'KMS refused the request (HTTP 401): the KMS did not accept the enc-token or its site'],
    [403, 403, 'KMS_REFUSED', 'KMS refused the request (HTTP 403): the KMS did not accept the enc-token or its site'],
    [404, 404, 'KMS_REFUSED', 'KMS refused the request (HTTP 404): the KMS has no such URL (check KMS_URL)'],
    [408, 408, 'KMS_REFUSED', 'KMS refused the request (HTTP 408): the KMS is busy, try again later'],
    [429, 429, 'KMS_REFUSED', 'KMS refused the request (HTTP 429): the KMS is busy, try again later'],
    [400, 400, 'KMS_REFUSED', 'KMS refused the request (HTTP 400): the KMS found the request invalid'],
    [500, 502, 'KMS_ERROR', 'KMS error (HTTP 500): the KMS failed to answer'],
    [503, 502, 'KMS_ERROR', 'KMS error (HTTP 503): the KMS failed to answer'],
    [302, 502, 'KMS_ERROR', 'KMS error (HTTP 302): the KMS failed to answer']
  ]
  for (const [upstream, status, code, message] of hints) {
    t.same(classify(upstream, 'text/plain', `secret detail ${TOKEN}`), { status, code, message: `${message} (the KMS's own text is not passed on)` }, `HTTP ${upstream}`)
  }
  t.same(classify(500, 'application/xml', '<error>stack trace</error>'), { status: 502, code: 'KMS_ERROR', message: 'KMS error (HTTP 500): the KMS failed to answer (the KMS\'s own text is not passed on)' }, 'XML with an error status is not CPIX')
  t.same(classify(422, 'text/plain', 'ignored', 'remove DeliveryDataList'), { status: 422, code: 'KMS_REFUSED', message: 'KMS refused the request (HTTP 422): remove DeliveryDataList' }, 'the embedded provider\'s own refusal is quoted')
  t.same(classify(500, 'text/plain', 'ignored', 'internal'), { status: 502, code: 'KMS_ERROR', message: 'KMS refused the request (HTTP 500): internal' })
})

t.test('classification: JSON errors, whatever the status (PallyCon answers them with 200), judged by their message', async t => {
  const json = (body: unknown, status = 200): ReturnType<typeof classify> => classify(status, 'application/json', JSON.stringify(body))
  t.same(json({ error_code: '1003', error_message: 'Cannot find the Site ID.' }), { status: 403, code: 'KMS_REFUSED', message: 'KMS error (HTTP 200): 1003 Cannot find the Site ID.' })
  t.same(json({ error_code: 2001, error_message: 'Invalid request parameter' }), { status: 400, code: 'KMS_REFUSED', message: 'KMS error (HTTP 200): 2001 Invalid request parameter' })
  t.same(json({ error_message: 'Something broke' }), { status: 502, code: 'KMS_ERROR', message: 'KMS error (HTTP 200): Something broke' })
  t.same(json({ message: 'token expired' }, 401), { status: 403, code: 'KMS_REFUSED', message: 'KMS error (HTTP 401): token expired' }, 'the shorter field names some endpoints use')
  t.same(json({ error_code: 'E9' }, 500), { status: 502, code: 'KMS_ERROR', message: 'KMS error (HTTP 500): the KMS answered a JSON error without error_message (error_code E9)' })
  t.same(json({ detail: 'access key revoked' }), { status: 403, code: 'KMS_REFUSED', message: 'KMS error (HTTP 200): the KMS answered a JSON error without error_message' }, 'without a message, the whole body decides the status but is not quoted')
  t.same(classify(200, 'application/json', '{"error_message": '), { status: 502, code: 'KMS_ERROR', message: 'KMS error (HTTP 200): the KMS answered an unreadable JSON body' })
  t.same(json([1, 2]), { status: 502, code: 'KMS_ERROR', message: 'KMS error (HTTP 200): the KMS answered a JSON error without error_message' }, 'a JSON array')
  t.same(json({ error_message: `bad token ${TOKEN}` }), { status: 403, code: 'KMS_REFUSED', message: 'KMS error (HTTP 200): bad token [redacted]' }, 'a secret in the message is scrubbed')
  t.same(json({ error_message: 'line one\n\tline two' }), { status: 502, code: 'KMS_ERROR', message: 'KMS error (HTTP 200): line one line two' }, 'control characters are folded')
})

t.test('jsonErrorStatus: blame on the credential is 403, on the request 400, anything else 502', async t => {
  for (const message of ['Invalid token', 'Cannot find the Site ID.', 'access_key mismatch', 'Unauthorized', 'permission denied', 'Forbidden', 'license expired', 'not allowed', 'The service is stopped']) {
    t.equal(jsonErrorStatus(message), 403, message)
  }
  for (const message of ['Bad request', 'missing parameter', 'Invalid kid', 'malformed XML', 'content id too long', 'cid is empty', 'CPIX version not supported', 'unsupported drm type']) {
    t.equal(jsonErrorStatus(message), 400, message)
  }
  for (const message of ['Internal server error', 'database unavailable', '']) t.equal(jsonErrorStatus(message), 502, message || '(empty)')
})
