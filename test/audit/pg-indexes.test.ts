// The admin reads use an index on a table of 20,000 rows: EXPLAIN of the exact SQL the key lookup, activity and state run.

import t from 'tap'
import pg from 'pg'
import { migrateAuditDatabase } from '../../src/audit/index.js'
import { auditActivity } from '../../src/audit/activity.js'
import { lookupKeys } from '../../src/audit/key-lookup.js'
import { createStateReader } from '../../src/audit/state.js'
import { PG_URL, pgSchema, sql } from './fixtures/helpers.js'

const ROWS = 20_000
/** The kid of synthetic row i (a UUID made of md5('k' || i)). */
const kidOf = (i: number | string): string => `md5('k' || ${i})::uuid::text`

interface Plan { 'Node Type': string, 'Relation Name'?: string, 'Index Name'?: string, Plans?: Plan[] }

function nodes (plan: Plan): Plan[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)]
}

/** A pool that records the statements it is given and answers none (so the code under test builds its SQL as it would). */
function spyPool (): { pool: pg.Pool, statements: Array<{ text: string, params: unknown[] }> } {
  const statements: Array<{ text: string, params: unknown[] }> = []
  const pool = { query: async (text: string, params: unknown[] = []) => { statements.push({ text, params }); return { rows: [] } } }
  return { pool: pool as unknown as pg.Pool, statements }
}

t.test('key lookup, activity and the newest record read audit_records by index, never a sequential scan', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  t.teardown(async () => await client.end())
  await migrateAuditDatabase(client, schema)
  const s = `"${schema}"`
  // Two minutes apart over ~28 days, 2,000 titles, one kid per record, a third pass-through tenants.
  await sql(`INSERT INTO ${s}.audit_records (instance_id, seq, id, "time", request_id, route, tenant, content_id, requested_kids, drm_systems,
      track_types, key_periods, outcome, status, returned_kids, key_fingerprints, prev_hash, hash)
    SELECT 'synthetic', i, gen_random_uuid(), timestamptz '2025-01-01' + i * interval '2 minutes', 'r' || i, 'speke',
      CASE WHEN i % 3 = 0 THEN 'site:S' || (i % 7) ELSE 'tenant-' || (i % 5) END, 'movie-' || (i % 2000), ARRAY[${kidOf('i')}],
      ARRAY['edef8ba9-79d6-4ace-a3c8-27dcd51d21ed'], ARRAY['SD'], ARRAY[]::text[], 'ok', 200, ARRAY[${kidOf('i')}], ARRAY[]::text[],
      repeat('0', 64), md5('a' || i) || md5('b' || i)
    FROM generate_series(1, ${ROWS}) AS i`)
  await sql(`ANALYZE ${s}.audit_records`)
  t.same(await sql(`SELECT count(*)::int AS n FROM ${s}.audit_records`), [{ n: ROWS }])
  const [{ kid }] = await sql<{ kid: string }>(`SELECT ${kidOf(1234)} AS kid`)

  const spy = spyPool()
  const source = { kind: 'postgres' as const, pool: spy.pool, schema }
  await lookupKeys(source, { contentId: 'movie-42' })
  await lookupKeys(source, { kid })
  await lookupKeys(source, { contentId: 'movie-42', tenant: 'tenant-2' })
  await auditActivity(source, 60, new Date('2025-01-15T12:00:00Z'))
  await createStateReader(source, { cacheMs: 0 })().catch(() => {})
  const names = ['lookup by content id', 'lookup by kid', 'lookup by content id and tenant', 'activity per tenant', 'activity refusals', 'newest record']
  t.ok(spy.statements.length >= names.length, `${spy.statements.length} statements captured`)

  for (const [i, name] of names.entries()) {
    const { text, params } = spy.statements[i]
    t.match(text, /audit_records/, `${name} reads audit_records`)
    const { rows } = await client.query<{ 'QUERY PLAN': Array<{ Plan: Plan }> }>(`EXPLAIN (FORMAT JSON) ${text}`, params)
    const all = nodes(rows[0]['QUERY PLAN'][0].Plan)
    const onRecords = all.filter((n) => n['Relation Name'] === 'audit_records')
    const indexes = all.map((n) => n['Index Name'] ?? '').filter((i) => i.startsWith('audit_records_'))
    t.ok(onRecords.length > 0, `${name}: the plan reads audit_records`)
    t.same(onRecords.filter((n) => n['Node Type'] === 'Seq Scan').map((n) => n['Node Type']), [], `${name}: no sequential scan`)
    // An Index (Only) Scan, or a Bitmap Heap Scan fed by Bitmap Index Scans.
    t.ok(onRecords.every((n) => /Index|Bitmap Heap/.test(n['Node Type'])) && indexes.length > 0,
      `${name}: by index (${onRecords.map((n) => n['Node Type']).join(', ')} using ${indexes.join(', ')})`)
  }
  const kidPlan = await client.query<{ 'QUERY PLAN': Array<{ Plan: Plan }> }>(`EXPLAIN (FORMAT JSON) ${spy.statements[1].text}`, spy.statements[1].params)
  const used = nodes(kidPlan.rows[0]['QUERY PLAN'][0].Plan).map((n) => n['Index Name']).filter(Boolean)
  t.ok(used.includes('audit_records_requested_kids_idx') && used.includes('audit_records_returned_kids_idx'), `a kid is found through both GIN indexes (${used.join(', ')})`)

  const options = await sql<{ relname: string, reloptions: string[] | null }>(
    `SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname IN ('audit_records_requested_kids_idx', 'audit_records_returned_kids_idx', 'audit_records_fingerprints_idx') ORDER BY 1`, [schema])
  t.same(options.map((o) => [o.relname, o.reloptions]), [
    ['audit_records_fingerprints_idx', ['fastupdate=off']], ['audit_records_requested_kids_idx', ['fastupdate=off']], ['audit_records_returned_kids_idx', ['fastupdate=off']]
  ], 'the GIN indexes keep no pending list (migration 5)')

  // And the real lookup over the real pool answers from those rows.
  const pool = new pg.Pool({ connectionString: PG_URL, max: 2 })
  t.teardown(async () => await pool.end())
  const found = await lookupKeys({ kind: 'postgres', pool, schema }, { kid })
  t.match(found.keys, [{ kid, content_id: 'movie-1234', tenant: 'tenant-4', tenant_kind: 'managed', times_issued: 1 }])
  t.equal((await lookupKeys({ kind: 'postgres', pool, schema }, { contentId: 'movie-42' })).keys.length, 10, 'ten records of movie-42, one kid each')
})
