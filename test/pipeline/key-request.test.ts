// Specification of the key request pipeline on its own, with a stub key provider:
// what the provider is asked, what the caller gets, what the record says.

import t from 'tap'
import { ProxyError } from '../../src/errors.js'
import type { KeyProvider, ProviderReply, ProviderRequest } from '../../src/kms/provider.js'
import { handleKeyRequest } from '../../src/pipeline/key-request.js'
import type { KeyRequest, PipelineDeps } from '../../src/pipeline/key-request.js'
import { encodeEncToken } from '../../src/tenants/enc-token.js'
import type { Caller } from '../../src/tenants/registry.js'
import { DEMO_TOKEN, fixture } from '../helpers/fixtures.js'

const V1_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
const V1_REPLY = fixture('aws-speke-v1/aws-doc-v1-vod-response-aes128-sampleaes-widevine-playready.xml')
const V2_REQUEST = fixture('aws-speke-v2/aws-doc-v2-kid-override-request-widevine-cbcs-live.xml')
const UPSTREAM_TOKEN = encodeEncToken('ACME', 'acme-access-key-0123456789')
const MANAGED: Caller = { tenant: 'acme', upstreamToken: UPSTREAM_TOKEN, managed: true }
const USER_AGENT = 'speke-proxy/test'

/** A key provider that records what it is asked and answers as told (a reply, or a thrown error). */
function stubProvider (answer: ProviderReply | Error): KeyProvider & { asked: ProviderRequest[] } {
  const asked: ProviderRequest[] = []
  return {
    name: 'pallycon',
    asked,
    async getKeys (request) {
      asked.push(request)
      if (answer instanceof Error) throw answer
      return answer
    },
    async close () {}
  }
}

const cpixReply = (body: Buffer = V1_REPLY): ProviderReply => ({ status: 200, contentType: 'application/xml', body, latencyMs: 12.4 })

function deps (provider: KeyProvider, extra: Partial<PipelineDeps> = {}): PipelineDeps {
  return { provider, kmsTimeoutMs: 5000, userAgent: USER_AGENT, ...extra }
}

function speke (extra: Partial<KeyRequest> = {}): KeyRequest {
  return { route: 'speke', caller: MANAGED, credential: 'spk_acme-credential', body: V1_REQUEST, contentType: 'application/xml', requestId: 'req-1', ...extra }
}

t.test('a SPEKE v1 request: the provider gets the tenant\'s token and the dialect, the caller gets the CPIX reply', async t => {
  const provider = stubProvider(cpixReply())
  const response = await handleKeyRequest(deps(provider), speke())
  t.equal(provider.asked.length, 1)
  t.match(provider.asked[0], { route: 'speke', dialect: 'speke-v1', token: UPSTREAM_TOKEN, spekeVersion: undefined, contentType: 'application/xml' })
  t.equal(provider.asked[0].body, V1_REQUEST, 'the request bytes go on unchanged')
  t.equal(response.status, 200)
  t.same(response.headers, { 'content-type': 'application/xml', 'speke-user-agent': USER_AGENT })
  t.equal(response.body, V1_REPLY)
  t.match(response.record, { route: 'speke', dialect: 'speke-v1', tenant: 'acme', authenticated: true, outcome: 'ok', status: 200, upstreamStatus: 200, upstreamMs: 12 })
  t.equal(response.record.errorCode, undefined)
  t.ok(response.record.request !== undefined && response.record.request.kids.length > 0, 'the record says what was asked')
  t.equal(response.record.keysReturned, response.returnedKeys.length)
})

t.test('SPEKE v2: the dialect follows X-Speke-Version and the reply headers speak v2', async t => {
  const provider = stubProvider(cpixReply())
  const response = await handleKeyRequest(deps(provider, { checkReply: ({ reply }) => reply }), speke({ spekeVersion: '2.0', body: V2_REQUEST }))
  t.equal(provider.asked[0].dialect, 'speke-v2.0')
  t.equal(provider.asked[0].spekeVersion, '2.0')
  t.match(response.headers, { 'x-speke-version': '2.0', 'x-speke-user-agent': USER_AGENT })
  t.equal(response.record.dialect, 'speke-v2.0')
})

t.test('the JSON key API goes to the KMS as PallyCon v2 and is recorded as keys-json', async t => {
  const provider = stubProvider(cpixReply())
  const response = await handleKeyRequest(deps(provider), speke({ route: 'keys-json' }))
  t.match(provider.asked[0], { route: 'pallycon-v2', dialect: 'pallycon' })
  t.equal(response.record.route, 'keys-json')
  t.same(response.headers, { 'content-type': 'application/xml' }, 'no SPEKE headers off the SPEKE route')
})

t.test('refusals before the provider: nothing is sent upstream, the record names the code', async t => {
  const cases: Array<[string, Partial<KeyRequest>, number, string]> = [
    ['an unknown SPEKE version', { spekeVersion: '3.0' }, 400, 'UNSUPPORTED_SPEKE_VERSION'],
    ['a version that is an object property name', { spekeVersion: 'constructor' }, 400, 'UNSUPPORTED_SPEKE_VERSION'],
    ['a body that is not XML by its Content-Type', { contentType: 'application/json' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a body that is not CPIX', { body: Buffer.from('<html></html>') }, 400, '']
  ]
  for (const [what, change, status, code] of cases) {
    const provider = stubProvider(cpixReply())
    const response = await handleKeyRequest(deps(provider), speke(change))
    t.equal(provider.asked.length, 0, `${what}: the provider is not asked`)
    t.equal(response.status, status, `${what}: ${status}`)
    t.match(response.record, { outcome: 'rejected', status, authenticated: true, tenant: 'acme', keysReturned: 0 }, what)
    if (code !== '') t.equal(response.record.errorCode, code, what)
    t.equal(response.headers['content-type'], 'text/plain; charset=utf-8')
    t.equal(response.body, response.record.error, `${what}: the message is the body`)
    t.same(response.returnedKeys, [])
  }
})

t.test('on the JSON key API a refusal is written as {"error": …}', async t => {
  const response = await handleKeyRequest(deps(stubProvider(cpixReply())), speke({ route: 'keys-json', contentType: 'text/html' }))
  t.equal(response.status, 415)
  t.equal(response.headers['content-type'], 'application/json; charset=utf-8')
  t.same(JSON.parse(String(response.body)), { error: response.record.error })
})

t.test('the provider failing is an upstream error with its code', async t => {
  const response = await handleKeyRequest(deps(stubProvider(new ProxyError('KMS_TIMEOUT', 'KMS did not answer within 5000 ms'))), speke())
  t.match(response.record, { outcome: 'upstream_error', status: 504, errorCode: 'KMS_TIMEOUT', upstreamStatus: undefined })
  t.equal(response.body, 'KMS did not answer within 5000 ms')
})

t.test('a KMS answer that is not CPIX becomes a proxy-written error; its secrets never reach the caller', async t => {
  const body = Buffer.from(JSON.stringify({ error_code: '4001', error_message: `invalid token ${UPSTREAM_TOKEN}` }))
  const response = await handleKeyRequest(deps(stubProvider({ status: 200, contentType: 'application/json', body, latencyMs: 3 })), speke())
  t.match(response.record, { status: 403, upstreamStatus: 200, errorCode: 'KMS_REFUSED' })
  t.notOk(String(response.body).includes(UPSTREAM_TOKEN), 'the upstream token is scrubbed')
  t.notOk(String(response.body).includes('acme-access-key'), 'and so is the access key inside it')
})

t.test('a bug is a 500 with a fixed message, reported to onInternalError, never its text', async t => {
  const reported: unknown[] = []
  const response = await handleKeyRequest(deps(stubProvider(new TypeError('secret detail')), { onInternalError: err => reported.push(err) }), speke())
  t.match(response.record, { status: 500, errorCode: 'INTERNAL', outcome: 'rejected' })
  t.equal(response.body, 'Internal error in speke-proxy')
  t.match(reported, [{ message: 'secret detail' }])
})

t.test('a pass-through caller: its own token goes upstream and both spellings are scrubbed', async t => {
  const provider = stubProvider(cpixReply())
  const caller: Caller = { tenant: 'site:DEMO', upstreamToken: DEMO_TOKEN, managed: false }
  const response = await handleKeyRequest(deps(provider), speke({ caller, credential: DEMO_TOKEN }))
  t.equal(provider.asked[0].token, DEMO_TOKEN)
  t.equal(response.record.tenant, 'site:DEMO')
})

t.test('the reply check runs after the provider and may repair or refuse', async t => {
  const repaired = await handleKeyRequest(deps(stubProvider(cpixReply()), { checkReply: ({ reply, dialect }) => ({ ...reply, repairs: [`checked as ${dialect}`] }) }), speke())
  t.same(repaired.record.repairs, ['checked as speke-v1'])
  const refused = await handleKeyRequest(deps(stubProvider(cpixReply()), { checkReply: () => { throw new ProxyError('KMS_REPLY_NOT_SPEKE_V2', 'no') } }), speke())
  t.match(refused.record, { status: 502, outcome: 'upstream_error', errorCode: 'KMS_REPLY_NOT_SPEKE_V2', upstreamStatus: 200 })
})

t.test('Anevia: no body, the ask comes from the path', async t => {
  const provider = stubProvider(cpixReply())
  const response = await handleKeyRequest(deps(provider), { route: 'anevia', caller: MANAGED, credential: 'c', anevia: { format: 'dash', contentId: 'movie-1' }, requestId: 'r' })
  t.match(provider.asked[0], { route: 'anevia', dialect: 'pallycon', anevia: { format: 'dash', contentId: 'movie-1' }, body: undefined })
  t.same(response.record.request, { contentId: 'movie-1', kids: [], drmSystems: [], trackTypes: [], keyPeriods: [] })
})

t.test('encrypted delivery: the certificate is checked first, the provider asked for plain keys, the audit gets them', async t => {
  const cert = fixture('dashif/certs/Cert1.cer').toString('base64')
  const list = '<cpix:DeliveryDataList xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><cpix:DeliveryData id="p"><cpix:DeliveryKey><ds:X509Data>' +
    `<ds:X509Certificate>${cert}</ds:X509Certificate></ds:X509Data></cpix:DeliveryKey></cpix:DeliveryData></cpix:DeliveryDataList>`
  const body = Buffer.from(V1_REQUEST.toString('utf8').replace(/<cpix:CPIX\b[^>]*>/, open => open + list))
  const provider = stubProvider(cpixReply())
  const draws: number[] = []
  const random = (n: number): Buffer => { draws.push(n); return Buffer.alloc(n, draws.length) }
  const response = await handleKeyRequest(deps(provider, { randomBytes: random }), speke({ body }))
  t.equal(response.status, 200)
  t.notMatch(provider.asked[0].body?.toString('utf8') ?? '', /DeliveryDataList/, 'the provider is asked without the DeliveryDataList')
  const text = response.body.toString('utf8')
  t.notMatch(text, /PlainValue/, 'the caller gets no key in the clear')
  t.match(text, /<pskc:EncryptedValue>/)
  t.same(draws, [32, 64, 16], 'a 256-bit document key, a 512-bit MAC key, an IV per key')
  t.same(response.returnedKeys.map(k => k.key.toString('base64')), ['5dGAgwGuUYu4dHeHtNlxJw=='], 'the audit gets the plain key')
  t.equal(response.record.outcome, 'ok')

  const expired = stubProvider(cpixReply())
  const refused = await handleKeyRequest(deps(expired, { now: () => new Date('2041-01-01T00:00:00Z') }), speke({ body }))
  t.equal(refused.status, 400)
  t.equal(refused.record.errorCode, 'DELIVERY_KEY_NOT_VALID_NOW')
  t.equal(expired.asked.length, 0, 'a refused certificate never reaches the provider')
})
