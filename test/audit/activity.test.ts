// Specification of the activity counts: key requests per tenant and outcome in a window, refusals without a credential, both sources.

import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import type { AuditSource } from '../../src/audit/index.js'
import { auditActivity } from '../../src/audit/activity.js'
import { openBothSinks, pgSchema, sampleEvent } from './fixtures/helpers.js'

const T0 = Date.parse('2025-03-01T10:00:00.000Z')

t.test('activity per tenant, from both sources', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  let now = T0
  const signer = { privateKey: generateKeyPairSync('ed25519').privateKey, keyId: 'test-key' }
  const { trail, dir } = await openBothSinks(t, schema, () => new Date(now), {
    summaryWindowMs: 60_000,
    checkpoints: { signer, everyRecords: 1000, intervalMs: 3_600_000 }
  })
  // Two hours ago: outside the default hour.
  now = T0 - 2 * 3_600_000
  await trail.record(sampleEvent({ tenant: 'acme' }))
  now = T0 - 30 * 60_000
  await trail.record(sampleEvent({ tenant: 'acme' }))
  await trail.record(sampleEvent({ tenant: 'acme', outcome: 'rejected', status: 422, errorCode: 'DUPLICATE_KID', returnedKeys: [] }))
  await trail.record(sampleEvent({ tenant: 'site:DEMO' }))
  await trail.record(sampleEvent({ tenant: 'site:DEMO', outcome: 'upstream_error', status: 504, errorCode: 'KMS_TIMEOUT', returnedKeys: [] }))
  await trail.record(sampleEvent({ tenant: "<b>'; drop table audit_records; --" }))
  // Three refusals without a credential: one summary record with total 3, not three request records.
  for (let i = 0; i < 3; i++) await trail.record(sampleEvent({ tenant: undefined, authenticated: false, outcome: 'rejected', status: 401, errorCode: 'MISSING_TOKEN', returnedKeys: [] }))
  await trail.flushSummary()
  await trail.checkpoint()
  now = T0

  const sources: Array<[string, AuditSource]> = [['files', { kind: 'files', dir }], ['postgres', trail.source]]
  for (const [name, source] of sources) {
    t.test(name, async (t) => {
      t.same(await auditActivity(source, undefined, new Date(T0)), {
        since: new Date(T0 - 3_600_000).toISOString(),
        until: new Date(T0).toISOString(),
        tenants: [
          { tenant: 'acme', tenant_kind: 'managed', requests: 2, ok: 1, rejected: 1, upstream_errors: 0 },
          { tenant: 'site:DEMO', tenant_kind: 'passthrough', requests: 2, ok: 1, rejected: 0, upstream_errors: 1 },
          { tenant: "<b>'; drop table audit_records; --", tenant_kind: 'managed', requests: 1, ok: 1, rejected: 0, upstream_errors: 0 }
        ],
        refused_without_credential: 3
      }, 'the last hour: checkpoint and summary records are no requests; the summary counts its refusals')
      const day = await auditActivity(source, 1440, new Date(T0))
      t.match(day.tenants[0], { tenant: 'acme', requests: 3, ok: 2 }, 'the last day reaches the older request')
      t.same((await auditActivity(source, 5, new Date(T0))).tenants, [], 'the last five minutes: nothing')
    })
  }
})

t.test('minutes outside 1 to 1440 are 400s', async (t) => {
  const source: AuditSource = { kind: 'files', dir: t.testdir() }
  for (const minutes of [0, 1441, 1.5, -1]) {
    await t.rejects(auditActivity(source, minutes), { status: 400, code: 'BAD_AUDIT_QUERY', message: /minutes must be an integer from 1 to 1440/ }, String(minutes))
  }
})
