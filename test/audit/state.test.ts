// Specification of the audit state: newest record and checkpoint, a verification cached for a minute, an alteration found.

import t from 'tap'
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { generateKeyPairSync } from 'node:crypto'
import { join } from 'node:path'
import { keyIdOf, openAuditTrail, type AuditSource, type AuditTrail } from '../../src/audit/index.js'
import { createStateReader } from '../../src/audit/state.js'
import { HMAC_KEY, PG_URL, pgSchema, sampleEvent, sql } from './fixtures/helpers.js'

const keys = generateKeyPairSync('ed25519')
const signer = { privateKey: keys.privateKey, keyId: keyIdOf(keys.publicKey) }
const T0 = Date.parse('2025-03-01T10:00:00.000Z')

/** A trail signing every third record; the file sink takes its times from `tick` (PostgreSQL signs at the real time, so it keeps it). */
async function trailWith (
  t: Parameters<Parameters<typeof t.test>[1]>[0], store: { dir?: string, databaseUrl?: string, databaseSchema?: string }
): Promise<{ trail: AuditTrail, tick: () => void }> {
  let now = T0
  const trail = await openAuditTrail({
    ...store,
    hmacKey: HMAC_KEY,
    instanceId: 'proxy-a',
    failOpen: false,
    writeTimeoutMs: 3000,
    ...(store.dir === undefined ? {} : { clock: () => new Date(now) }),
    checkpoints: { signer, everyRecords: 3, intervalMs: 3_600_000 }
  })
  t.teardown(trail.close)
  return { trail, tick: () => { now += 1000 } }
}

t.test('files: newest record, newest checkpoint, verification cached, then an alteration found', async (t) => {
  const dir = join(t.testdir(), 'audit')
  const { trail, tick } = await trailWith(t, { dir })
  for (let i = 0; i < 4; i++) { tick(); await trail.record(sampleEvent({ requestId: `r${i}` })) }
  let clock = Date.parse('2025-03-01T12:00:00.000Z')
  const read = createStateReader(trail.source, { publicKey: keys.publicKey, now: () => new Date(clock) })
  const state = await read()
  t.match(state, {
    sink: 'files',
    records: 5,
    last_record: { time: new Date(T0 + 4000).toISOString(), seq: 5, instance_id: 'proxy-a' },
    last_checkpoint: { kind: 'checkpoint', store: 'file', instance_id: 'proxy-a', seq: 3, record_seq: 4, key_id: keyIdOf(keys.publicKey), time: new Date(T0 + 3000).toISOString() },
    verification: { ok: true, checked_records: 5, at: '2025-03-01T12:00:00.000Z', signatures_checked: true }
  }, 'four requests and the checkpoint after the third')
  t.notOk('error' in state.verification)

  // Alter a record: within the minute the cached verification stands, after it the alteration is found.
  const [file] = readdirSync(dir).filter((f) => f.endsWith('.jsonl'))
  writeFileSync(join(dir, file), readFileSync(join(dir, file), 'utf8').replace('"request_id":"r1"', '"request_id":"rX"'))
  clock += 59_000
  t.match((await read()).verification, { ok: true, at: '2025-03-01T12:00:00.000Z' }, 'cached for a minute')
  clock += 1000
  const after = await read()
  t.match(after.verification, { ok: false, at: '2025-03-01T12:01:00.000Z', error: /line 2: chain "proxy-a" seq 2: hash does not match/ }, 'verified again after a minute')
  t.notOk('records' in after, 'no record count from a verification that stopped early')
})

t.test('files: a write in flight at the end of the newest file is not a torn line', async (t) => {
  const dir = join(t.testdir(), 'audit')
  const { trail, tick } = await trailWith(t, { dir })
  tick()
  await trail.record(sampleEvent())
  const [file] = readdirSync(dir).filter((f) => f.endsWith('.jsonl'))
  appendFileSync(join(dir, file), '{"id":"half a rec')
  const state = await createStateReader(trail.source, { cacheMs: 0 })()
  t.match(state.verification, { ok: true, checked_records: 1, signatures_checked: false })
})

t.test('files: an empty store', async (t) => {
  const source: AuditSource = { kind: 'files', dir: join(t.testdir(), 'not-yet') }
  t.match(await createStateReader(source)(), { sink: 'files', last_record: null, last_checkpoint: null, verification: { ok: false, error: /cannot read audit directory/ } })
})

t.test('postgres: newest record, newest checkpoint, an edited row found', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  const { trail, tick } = await trailWith(t, { databaseUrl: PG_URL, databaseSchema: schema })
  for (let i = 0; i < 4; i++) { tick(); await trail.record(sampleEvent({ requestId: `r${i}` })) }
  let clock = Date.now()
  const read = createStateReader(trail.source, { publicKey: keys.publicKey, now: () => new Date(clock) })
  t.match(await read(), {
    sink: 'postgres',
    records: 5,
    last_record: { time: String, seq: 5, instance_id: 'proxy-a' },
    last_checkpoint: { kind: 'checkpoint', store: 'postgres', seq: 3, record_seq: 4 },
    verification: { ok: true, checked_records: 5, signatures_checked: true }
  })
  await sql(`SET session_replication_role = replica; UPDATE "${schema}".audit_records SET tenant = 'someone-else' WHERE seq = 2`)
  clock += 60_000
  t.match((await read()).verification, { ok: false, checked_records: 1, error: /seq=2\): .*altered/ })
})
