// Specification of audit queries: the same filters and paging give the same answers from the files and from PostgreSQL.

import t from 'tap'
import { hmacValue, queryAudit, type AuditFilter, type AuditSource } from '../../src/audit/index.js'
import { HMAC_KEY, KEY_A, KEY_B, openBothSinks, pgSchema, sampleAsk, sampleEvent } from './fixtures/helpers.js'

const kid = (i: number): string => `0000000${i}-AAAA-BBBB-CCCC-DDDDDDDDDDDD`
const RETURNED_ONLY = 'ffffffff-0000-0000-0000-000000000009'
const T0 = Date.parse('2025-03-01T00:00:00.000Z')
const at = (minute: number): string => new Date(T0 + minute * 60_000).toISOString()

/** Ten records, minute i for record i. */
async function seed (
  t: Parameters<Parameters<typeof t.test>[1]>[0]
): Promise<{ sources: Array<[string, AuditSource]> } | undefined> {
  const schema = await pgSchema(t)
  if (schema === undefined) return undefined
  let minute = 0
  const { trail, dir } = await openBothSinks(t, schema, () => new Date(T0 + minute * 60_000))
  for (let i = 0; i < 10; i++) {
    minute = i
    await trail.record(sampleEvent({
      requestId: `r${i}`,
      tenant: i % 2 === 0 ? 'site-1' : 'site-2',
      request: sampleAsk({ contentId: `movie-${i % 3}`, kids: [kid(i)] }),
      outcome: i === 4 ? 'rejected' : i === 7 ? 'upstream_error' : 'ok',
      returnedKeys: [{ kid: i === 9 ? RETURNED_ONLY : kid(i), key: i < 5 ? KEY_A : KEY_B }]
    }))
  }
  return { sources: [['files', { kind: 'files', dir }], ['postgres', trail.source]] }
}

const ids = async (source: AuditSource, filter: AuditFilter): Promise<string[]> =>
  (await queryAudit(source, filter)).records.map((r) => r.request_id)

t.test('filters and paging, from both sources', async (t) => {
  const seeded = await seed(t)
  if (seeded === undefined) return
  for (const [name, source] of seeded.sources) {
    t.test(name, async (t) => {
      t.same(await ids(source, {}), ['r9', 'r8', 'r7', 'r6', 'r5', 'r4', 'r3', 'r2', 'r1', 'r0'], 'newest first')
      t.same(await ids(source, { tenant: 'site-2' }), ['r9', 'r7', 'r5', 'r3', 'r1'], 'tenant')
      t.same(await ids(source, { contentId: 'movie-1' }), ['r7', 'r4', 'r1'], 'content id')
      t.same(await ids(source, { kid: kid(3) }), ['r3'], 'a requested kid, given in upper case')
      t.same(await ids(source, { kid: RETURNED_ONLY.toUpperCase() }), ['r9'], 'a kid that was only returned')
      t.same(await ids(source, { fingerprint: hmacValue(HMAC_KEY, KEY_B) }), ['r9', 'r8', 'r7', 'r6', 'r5'], 'a key fingerprint')
      t.same(await ids(source, { outcome: 'rejected' }), ['r4'], 'outcome')
      t.same(await ids(source, { since: at(3), until: at(6) }), ['r5', 'r4', 'r3'], 'since inclusive, until exclusive')
      t.same(await ids(source, { tenant: 'site-1', outcome: 'ok', since: at(1) }), ['r8', 'r6', 'r2'], 'filters combine')
      t.same(await ids(source, { tenant: 'nobody' }), [], 'no match')

      const seen: string[] = []
      let cursor: string | undefined
      let pages = 0
      do {
        const page = await queryAudit(source, { limit: 3, cursor })
        seen.push(...page.records.map((r) => r.request_id))
        cursor = page.nextCursor
        pages++
      } while (cursor !== undefined && pages < 10)
      t.equal(pages, 4, 'ten records in pages of three')
      t.same(seen, ['r9', 'r8', 'r7', 'r6', 'r5', 'r4', 'r3', 'r2', 'r1', 'r0'], 'pages cover every record once, in order')

      const [record] = (await queryAudit(source, { kid: kid(2) })).records
      t.match(record, { request_id: 'r2', time: at(2), instance_id: 'proxy-a', seq: 3, key_fingerprints: [hmacValue(HMAC_KEY, KEY_A)] })
    })
  }
})

t.test('bad filters are 400s', async (t) => {
  const source: AuditSource = { kind: 'files', dir: t.testdir() }
  for (const [filter, message] of [
    [{ limit: 0 }, /limit/],
    [{ limit: 1001 }, /limit/],
    [{ outcome: 'bogus' }, /outcome/],
    [{ since: 'yesterday' }, /since/],
    [{ until: '2025-13-45' }, /until/],
    [{ cursor: 'garbage' }, /cursor/]
  ] as Array<[AuditFilter, RegExp]>) {
    await t.rejects(queryAudit(source, filter), { status: 400, code: 'BAD_AUDIT_QUERY', message }, JSON.stringify(filter))
  }
})
