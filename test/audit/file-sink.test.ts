// Specification of the file sink: fsynced JSON lines, group commit, rotation that continues the chain, resume, and fail-closed.

import t from 'tap'
import { appendFileSync, readdirSync, readFileSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { openAuditTrail, verifyAuditFiles, type AuditSettings, type AuditRecord } from '../../src/audit/index.js'
import { isProxyError } from '../../src/errors.js'
import { auditLines, HMAC_KEY, sampleEvent, unwritableDir } from './fixtures/helpers.js'

const settings = (dir: string, more: Partial<AuditSettings> = {}): AuditSettings =>
  ({ dir, hmacKey: HMAC_KEY, instanceId: 'proxy-a', failOpen: false, writeTimeoutMs: 2000, ...more })

const parse = (lines: string[]): AuditRecord[] => lines.map((l) => JSON.parse(l) as AuditRecord)

/** Wraps FileHandle#sync for the duration of a test: `onSync` runs before each real fsync, `after` once it returns. */
async function watchFsync (
  t: Parameters<Parameters<typeof t.test>[1]>[0], hooks: { before?: () => void, after?: () => void, delayMs?: number }
): Promise<void> {
  const probe = await open(join(t.testdir(), 'probe'), 'w')
  const proto = Object.getPrototypeOf(probe) as { sync: (this: FileHandle) => Promise<void> }
  await probe.close()
  const original = proto.sync
  proto.sync = async function (this: FileHandle) {
    hooks.before?.()
    if (hooks.delayMs !== undefined) await delay(hooks.delayMs)
    await original.call(this)
    hooks.after?.()
  }
  t.teardown(() => { proto.sync = original })
}

t.test('each record is one JSON line that was fsynced before record() resolved', async (t) => {
  const dir = join(t.testdir(), 'audit')
  const durable: string[] = []
  let pending = ''
  await watchFsync(t, {
    before: () => { pending = auditLines(dir).join('\n') },
    after: () => { durable.push(pending) }
  })
  const trail = await openAuditTrail(settings(dir))
  const event = sampleEvent({ requestId: 'req-durable' })
  await trail.record(event)
  t.ok(durable.some((content) => content.includes('"request_id":"req-durable"')), 'an fsync covering the line completed before record() resolved')
  const lines = auditLines(dir)
  t.equal(lines.length, 1)
  const r = JSON.parse(lines[0]) as AuditRecord
  t.equal(r.request_id, 'req-durable')
  t.equal(r.seq, 1)
  t.equal(r.instance_id, 'proxy-a')
  t.match(readdirSync(dir), [/^audit-proxy-a-\d{8}-000001\.jsonl$/])
  t.ok(trail.healthy())
  await trail.close()
})

t.test('concurrent records are group-committed: all present, in one chain, with few fsyncs', async (t) => {
  const dir = join(t.testdir(), 'audit')
  let syncs = 0
  await watchFsync(t, { delayMs: 25, after: () => { syncs++ } })
  const trail = await openAuditTrail(settings(dir))
  syncs = 0
  const ids = Array.from({ length: 25 }, (_, i) => `req-${i}`)
  await Promise.all(ids.map(async (requestId) => await trail.record(sampleEvent({ requestId }))))
  const records = parse(auditLines(dir))
  t.same(records.map((r) => r.request_id).sort(), [...ids].sort(), 'every record is in the file')
  t.same(records.map((r) => r.seq), Array.from({ length: 25 }, (_, i) => i + 1), 'seq 1..25 in file order')
  t.ok(syncs <= 4, `25 records needed only ${syncs} fsyncs`)
  t.same(await verifyAuditFiles(dir), { ok: true, records: 25, chains: 1 })
  await trail.close()
})

t.test('rotation by size starts a new file and the chain continues across files', async (t) => {
  const dir = join(t.testdir(), 'audit')
  const trail = await openAuditTrail(settings(dir, { rotateBytes: 2500 }))
  for (let i = 0; i < 12; i++) await trail.record(sampleEvent())
  await trail.close()
  const files = readdirSync(dir).sort()
  t.ok(files.length >= 3, `12 records of ~1 KiB in ${files.length} files`)
  for (const f of files) t.ok(readFileSync(join(dir, f)).length <= 2500 + 1500, `${f} stays near the rotation size`)
  for (let i = 1; i < files.length; i++) {
    const prev = parse(readFileSync(join(dir, files[i - 1]), 'utf8').trim().split('\n'))
    const next = parse(readFileSync(join(dir, files[i]), 'utf8').trim().split('\n'))
    t.equal(next[0].prev_hash, prev[prev.length - 1].hash, `${files[i]} starts where ${files[i - 1]} ended`)
  }
  t.same(await verifyAuditFiles(dir), { ok: true, records: 12, chains: 1 })
})

t.test('a new file starts at the UTC day change', async (t) => {
  const dir = join(t.testdir(), 'audit')
  let now = new Date('2025-03-01T23:59:59.000Z')
  const trail = await openAuditTrail(settings(dir, { clock: () => now }))
  await trail.record(sampleEvent())
  now = new Date('2025-03-02T00:00:01.000Z')
  await trail.record(sampleEvent())
  await trail.close()
  t.same(readdirSync(dir).sort(), ['audit-proxy-a-20250301-000001.jsonl', 'audit-proxy-a-20250302-000001.jsonl'])
  t.same(await verifyAuditFiles(dir), { ok: true, records: 2, chains: 1 })
})

t.test('reopening resumes the chain, dropping a torn (never acknowledged) last line', async (t) => {
  const dir = join(t.testdir(), 'audit')
  const first = await openAuditTrail(settings(dir))
  await first.record(sampleEvent())
  await first.record(sampleEvent())
  await first.close()
  const [file] = readdirSync(dir)
  appendFileSync(join(dir, file), '{"id":"torn-wri')
  const second = await openAuditTrail(settings(dir))
  await second.record(sampleEvent({ requestId: 'after-restart' }))
  await second.close()
  const records = parse(auditLines(dir))
  t.same(records.map((r) => r.seq), [1, 2, 3])
  t.equal(records[2].request_id, 'after-restart')
  t.equal(records[2].prev_hash, records[1].hash)
  t.notMatch(readFileSync(join(dir, file), 'utf8'), /torn-wri/)
  t.same(await verifyAuditFiles(dir), { ok: true, records: 3, chains: 1 })
})

t.test('two instances sharing a directory keep separate files and chains', async (t) => {
  const dir = join(t.testdir(), 'audit')
  const a = await openAuditTrail(settings(dir, { instanceId: 'proxy-a' }))
  const b = await openAuditTrail(settings(dir, { instanceId: 'proxy/b weird id' }))
  await Promise.all([a.record(sampleEvent()), b.record(sampleEvent()), a.record(sampleEvent()), b.record(sampleEvent())])
  await Promise.all([a.close(), b.close()])
  t.equal(readdirSync(dir).length, 2)
  t.same(await verifyAuditFiles(dir), { ok: true, records: 4, chains: 2 })
})

t.test('read-only directory: record() rejects with 503 unless failOpen', async (t) => {
  const parent = t.testdir()
  const ro = unwritableDir(t, parent)
  t.comment(`unwritable via ${ro.how}`)
  const closed = await openAuditTrail(settings(ro.dir))
  const err = await closed.record(sampleEvent()).then(() => undefined, (e: unknown) => e)
  t.ok(isProxyError(err), 'a ProxyError')
  t.match(err, { status: 503, code: 'AUDIT_UNAVAILABLE', message: /^audit trail unavailable: file:/ })
  t.equal(closed.healthy(), false, 'unhealthy after every sink failed')
  await closed.close()

  const warnings: string[] = []
  const open = await openAuditTrail(settings(ro.dir, { failOpen: true }), { warn: (_o, msg) => warnings.push(msg), error: () => {} })
  t.match(warnings, [/AUDIT_FAIL_OPEN=true/], 'fail-open is announced at startup')
  await t.resolves(open.record(sampleEvent()), 'fail-open lets the request through')
  t.equal(open.healthy(), false)
  await open.close()
  ro.restore()
})

t.test('a sink that recovers makes the trail healthy again', async (t) => {
  const parent = t.testdir()
  const ro = unwritableDir(t, parent)
  if (ro.how.startsWith('a path under')) { t.pass('cannot make a directory writable again here'); return }
  const trail = await openAuditTrail(settings(ro.dir))
  await t.rejects(trail.record(sampleEvent()), { status: 503 })
  ro.restore()
  await trail.record(sampleEvent({ requestId: 'recovered' }))
  t.ok(trail.healthy())
  t.same(parse(auditLines(ro.dir)).map((r) => [r.seq, r.request_id]), [[1, 'recovered']], 'the rejected record was never written')
  await trail.close()
})
