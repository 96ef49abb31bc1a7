// Specification of the key lookup: one entry per (kid, content id, tenant), the same from the files and from PostgreSQL.

import t from 'tap'
import type { AuditSource } from '../../src/audit/index.js'
import { lookupKeys, type KeyEntry, type KeyLookupFilter } from '../../src/audit/key-lookup.js'
import { KEY_A, KEY_B, openBothSinks, pgSchema, sampleAsk, sampleEvent } from './fixtures/helpers.js'

const K1 = '11111111-aaaa-4bbb-8ccc-000000000001'
const K2 = '22222222-aaaa-4bbb-8ccc-000000000002'
const K3 = '33333333-aaaa-4bbb-8ccc-000000000003'
const K4 = '44444444-aaaa-4bbb-8ccc-000000000004'
const K5 = '55555555-aaaa-4bbb-8ccc-000000000005'
const K6 = '66666666-aaaa-4bbb-8ccc-000000000006'
const WV = 'EDEF8BA9-79D6-4ACE-A3C8-27DCD51D21ED'
const PR = '9A04F079-9840-4286-AB92-E65BE0885F95'
const SQLISH = "'; drop table audit_records; --"
const HTML = '<img src=x onerror=alert(1)>'
const T0 = Date.parse('2025-03-01T00:00:00.000Z')
const at = (minute: number): string => new Date(T0 + minute * 60_000).toISOString()

/** Records 0 to 9, minute i for record i, written to both sinks at once. */
async function seed (t: Parameters<Parameters<typeof t.test>[1]>[0]): Promise<Array<[string, AuditSource]> | undefined> {
  const schema = await pgSchema(t)
  if (schema === undefined) return undefined
  let minute = 0
  const { trail, dir } = await openBothSinks(t, schema, () => new Date(T0 + minute * 60_000))
  const ok = (kids: string[]): { returnedKeys: Array<{ kid: string, key: Buffer }> } =>
    ({ returnedKeys: kids.map((kid, i) => ({ kid, key: i === 0 ? KEY_A : KEY_B })) })
  const events = [
    sampleEvent({ tenant: 'acme', request: sampleAsk({ contentId: 'movie-1', kids: [K1], drmSystems: [WV], trackTypes: ['SD'] }), ...ok([K1]), deliveredEncrypted: true }),
    sampleEvent({ tenant: 'acme', request: sampleAsk({ contentId: 'movie-1', kids: [K1, K2], drmSystems: [PR], trackTypes: ['HD'] }), ...ok([K1, K2]) }),
    sampleEvent({ tenant: 'site:DEMO', request: sampleAsk({ contentId: 'movie-1', kids: [K1], drmSystems: [WV], trackTypes: ['SD'] }), ...ok([K1]), deliveredEncrypted: true }),
    sampleEvent({ tenant: 'acme', request: sampleAsk({ contentId: 'movie-1', kids: [K3], drmSystems: [WV], trackTypes: ['AUDIO'] }), outcome: 'rejected', status: 422, errorCode: 'DUPLICATE_KID', returnedKeys: [] }),
    sampleEvent({ tenant: 'acme', request: sampleAsk({ contentId: 'movie-1', kids: [K2], drmSystems: [PR], trackTypes: ['HD'] }), outcome: 'upstream_error', status: 504, errorCode: 'KMS_TIMEOUT', returnedKeys: [] }),
    sampleEvent({ tenant: 'acme', request: sampleAsk({ contentId: 'movie-2', kids: [K1], drmSystems: [WV], trackTypes: ['SD'] }), ...ok([K1]) }),
    sampleEvent({ tenant: 'acme', request: sampleAsk({ contentId: SQLISH, kids: [K4], drmSystems: [WV], trackTypes: ['SD'] }), ...ok([K4]) }),
    sampleEvent({ tenant: 'acme', request: sampleAsk({ contentId: HTML, kids: [K5], drmSystems: [WV], trackTypes: ['SD'] }), ...ok([K5]) }),
    sampleEvent({ tenant: 'acme', request: sampleAsk({ contentId: 'movie-1', kids: [K6.toUpperCase()], drmSystems: [WV], trackTypes: ['SD'], keyPeriods: ['p1'] }), ...ok([K6.toUpperCase()]), deliveredEncrypted: true })
  ]
  for (const [i, event] of events.entries()) {
    minute = i
    await trail.record(event)
  }
  await trail.checkpoint()
  return [['files', { kind: 'files', dir }], ['postgres', trail.source]]
}

const wv = WV.toLowerCase()
const pr = PR.toLowerCase()

const MOVIE_1: KeyEntry[] = [
  { kid: K6, content_id: 'movie-1', tenant: 'acme', tenant_kind: 'managed', drm_systems: [wv], track_types: ['SD'], key_periods: ['p1'], first_issued: at(8), last_issued: at(8), times_issued: 1, last_outcome: 'ok', last_status: 200, delivered_encrypted: true },
  { kid: K3, content_id: 'movie-1', tenant: 'acme', tenant_kind: 'managed', drm_systems: [wv], track_types: ['AUDIO'], key_periods: [], first_issued: null, last_issued: null, times_issued: 0, last_outcome: 'rejected', last_status: 422, delivered_encrypted: false },
  { kid: K1, content_id: 'movie-1', tenant: 'site:DEMO', tenant_kind: 'passthrough', drm_systems: [wv], track_types: ['SD'], key_periods: [], first_issued: at(2), last_issued: at(2), times_issued: 1, last_outcome: 'ok', last_status: 200, delivered_encrypted: true },
  { kid: K2, content_id: 'movie-1', tenant: 'acme', tenant_kind: 'managed', drm_systems: [pr], track_types: ['HD'], key_periods: [], first_issued: at(1), last_issued: at(1), times_issued: 1, last_outcome: 'upstream_error', last_status: 504, delivered_encrypted: false },
  { kid: K1, content_id: 'movie-1', tenant: 'acme', tenant_kind: 'managed', drm_systems: [pr, wv].sort(), track_types: ['HD', 'SD'], key_periods: [], first_issued: at(0), last_issued: at(1), times_issued: 2, last_outcome: 'ok', last_status: 200, delivered_encrypted: false }
]

t.test('key lookup, from both sources', async (t) => {
  const sources = await seed(t)
  if (sources === undefined) return
  for (const [name, source] of sources) {
    t.test(name, async (t) => {
      const keys = async (filter: KeyLookupFilter): Promise<KeyEntry[]> => (await lookupKeys(source, filter)).keys
      t.same(await keys({ contentId: 'movie-1' }), MOVIE_1, 'every kid of a title, newest first; a later failure shows; never-issued kids stay with times_issued 0')
      t.same(await keys({ contentId: 'movie-1', tenant: 'site:DEMO' }), [MOVIE_1[2]], 'one tenant')
      const k1 = await keys({ kid: K1.replace(/-/g, '').toUpperCase() })
      t.same(k1.map((k) => [k.content_id, k.tenant]), [['movie-2', 'acme'], ['movie-1', 'site:DEMO'], ['movie-1', 'acme']], 'a kid alone (any case, no dashes): where it went')
      t.same(await keys({ kid: K1, contentId: 'movie-1' }), [MOVIE_1[2], MOVIE_1[4]], 'kid and content id')
      t.same(await keys({ contentId: SQLISH }), [{ ...MOVIE_1[0], kid: K4, content_id: SQLISH, key_periods: [], first_issued: at(6), last_issued: at(6), delivered_encrypted: false }], 'an SQL-ish content id is data')
      t.same((await keys({ contentId: HTML })).map((k) => k.content_id), [HTML], 'an HTML content id comes back verbatim')
      t.same(await keys({ contentId: 'nothing' }), [])

      const seen: KeyEntry[] = []
      let cursor: string | undefined
      let pages = 0
      do {
        const page = await lookupKeys(source, { contentId: 'movie-1', limit: 2, cursor })
        seen.push(...page.keys)
        cursor = page.nextCursor
        pages++
      } while (cursor !== undefined && pages < 10)
      t.equal(pages, 3, 'five entries in pages of two')
      t.same(seen, MOVIE_1, 'pages cover every entry once, in order')
    })
  }
})

t.test('the files scan refuses a lookup matching more entries than it holds in memory', async (t) => {
  const sources = await seed(t)
  if (sources === undefined) return
  const [, files] = sources[0]
  await t.rejects(lookupKeys(files, { contentId: 'movie-1' }, 4), { status: 400, code: 'KEY_LOOKUP_TOO_BROAD', message: /more than 4 keys match: narrow the lookup/ })
  t.equal((await lookupKeys(files, { contentId: 'movie-1' }, 5)).keys.length, 5, 'at the bound it answers')
})

t.test('bad lookups are 400s', async (t) => {
  const source: AuditSource = { kind: 'files', dir: t.testdir() }
  for (const [filter, message] of [
    [{}, /content_id or kid/],
    [{ tenant: 'acme' }, /content_id or kid/],
    [{ kid: 'not-a-kid' }, /kid must be a UUID/],
    [{ kid: `${K1}0` }, /kid must be a UUID/],
    [{ kid: "' OR 1=1 --" }, /kid must be a UUID/],
    [{ contentId: 'm', limit: 0 }, /limit/],
    [{ contentId: 'm', limit: 1001 }, /limit/],
    [{ contentId: 'm', cursor: 'garbage' }, /cursor/]
  ] as Array<[KeyLookupFilter, RegExp]>) {
    await t.rejects(lookupKeys(source, filter), { status: 400, code: 'BAD_AUDIT_QUERY', message }, JSON.stringify(filter))
  }
})
