// Specification of the PostgreSQL sink against a real server, each test in its own schema: migrations, chains, tampering, hangs.

import t from 'tap'
import { connect, createServer, type Socket } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import pg from 'pg'
import { migrateAuditDatabase, openAuditTrail, queryAudit, verifyAuditDatabase, type AuditSettings } from '../../src/audit/index.js'
import { chainLockKey } from '../../src/audit/pg-sink.js'
import { HMAC_KEY, PG_URL, pgSchema, sampleEvent, silentServer, sql } from './fixtures/helpers.js'

const settings = (schema: string, more: Partial<AuditSettings> = {}): AuditSettings =>
  ({ databaseUrl: PG_URL, databaseSchema: schema, hmacKey: HMAC_KEY, instanceId: 'proxy-a', failOpen: false, writeTimeoutMs: 3000, ...more })

async function filled (schema: string, n: number, instanceId = 'proxy-a'): Promise<void> {
  const trail = await openAuditTrail(settings(schema, { instanceId }))
  for (let i = 0; i < n; i++) await trail.record(sampleEvent({ requestId: `${instanceId}-${i + 1}` }))
  await trail.close()
}

t.test('migrations create the tables once and are idempotent, also when run concurrently', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  const clients = [new pg.Client(PG_URL), new pg.Client(PG_URL), new pg.Client(PG_URL)]
  await Promise.all(clients.map(async (c) => await c.connect()))
  try {
    const applied = await Promise.all(clients.map(async (c) => await migrateAuditDatabase(c, schema)))
    t.same(applied.map((a) => a.length).sort(), [0, 0, 5], 'exactly one runner applied migrations 1 to 5')
    t.same(await migrateAuditDatabase(clients[0], schema), [], 'a later run applies nothing')
  } finally {
    await Promise.all(clients.map(async (c) => await c.end()))
  }
  const tables = await sql<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1', [schema])
  t.same(tables.map((r) => r.table_name), ['audit_checkpoints', 'audit_migrations', 'audit_records'], 'no heads table: nothing to trust or to update')
  t.same(await sql(`SELECT version FROM "${schema}".audit_migrations ORDER BY version`), [{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 5 }])
  await filled(schema, 1)
  await filled(schema, 1)
  t.same(await verifyAuditDatabase(PG_URL, schema), { ok: true, records: 2, chains: 1 }, 'a restarted trail resumes its chain')
})

t.test('a database of the first schema version keeps verifying after the later columns are added, and stores summaries and error codes', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  const old = await openAuditTrail(settings(schema))
  await old.record(sampleEvent({ requestId: 'before' }))
  await old.close()
  // Turn it back into a database of schema version 1, as an older release left it.
  await sql(`DROP TABLE "${schema}".audit_checkpoints; DROP FUNCTION "${schema}".audit_append_only() CASCADE`)
  await sql(`ALTER TABLE "${schema}".audit_records DROP COLUMN refusals, DROP COLUMN checkpoint, DROP COLUMN error_code, DROP COLUMN delivery`)
  await sql(`DELETE FROM "${schema}".audit_migrations WHERE version >= 2`)
  t.same(await verifyAuditDatabase(PG_URL, schema), { ok: true, records: 1, chains: 1 }, 'verify reads a version-1 database')
  const trail = await openAuditTrail(settings(schema))
  await trail.record(sampleEvent({ requestId: 'unauthenticated', tenant: undefined, authenticated: false, outcome: 'rejected', status: 401, errorCode: 'MISSING_TOKEN', returnedKeys: [] }))
  await trail.record(sampleEvent({ requestId: 'unauthenticated-2', tenant: undefined, authenticated: false, outcome: 'rejected', status: 401, errorCode: 'MISSING_TOKEN', returnedKeys: [] }))
  await trail.record(sampleEvent({ requestId: 'timed-out', outcome: 'upstream_error', status: 504, error: 'KMS did not answer', errorCode: 'KMS_TIMEOUT', returnedKeys: [] }))
  await trail.close()
  t.same(await sql(`SELECT version FROM "${schema}".audit_migrations ORDER BY version`), [{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 5 }])
  t.same(await verifyAuditDatabase(PG_URL, schema), { ok: true, records: 3, chains: 1 }, 'the old record, the summary record (after its round trip through jsonb) and the record with an error code verify')
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 })
  t.teardown(async () => await pool.end())
  const records = (await queryAudit({ kind: 'postgres', pool, schema }, { limit: 3 })).records
  const [summary] = records.filter((r) => r.route === 'refusal-summary')
  t.match(records.find((r) => r.request_id === 'timed-out'), { error_code: 'KMS_TIMEOUT' }, 'a failed request keeps its error code')
  t.notOk('error_code' in (records.find((r) => r.request_id === 'before') ?? {}), 'a record written before the column has none')
  t.match(summary, { route: 'refusal-summary', refusals: { total: 2, other: 0, top: [{ route: '/speke/v2/copyProtection', status: 401, reason: 'MISSING_TOKEN', caller_ip: '203.0.113.9', count: 2 }] } })
})

t.test('two instances writing concurrently each keep a chain that verifies', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  const a = await openAuditTrail(settings(schema, { instanceId: 'proxy-a' }))
  const b = await openAuditTrail(settings(schema, { instanceId: 'proxy-b' }))
  await Promise.all(Array.from({ length: 20 }, async (_, i) => {
    await Promise.all([a.record(sampleEvent({ requestId: `a-${i}` })), b.record(sampleEvent({ requestId: `b-${i}` }))])
  }))
  await Promise.all([a.close(), b.close()])
  const seqs = await sql<{ instance_id: string, n: string, max: string }>(
    `SELECT instance_id, count(*) AS n, max(seq) AS max FROM "${schema}".audit_records GROUP BY 1 ORDER BY 1`)
  t.same(seqs, [{ instance_id: 'proxy-a', n: '20', max: '20' }, { instance_id: 'proxy-b', n: '20', max: '20' }])
  t.same(await verifyAuditDatabase(PG_URL, schema), { ok: true, records: 40, chains: 2 })
})

t.test('verify names an edited row', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  await filled(schema, 5)
  const [row] = await sql<{ id: string }>(`SET session_replication_role = replica; UPDATE "${schema}".audit_records SET outcome = 'rejected' WHERE seq = 3 RETURNING id`)
  const r = await verifyAuditDatabase(PG_URL, schema)
  t.equal(r.ok, false)
  t.equal(r.records, 2)
  t.equal(r.firstProblem, `row id=${row.id} (instance_id="proxy-a", seq=3): chain "proxy-a" seq 3: hash does not match the record's contents (record altered)`)
})

t.test('verify finds a deleted row and swapped rows (done as a superuser bypassing the append-only trigger)', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  await filled(schema, 5, 'gone')
  await filled(schema, 5, 'swapped')
  await filled(schema, 5, 'truncated')
  const ok = await verifyAuditDatabase(PG_URL, schema)
  t.same(ok, { ok: true, records: 15, chains: 3 })

  await sql(`SET session_replication_role = replica; DELETE FROM "${schema}".audit_records WHERE instance_id = 'gone' AND seq = 2`)
  t.match((await verifyAuditDatabase(PG_URL, schema)).firstProblem, /instance_id="gone", seq=3\): .*seq 3 where seq 2 was expected \(record removed/)
  await sql(`DROP SCHEMA "${schema}" CASCADE`)

  await filled(schema, 5, 'swapped')
  await sql(`SET session_replication_role = replica; UPDATE "${schema}".audit_records SET seq = 1000 WHERE instance_id = 'swapped' AND seq = 2;
    UPDATE "${schema}".audit_records SET seq = 2 WHERE instance_id = 'swapped' AND seq = 3; UPDATE "${schema}".audit_records SET seq = 3 WHERE instance_id = 'swapped' AND seq = 1000`)
  t.match((await verifyAuditDatabase(PG_URL, schema)).firstProblem, /instance_id="swapped", seq=2\): .*altered/)
  // A cut tail is found by the signed checkpoints: test/security/audit-forgery.test.ts.
})

t.test('an unreachable server (127.0.0.1:1) makes record() reject with 503 within writeTimeoutMs', async (t) => {
  const trail = await openAuditTrail(settings('public', { databaseUrl: 'postgres://postgres@127.0.0.1:1/test', writeTimeoutMs: 1000 }))
  const started = Date.now()
  await t.rejects(trail.record(sampleEvent()), { status: 503, code: 'AUDIT_UNAVAILABLE', message: /audit trail unavailable: postgres: .*ECONNREFUSED/ })
  t.ok(Date.now() - started < 1000, `rejected after ${Date.now() - started} ms`)
  t.equal(trail.healthy(), false)
  await trail.close()
})

t.test('a server that accepts and never answers cannot hold a request past writeTimeoutMs', async (t) => {
  const { port, connections } = await silentServer(t)
  const openedAt = Date.now()
  const trail = await openAuditTrail(settings('public', { databaseUrl: `postgres://postgres@127.0.0.1:${port}/test`, writeTimeoutMs: 600 }))
  t.ok(Date.now() - openedAt < 600 + 400, 'opening does not hang either')
  await delay(700) // let the startup attempt give up, so the write below meets a fresh hang
  const started = Date.now()
  await t.rejects(trail.record(sampleEvent()), { status: 503, code: 'AUDIT_UNAVAILABLE' })
  const elapsed = Date.now() - started
  t.ok(elapsed >= 550 && elapsed < 600 + 300, `rejected after ${elapsed} ms`)
  t.ok(connections() > 0, 'the sink really was talking to the silent server')
  await trail.close()
})

t.test('a server that goes silent mid-session: 503 within writeTimeoutMs, then the sink recovers', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  const { port: pgPort, hostname } = new URL(PG_URL)
  let frozen = false
  const pairs = new Set<Socket>()
  const proxy = createServer((client) => {
    const upstream = connect(Number(pgPort === '' ? 5432 : pgPort), hostname)
    pairs.add(client); pairs.add(upstream)
    client.on('data', (d) => { if (!frozen) upstream.write(d) })
    upstream.on('data', (d) => { if (!frozen) client.write(d) })
    const end = (): void => { client.destroy(); upstream.destroy() }
    client.on('close', end); upstream.on('close', end); client.on('error', end); upstream.on('error', end)
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of pairs) s.destroy()
    await new Promise<void>((resolve) => proxy.close(() => resolve()))
  })
  const url = new URL(PG_URL)
  url.port = String((proxy.address() as { port: number }).port)
  url.hostname = '127.0.0.1'
  const trail = await openAuditTrail(settings(schema, { databaseUrl: url.toString(), writeTimeoutMs: 700 }))
  await trail.record(sampleEvent({ requestId: 'before' }))
  frozen = true
  const started = Date.now()
  await t.rejects(trail.record(sampleEvent({ requestId: 'silent' })), { status: 503, message: /postgres: .*(within 700 ms|timeout)/ })
  const elapsed = Date.now() - started
  t.ok(elapsed >= 650 && elapsed < 700 + 300, `rejected after ${elapsed} ms`)
  frozen = false
  await trail.record(sampleEvent({ requestId: 'recovered' }))
  t.ok(trail.healthy())
  await trail.close()
  const rows = await sql<{ request_id: string }>(`SELECT request_id FROM "${schema}".audit_records ORDER BY seq`)
  t.same(rows.map((r) => r.request_id), ['before', 'recovered'])
  t.same(await verifyAuditDatabase(PG_URL, schema), { ok: true, records: 2, chains: 1 })
})

t.test('a chain lock held elsewhere: 503 within writeTimeoutMs, and the answered-503 record is never committed', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  await filled(schema, 1)
  const blocker = new pg.Client(PG_URL)
  await blocker.connect()
  await blocker.query('BEGIN')
  await blocker.query('SELECT pg_advisory_xact_lock($1::bigint)', [chainLockKey(schema, 'proxy-a')])
  const trail = await openAuditTrail(settings(schema, { writeTimeoutMs: 500 }))
  const started = Date.now()
  await t.rejects(trail.record(sampleEvent({ requestId: 'blocked' })), { status: 503 })
  t.ok(Date.now() - started < 500 + 300, `rejected after ${Date.now() - started} ms`)
  await blocker.query('ROLLBACK')
  await blocker.end()
  await trail.record(sampleEvent({ requestId: 'after' }))
  await trail.close()
  const rows = await sql<{ request_id: string, seq: string }>(`SELECT request_id, seq FROM "${schema}".audit_records ORDER BY seq`)
  t.same(rows.map((r) => r.request_id), ['proxy-a-1', 'after'])
  t.same(await verifyAuditDatabase(PG_URL, schema), { ok: true, records: 2, chains: 1 })
})

t.test('verify of an unreachable database fails rather than passing', async (t) => {
  const r = await verifyAuditDatabase('postgres://postgres@127.0.0.1:1/test', 'public')
  t.equal(r.ok, false)
  t.match(r.firstProblem, /cannot read audit database/)
})
