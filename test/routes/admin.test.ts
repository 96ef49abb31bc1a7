// Specification of the admin routes: bearer-token guarded audit queries and HMAC lookups, served from a real file trail.

import t from 'tap'
import { join } from 'node:path'
import fastify, { type FastifyInstance } from 'fastify'
import { hmacValue, openAuditTrail, type AuditRecord, type AuditTrail } from '../../src/audit/index.js'
import { adminRoutes } from '../../src/routes/admin.js'
import { bearerMatches } from '../../src/routes/bearer.js'
import { HMAC_KEY, KEY_A, KEY_B, sampleAsk, sampleEvent } from '../audit/fixtures/helpers.js'

const TOKEN = 'admin-token-0123456789'
const auth = { authorization: `Bearer ${TOKEN}` }

async function setup (
  t: Parameters<Parameters<typeof t.test>[1]>[0], { adminToken }: { adminToken?: string } = { adminToken: TOKEN }
): Promise<{ app: FastifyInstance, trail: AuditTrail }> {
  const trail = await openAuditTrail({ dir: join(t.testdir(), 'audit'), hmacKey: HMAC_KEY, instanceId: 'proxy-a', failOpen: false, writeTimeoutMs: 2000 })
  await trail.record(sampleEvent({ requestId: 'r1', request: sampleAsk({ contentId: 'movie-1' }), returnedKeys: [{ kid: 'AAAAAAAA-0000-0000-0000-000000000001', key: KEY_A }] }))
  await trail.record(sampleEvent({ requestId: 'r2', request: sampleAsk({ contentId: 'movie-2' }), outcome: 'rejected', status: 403, error: 'unknown site', returnedKeys: [] }))
  await trail.record(sampleEvent({ requestId: 'r3', request: sampleAsk({ contentId: 'movie-1' }), returnedKeys: [{ kid: 'AAAAAAAA-0000-0000-0000-000000000003', key: KEY_B }] }))
  const app = fastify()
  await app.register(adminRoutes, { source: trail.source, hmacKey: HMAC_KEY, adminToken })
  t.teardown(async () => { await app.close(); await trail.close() })
  return { app, trail }
}

const requestIds = (body: string): string[] => (JSON.parse(body) as { records: AuditRecord[] }).records.map((r) => r.request_id)

t.test('without ADMIN_TOKEN no admin route exists', async (t) => {
  const { app } = await setup(t, { adminToken: undefined })
  t.equal((await app.inject({ method: 'GET', url: '/admin/audit', headers: auth })).statusCode, 404)
  t.equal((await app.inject({ method: 'POST', url: '/admin/audit/hash', headers: auth, payload: { value: 'x' } })).statusCode, 404)
})

t.test('every admin route demands the bearer token', async (t) => {
  const { app } = await setup(t)
  for (const headers of [{}, { authorization: TOKEN }, { authorization: `Bearer ${TOKEN}x` }, { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
    { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }, { authorization: 'Bearer ' }]) {
    const get = await app.inject({ method: 'GET', url: '/admin/audit', headers })
    t.equal(get.statusCode, 401, `GET with ${JSON.stringify(headers)}`)
    t.same(get.json(), { error: 'a valid admin bearer token is required' })
    t.equal(get.headers['www-authenticate'], 'Bearer')
    const post = await app.inject({ method: 'POST', url: '/admin/audit/hash', headers, payload: { value: 'x' } })
    t.equal(post.statusCode, 401, `POST with ${JSON.stringify(headers)}`)
    t.notMatch(post.body, /hmac-sha256/)
  }
  t.equal((await app.inject({ method: 'GET', url: '/admin/audit', headers: { authorization: `bearer  ${TOKEN}` } })).statusCode, 200, 'the scheme is case-insensitive')
})

t.test('bearerMatches compares the whole token', async (t) => {
  t.ok(bearerMatches(`Bearer ${TOKEN}`, TOKEN))
  t.notOk(bearerMatches(`Bearer ${TOKEN}`, `${TOKEN}0`))
  t.notOk(bearerMatches(undefined, TOKEN))
})

t.test('GET /admin/audit filters the trail, newest first, and pages', async (t) => {
  const { app } = await setup(t)
  const all = await app.inject({ method: 'GET', url: '/admin/audit', headers: auth })
  t.equal(all.statusCode, 200)
  t.equal(all.headers['cache-control'], 'no-store')
  t.same(requestIds(all.body), ['r3', 'r2', 'r1'])
  t.same(requestIds((await app.inject({ method: 'GET', url: '/admin/audit?content_id=movie-1', headers: auth })).body), ['r3', 'r1'])
  t.same(requestIds((await app.inject({ method: 'GET', url: '/admin/audit?outcome=rejected&tenant=site-1', headers: auth })).body), ['r2'])
  t.same(requestIds((await app.inject({ method: 'GET', url: '/admin/audit?kid=aaaaaaaa-0000-0000-0000-000000000003', headers: auth })).body), ['r3'])
  t.same(requestIds((await app.inject({ method: 'GET', url: '/admin/audit?since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z', headers: auth })).body), [])

  const first = (await app.inject({ method: 'GET', url: '/admin/audit?limit=2', headers: auth })).json() as { records: AuditRecord[], nextCursor: string }
  t.same(first.records.map((r) => r.request_id), ['r3', 'r2'])
  t.type(first.nextCursor, 'string')
  const second = (await app.inject({ method: 'GET', url: `/admin/audit?limit=2&cursor=${first.nextCursor}`, headers: auth })).json() as { records: AuditRecord[], nextCursor?: string }
  t.same(second.records.map((r) => r.request_id), ['r1'])
  t.equal(second.nextCursor, undefined)
})

t.test('bad query parameters are 400 with a JSON error', async (t) => {
  const { app } = await setup(t)
  for (const query of ['limit=0', 'limit=abc', 'outcome=maybe', 'since=tomorrow', 'cursor=nope', 'tenant=a&tenant=b']) {
    const res = await app.inject({ method: 'GET', url: `/admin/audit?${query}`, headers: auth })
    t.equal(res.statusCode, 400, query)
    t.match(res.json(), { error: String, code: /BAD_/ }, query)
  }
})

t.test('POST /admin/audit/hash returns the HMAC of a known value, which finds the record', async (t) => {
  const { app } = await setup(t)
  const text = await app.inject({ method: 'POST', url: '/admin/audit/hash', headers: auth, payload: { value: 'movie-1' } })
  t.equal(text.statusCode, 200)
  t.same(text.json(), { hmac: hmacValue(HMAC_KEY, 'movie-1') })

  const key = await app.inject({ method: 'POST', url: '/admin/audit/hash', headers: auth, payload: { value: KEY_B.toString('hex'), encoding: 'hex' } })
  const { hmac } = key.json() as { hmac: string }
  t.equal(hmac, hmacValue(HMAC_KEY, KEY_B), 'a key given in hex hashes to its fingerprint')
  const b64 = await app.inject({ method: 'POST', url: '/admin/audit/hash', headers: auth, payload: { value: KEY_B.toString('base64'), encoding: 'base64' } })
  t.equal((b64.json() as { hmac: string }).hmac, hmac, 'and in base64 too')
  const found = await app.inject({ method: 'GET', url: `/admin/audit?fingerprint=${hmac}`, headers: auth })
  t.same(requestIds(found.body), ['r3'], 'the fingerprint finds the request that returned that key')
})

t.test('POST /admin/audit/hash refuses bodies it cannot hash', async (t) => {
  const { app } = await setup(t)
  for (const payload of [{}, { value: '' }, { value: 42 }, { value: 'zz', encoding: 'hex' }, { value: 'x', encoding: 'rot13' }, { value: 'x'.repeat(5000) }]) {
    const res = await app.inject({ method: 'POST', url: '/admin/audit/hash', headers: auth, payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 60))
    t.match(res.json(), { error: String }, 'a JSON error body')
  }
  const notJson = await app.inject({ method: 'POST', url: '/admin/audit/hash', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"value":' })
  t.equal(notJson.statusCode, 400)
  t.match(notJson.json(), { error: String })
})

t.test('the plugin also works when called directly, and refuses an empty token', async (t) => {
  const trail = await openAuditTrail({ dir: join(t.testdir(), 'audit'), hmacKey: HMAC_KEY, instanceId: 'p', failOpen: false, writeTimeoutMs: 2000 })
  const app = fastify()
  t.teardown(async () => { await app.close(); await trail.close() })
  await adminRoutes(app, { source: trail.source, hmacKey: HMAC_KEY, adminToken: TOKEN })
  app.get('/healthz', async () => ({ ok: true }))
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'other routes are not put behind the admin token')
  t.equal((await app.inject({ method: 'GET', url: '/admin/audit', headers: auth })).statusCode, 200)
  await t.rejects(adminRoutes(fastify(), { source: trail.source, hmacKey: HMAC_KEY, adminToken: '' }), /ADMIN_TOKEN/)
})
