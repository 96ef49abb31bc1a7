// Specification of the trail over both sinks: one confirmation is enough, none is a 503 (unless fail-open), bad settings refuse to start.

import t from 'tap'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { openAuditTrail, verifyAuditDatabase, verifyAuditFiles, type AuditSettings, type AuditRecord } from '../../src/audit/index.js'
import { auditLines, HMAC_KEY, PG_URL, pgSchema, sampleEvent, silentServer, sql, unwritableDir } from './fixtures/helpers.js'

const base = (more: Partial<AuditSettings>): AuditSettings =>
  ({ hmacKey: HMAC_KEY, instanceId: 'proxy-a', failOpen: false, writeTimeoutMs: 2000, ...more })

function recordingLog (): { errors: Array<{ obj: object, msg: string }>, warn: () => void, error: (obj: object, msg: string) => void } {
  const errors: Array<{ obj: object, msg: string }> = []
  return { errors, warn: () => {}, error: (obj, msg) => { errors.push({ obj, msg }) } }
}

t.test('with both sinks on, each record lands in both and both chains verify', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  const dir = join(t.testdir(), 'audit')
  const trail = await openAuditTrail(base({ dir, databaseUrl: PG_URL, databaseSchema: schema }))
  t.equal(trail.source.kind, 'postgres', 'queries are served from PostgreSQL when it is configured')
  for (let i = 0; i < 3; i++) await trail.record(sampleEvent({ requestId: `both-${i}` }))
  await trail.close()
  const fileIds = auditLines(dir).map((l) => (JSON.parse(l) as AuditRecord).id)
  const rowIds = (await sql<{ id: string }>(`SELECT id FROM "${schema}".audit_records ORDER BY seq`)).map((r) => r.id)
  t.same(rowIds, fileIds, 'the same record ids, in the same order')
  t.same(await verifyAuditFiles(dir), { ok: true, records: 3, chains: 1 })
  t.same(await verifyAuditDatabase(PG_URL, schema), { ok: true, records: 3, chains: 1 })
})

t.test('one confirming sink is enough: PostgreSQL down, files up', async (t) => {
  const dir = join(t.testdir(), 'audit')
  const log = recordingLog()
  const trail = await openAuditTrail(base({ dir, databaseUrl: 'postgres://postgres@127.0.0.1:1/test' }), log)
  await trail.record(sampleEvent({ requestId: 'file-only' }))
  t.ok(trail.healthy())
  t.equal(auditLines(dir).length, 1)
  await trail.close()
  t.ok(log.errors.some((e) => e.msg === 'audit sink failed to record' && JSON.stringify(e.obj).includes('postgres')), 'the failing sink is logged')
})

t.test('one confirming sink is enough: files read-only, PostgreSQL up', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  const ro = unwritableDir(t, t.testdir())
  const trail = await openAuditTrail(base({ dir: ro.dir, databaseUrl: PG_URL, databaseSchema: schema }))
  await trail.record(sampleEvent({ requestId: 'db-only' }))
  t.ok(trail.healthy())
  await trail.close()
  t.same(await sql(`SELECT request_id FROM "${schema}".audit_records`), [{ request_id: 'db-only' }])
  ro.restore()
})

t.test('a hanging sink delays a record by at most writeTimeoutMs, and the other sink carries it', async (t) => {
  const { port } = await silentServer(t)
  const dir = join(t.testdir(), 'audit')
  const log = recordingLog()
  const trail = await openAuditTrail(base({ dir, databaseUrl: `postgres://postgres@127.0.0.1:${port}/test`, writeTimeoutMs: 600 }), log)
  await delay(700) // let the startup attempt give up, so the write below meets a fresh hang
  const started = Date.now()
  await trail.record(sampleEvent({ requestId: 'carried' }))
  const elapsed = Date.now() - started
  t.ok(elapsed >= 550 && elapsed < 600 + 300, `resolved after ${elapsed} ms: it waited for the database, but no longer than writeTimeoutMs`)
  t.ok(trail.healthy())
  t.match(auditLines(dir), [/"request_id":"carried"/])
  t.ok(log.errors.some((e) => e.msg === 'audit sink failed to record' && JSON.stringify(e.obj).includes('postgres')), 'the silent sink is logged')
  await trail.close()
})

t.test('no sink confirms: 503 naming every sink, or a logged pass-through when fail-open', async (t) => {
  const ro = unwritableDir(t, t.testdir())
  const closed = await openAuditTrail(base({ dir: ro.dir, databaseUrl: 'postgres://postgres@127.0.0.1:1/test' }))
  await t.rejects(closed.record(sampleEvent()), { status: 503, code: 'AUDIT_UNAVAILABLE', message: /^audit trail unavailable: .*file:.*postgres:|^audit trail unavailable: .*postgres:.*file:/ })
  t.equal(closed.healthy(), false)
  await closed.close()
  const log = recordingLog()
  const open = await openAuditTrail(base({ dir: ro.dir, databaseUrl: 'postgres://postgres@127.0.0.1:1/test', failOpen: true }), log)
  await open.record(sampleEvent())
  t.equal(open.healthy(), false)
  t.ok(log.errors.some((e) => /no audit sink recorded the request/.test(e.msg)), 'the unaudited request is logged')
  await open.close()
  ro.restore()
})

t.test('settings that cannot work refuse to start', async (t) => {
  const dir = t.testdir()
  await t.rejects(openAuditTrail(base({ dir, hmacKey: Buffer.alloc(16) })), /AUDIT_HMAC_KEY/)
  await t.rejects(openAuditTrail(base({})), /AUDIT_DIR.*AUDIT_DATABASE_URL/)
  await t.rejects(openAuditTrail(base({ dir, writeTimeoutMs: 0 })), /timeout/)
  await t.rejects(openAuditTrail(base({ databaseUrl: PG_URL, databaseSchema: 'x; drop table y' })), /plain SQL identifier/)
})

t.test('a closed trail refuses to record', async (t) => {
  const trail = await openAuditTrail(base({ dir: t.testdir() }))
  await trail.close()
  await t.rejects(trail.record(sampleEvent()), { status: 503 })
})

t.test('refusals without a valid credential become one summary record per window; authenticated requests keep their own', async (t) => {
  const dir = join(t.testdir(), 'audit')
  let now = new Date('2030-01-01T10:00:05Z')
  const trail = await openAuditTrail(base({ dir, clock: () => now }))
  const refused = (ip: string, code = 'MISSING_TOKEN'): ReturnType<typeof sampleEvent> =>
    sampleEvent({ tenant: undefined, authenticated: false, outcome: 'rejected', status: 401, errorCode: code, error: 'Missing enc-token', callerIp: ip, returnedKeys: [] })
  for (let i = 0; i < 100; i++) await trail.record(refused('198.51.100.1'))
  for (let i = 0; i < 5; i++) await trail.record(refused('198.51.100.2', 'BAD_TOKEN'))
  await trail.record(sampleEvent({ requestId: 'authenticated', authenticated: true }))
  await trail.record(sampleEvent({ requestId: 'authenticated-refusal', authenticated: true, outcome: 'rejected', status: 400, returnedKeys: [] }))
  t.equal(auditLines(dir).length, 2, 'only the two authenticated requests are written while the window is open')
  now = new Date('2030-01-01T10:01:10Z')
  await trail.record(refused('198.51.100.3'))
  await delay(100)
  const lines = auditLines(dir).map((l) => JSON.parse(l) as AuditRecord)
  t.equal(lines.length, 3, 'the first refusal of the next minute wrote the summary of the one before')
  t.match(lines[2], {
    route: 'refusal-summary',
    request_id: 'refusals-2030-01-01T10:00:00.000Z',
    tenant: null,
    refusals: {
      window_start: '2030-01-01T10:00:00.000Z',
      window_end: '2030-01-01T10:01:00.000Z',
      total: 105,
      other: 0,
      top: [
        { route: '/speke/v2/copyProtection', status: 401, reason: 'MISSING_TOKEN', caller_ip: '198.51.100.1', count: 100 },
        { route: '/speke/v2/copyProtection', status: 401, reason: 'BAD_TOKEN', caller_ip: '198.51.100.2', count: 5 }
      ]
    }
  })
  await trail.close()
  const all = auditLines(dir).map((l) => JSON.parse(l) as AuditRecord)
  t.equal(all.length, 4, 'close wrote the summary of the open window')
  t.match(all[3].refusals, { total: 1, top: [{ caller_ip: '198.51.100.3', count: 1 }] })
  t.same(await verifyAuditFiles(dir), { ok: true, records: 4, chains: 1 }, 'summaries are part of the verified chain')
})

t.test('a summary stays bounded however many client addresses and reasons an attacker uses', async (t) => {
  const dir = join(t.testdir(), 'audit')
  const now = new Date('2030-01-01T10:00:05Z')
  const trail = await openAuditTrail(base({ dir, clock: () => now }))
  for (let i = 0; i < 3000; i++) {
    await trail.record(sampleEvent({ tenant: undefined, authenticated: false, outcome: 'rejected', status: 415, error: `Content-Type ${'x'.repeat(8000)}${i}`, callerIp: `10.0.${i >> 8}.${i & 255}`, userAgent: 'u'.repeat(3000), returnedKeys: [] }))
  }
  await trail.close()
  const lines = auditLines(dir)
  t.equal(lines.length, 1, 'one record')
  const summary = JSON.parse(lines[0]) as AuditRecord
  t.equal(summary.refusals?.total, 3000)
  t.equal(summary.refusals?.top.length, 50, 'the top 50 keys are itemised')
  t.equal(summary.refusals?.other, 2950, 'the rest are counted under other')
  t.ok(lines[0].length < 20_000, `the record is ${lines[0].length} bytes`)
  t.notOk(lines[0].includes('u'.repeat(201)) || lines[0].includes('x'.repeat(201)), 'no reflected value longer than 200 characters')
})

t.test('a refusal without a valid credential waits for the summary, which close writes', async (t) => {
  const dir = join(t.testdir(), 'audit')
  const trail = await openAuditTrail(base({ dir }))
  await trail.record(sampleEvent({ tenant: undefined, authenticated: false, outcome: 'rejected', status: 401, returnedKeys: [] }))
  t.equal(auditLines(dir).length, 0)
  await trail.flushSummary()
  t.equal(auditLines(dir).length, 1)
  await trail.close()
  t.equal(auditLines(dir).length, 1, 'nothing left to write at close')
})

t.test('readiness fails with a reason while the audit volume is below the free-space floor', async (t) => {
  const dir = join(t.testdir(), 'audit')
  const low = await openAuditTrail(base({ dir, minFreeBytes: Number.MAX_SAFE_INTEGER }))
  t.equal(low.healthy(), false)
  t.match(low.problem(), /audit volume of .* has \d+ MB free, below the floor of \d+ MB \(AUDIT_MIN_FREE_MB\)/)
  await low.close()
  const fine = await openAuditTrail(base({ dir, minFreeBytes: 1 }))
  t.equal(fine.healthy(), true)
  t.equal(fine.problem(), undefined)
  await fine.close()
})
