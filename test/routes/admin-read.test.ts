// The admin read API on the real server (127.0.0.1:0), over audit files and over PostgreSQL: keys, activity, state, bad input, limits.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { PROJECT_ROOT } from '../helpers/fixtures.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { PG_URL, pgSchema } from '../audit/fixtures/helpers.js'

const ADMIN_TOKEN = 'admin-read-test-token-0123456789abcdef'
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
/** A pass-through enc-token: base64 of {"site_id":"DEMO","access_key":"any"}; its tenant is site:DEMO. */
const TOKEN = 'eyJzaXRlX2lkIjoiREVNTyIsImFjY2Vzc19rZXkiOiJhbnkifQ=='
const SQLISH = "'; drop table audit_records; --"
const HTML = '<img src=x onerror=alert(1)>'
const V1_KID = '5a1d6b2c-8f3e-4b7a-9c0d-1e2f3a4b5c6d'
const V2_KIDS = ['7d2e4f60-1a3b-4c5d-8e9f-0a1b2c3d4e5f', '8e3f5071-2b4c-4d6e-9f0a-1b2c3d4e5f60']

const example = (name: string): string => readFileSync(join(PROJECT_ROOT, 'examples', name), 'utf8')
const xmlAttr = (value: string): string => value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;')

interface Answer { status: number, body: string, json: () => any, type: string }

async function get (proxy: RunningProxy, path: string, headers: Record<string, string> = auth): Promise<Answer> {
  const res = await request(`${proxy.url}${path}`, { headers })
  const body = await res.body.text()
  return { status: res.statusCode, body, json: () => JSON.parse(body), type: String(res.headers['content-type']) }
}

/** Key requests as a packager makes them: a SPEKE v1 title per hostile content id, and a SPEKE v2.0 title with encrypted delivery. */
async function makeKeyRequests (t: Parameters<Parameters<typeof t.test>[1]>[0], proxy: RunningProxy): Promise<void> {
  for (const id of [SQLISH, HTML]) {
    const body = example('speke-v1-dash.xml').replace('id="example-movie-v1"', `id="${xmlAttr(id)}"`)
    const res = await request(`${proxy.url}/cpix/getKey?enc-token=${TOKEN}`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body })
    await res.body.text()
    t.equal(res.statusCode, 200, `a key request for ${JSON.stringify(id)}`)
  }
  const encrypted = example('speke-v2.0-encrypted.xml').replace('contentId="example-movie-v2"', 'contentId="enc-title"')
  const res = await request(`${proxy.url}/cpix/getKey?enc-token=${TOKEN}`, { method: 'POST', headers: { 'content-type': 'application/xml', 'x-speke-version': '2.0' }, body: encrypted })
  await res.body.text()
  t.equal(res.statusCode, 200, 'an encrypted delivery')
}

async function exercise (t: Parameters<Parameters<typeof t.test>[1]>[0], proxy: RunningProxy, sink: 'files' | 'postgres'): Promise<void> {
  await makeKeyRequests(t, proxy)

  t.test('GET /admin/keys: hostile content ids are stored and returned verbatim, as JSON data', async (t) => {
    for (const id of [SQLISH, HTML]) {
      const res = await get(proxy, `/admin/keys?content_id=${encodeURIComponent(id)}`)
      t.equal(res.status, 200)
      t.match(res.type, /^application\/json/)
      t.match(res.json(), { keys: [{ kid: V1_KID, content_id: id, tenant: 'site:DEMO', tenant_kind: 'passthrough', times_issued: 1, last_outcome: 'ok', last_status: 200, delivered_encrypted: false }] })
      t.equal(res.json().keys.length, 1)
    }
    const enc = (await get(proxy, '/admin/keys?content_id=enc-title&tenant=site:DEMO')).json()
    t.same(enc.keys.map((k: { kid: string }) => k.kid).sort(), V2_KIDS, 'both kids of the encrypted title')
    t.ok(enc.keys.every((k: { delivered_encrypted: boolean, track_types: string[] }) => k.delivered_encrypted), 'delivered encrypted')
    const byKid = (await get(proxy, `/admin/keys?kid=${V1_KID.replace(/-/g, '').toUpperCase()}`)).json()
    t.same(byKid.keys.map((k: { content_id: string }) => k.content_id).sort(), [SQLISH, HTML].sort(), 'a kid in upper case without dashes: where it went')
    const paged = (await get(proxy, `/admin/keys?kid=${V1_KID}&limit=1`)).json()
    t.equal(paged.keys.length, 1)
    const next = (await get(proxy, `/admin/keys?kid=${V1_KID}&limit=1&cursor=${paged.nextCursor as string}`)).json()
    t.equal(next.keys.length, 1)
    t.equal(next.nextCursor, undefined)
    t.not(next.keys[0].content_id, paged.keys[0].content_id, 'the second page has the other title')
  })

  t.test('GET /admin/audit: the route filter', async (t) => {
    t.equal((await get(proxy, '/admin/audit?route=speke')).json().records.length, 3)
    t.equal((await get(proxy, '/admin/audit?route=anevia')).json().records.length, 0)
    const audit = (await get(proxy, `/admin/audit?content_id=${encodeURIComponent(HTML)}`)).json()
    t.equal(audit.records[0].content_id, HTML)
    const enc = (await get(proxy, '/admin/audit?content_id=enc-title')).json()
    t.equal(enc.records[0].delivery, 'encrypted', 'the record says the keys left encrypted')
    t.notOk('delivery' in audit.records[0], 'and a record of keys in the clear has no delivery field')
  })

  t.test('GET /admin/activity and GET /admin/audit/state', async (t) => {
    const activity = (await get(proxy, '/admin/activity')).json()
    t.match(activity, { since: String, until: String, tenants: [{ tenant: 'site:DEMO', tenant_kind: 'passthrough', requests: 3, ok: 3, rejected: 0, upstream_errors: 0 }], refused_without_credential: 0 })
    t.equal(Date.parse(activity.until) - Date.parse(activity.since), 3_600_000, 'the last hour by default')
    const five = (await get(proxy, '/admin/activity?minutes=5')).json()
    t.equal(Date.parse(five.until) - Date.parse(five.since), 300_000, 'minutes=5')
    const state = (await get(proxy, '/admin/audit/state')).json()
    t.match(state, {
      sink,
      last_record: { time: String, seq: Number, instance_id: String },
      verification: { ok: true, checked_records: Number, at: String, signatures_checked: true }
    })
  })

  t.test('bad input: a clear 400 naming what is wrong', async (t) => {
    const cases: Array<[string, RegExp]> = [
      ['/admin/audit?tenat=acme', /unknown query parameter "tenat": this path takes tenant, content_id, route/],
      ['/admin/keys?content_id=x&drop=1', /unknown query parameter "drop"/],
      ['/admin/activity?minute=5', /unknown query parameter "minute": this path takes minutes/],
      ['/admin/audit/state?verify=now', /unknown query parameter "verify": this path takes no query parameters/],
      [`/admin/audit?${encodeURIComponent(HTML)}=1`, /unknown query parameter/],
      ['/admin/audit?route=bogus', /route must be one of speke, pallycon-v1, pallycon-v2, anevia, keys-json/],
      ['/admin/audit?kid=not-a-uuid', /kid must be a UUID/],
      [`/admin/keys?kid=${encodeURIComponent("' OR '1'='1")}`, /kid must be a UUID/],
      ['/admin/keys?tenant=site:DEMO', /give content_id or kid/],
      ['/admin/audit?since=yesterday', /since must be an ISO 8601 time/],
      ['/admin/audit?until=2025-13-45T00:00:00Z', /until must be an ISO 8601 time/],
      ['/admin/audit?limit=abc', /limit must be an integer from 1 to 1000/],
      ['/admin/audit?limit=0', /limit must be an integer from 1 to 1000/],
      ['/admin/keys?content_id=x&limit=5000', /limit must be an integer from 1 to 1000/],
      ['/admin/keys?content_id=x&cursor=nope', /cursor is not one this server returned/],
      ['/admin/activity?minutes=0', /minutes must be an integer from 1 to 1440/],
      ['/admin/activity?minutes=1441', /minutes must be an integer from 1 to 1440/],
      ['/admin/activity?minutes=-5', /minutes must be an integer from 1 to 1440/],
      ['/admin/keys?content_id=a&content_id=b', /content_id may be given once/]
    ]
    for (const [path, message] of cases) {
      const res = await get(proxy, path)
      t.equal(res.status, 400, path)
      t.match(res.json(), { error: message, code: 'BAD_AUDIT_QUERY' }, path)
    }
  })

  t.test('a console may refresh: far more than 30 authorised requests a minute', async (t) => {
    const statuses = new Set<number>()
    for (let i = 0; i < 60; i++) statuses.add((await get(proxy, '/admin/activity')).status)
    t.same([...statuses], [200])
  })

  t.test('no secret in the log or the answers', async (t) => {
    const all = proxy.logs.join('')
    t.notOk(all.includes(ADMIN_TOKEN), 'the admin token is not logged')
    t.notOk(all.includes('"access_key"') || all.includes(TOKEN), 'nor the enc-token')
    const answers = [(await get(proxy, '/admin/audit')).body, (await get(proxy, `/admin/keys?kid=${V1_KID}`)).body, (await get(proxy, '/admin/audit/state')).body]
    for (const body of answers) t.notOk(body.includes(ADMIN_TOKEN) || body.includes(TOKEN), 'no token in an answer')
  })
}

t.test('over audit files', async (t) => {
  const proxy = await startProxy({ ADMIN_TOKEN, KMS_URL: 'local' })
  t.teardown(() => proxy.close())
  await exercise(t, proxy, 'files')
})

t.test('over PostgreSQL', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  const proxy = await startProxy({ ADMIN_TOKEN, KMS_URL: 'local', AUDIT_DATABASE_URL: PG_URL, AUDIT_DATABASE_SCHEMA: schema })
  t.teardown(() => proxy.close())
  await exercise(t, proxy, 'postgres')
})

t.test('wrong tokens are still limited to 30 a minute per address, and then the right one waits too', async (t) => {
  const proxy = await startProxy({ ADMIN_TOKEN, KMS_URL: 'local' })
  t.teardown(() => proxy.close())
  for (let i = 0; i < 5; i++) t.equal((await get(proxy, '/admin/activity')).status, 200, 'authorised requests do not use up the guessing budget')
  const statuses: number[] = []
  for (let i = 0; i < 32; i++) statuses.push((await get(proxy, '/admin/keys?content_id=x', { authorization: `Bearer wrong-${i}` })).status)
  t.same(statuses, [...Array(30).fill(401), 429, 429])
  const right = await get(proxy, '/admin/activity')
  t.equal(right.status, 429)
  t.match(right.json(), { code: 'RATE_LIMITED', error: /missing or wrong token/ })
})
