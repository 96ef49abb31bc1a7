// Attack: fill the audit disk with cheap anonymous requests (1-byte bodies, 3 KB User-Agent, 8 KB Content-Type);
// the audit grows by a bounded summary.

import t from 'tap'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { verifyAuditFiles } from '../../src/audit/index.js'
import { DEMO_TOKEN, fixture } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

const V1_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
const USER_AGENT = `Mozilla/5.0 ${'U'.repeat(3 * 1024)}`
const CONTENT_TYPE = `application/x-${'c'.repeat(8 * 1024)}`
const ATTACKS = 400

function auditBytes (dir: string): number {
  if (!existsSync(dir)) return 0
  return readdirSync(dir).filter(f => f.endsWith('.jsonl')).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0)
}

function records (dir: string): Array<Record<string, any>> {
  return readdirSync(dir).filter(f => f.endsWith('.jsonl')).sort()
    .flatMap(f => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l) as Record<string, any>))
}

t.test('anonymous 1-byte POSTs with huge headers add one bounded summary record, not one fsynced record each', async t => {
  const dataDir = t.testdir()
  const auditDir = join(dataDir, 'audit')
  const proxy = await startProxy({ DATA_DIR: dataDir })
  t.teardown(() => proxy.close())
  const before = auditBytes(auditDir)

  const targets = ['/cpix/getKey', '/cpix/getKey?enc-token=not-a-token', '/v2/cpix/pallycon/getKey/not-a-token', '/v2/keys']
  const statuses = new Map<number, number>()
  for (let i = 0; i < ATTACKS; i += 20) {
    await Promise.all(Array.from({ length: 20 }, async (_, j) => {
      const res = await request(`${proxy.url}${targets[(i + j) % targets.length]}`, {
        method: 'POST',
        headers: { 'user-agent': USER_AGENT, 'content-type': CONTENT_TYPE },
        body: 'x'
      })
      await res.body.text()
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    }))
  }
  t.ok([...statuses.keys()].every(s => s >= 400 && s < 500), `every attack was refused: ${JSON.stringify([...statuses])}`)
  t.equal(auditBytes(auditDir) - before, 0, 'no audit record per refusal while the minute is open')

  // A caller with a valid credential still gets a record of its own, at once.
  const good = await request(`${proxy.url}/cpix/getKey?enc-token=${encodeURIComponent(DEMO_TOKEN)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/xml', 'user-agent': USER_AGENT },
    body: V1_REQUEST
  })
  t.equal(good.statusCode, 200)
  await good.body.text()
  const afterGood = records(auditDir)
  t.equal(afterGood.length, 1, 'the authenticated request was recorded before its reply')
  t.match(afterGood[0], { route: 'speke', tenant: 'site:DEMO', outcome: 'ok', status: 200 })
  const ua = String(afterGood[0].user_agent)
  t.ok(ua.length <= 201 && ua.length >= 150 && USER_AGENT.startsWith(ua.replace(/(…|\.\.\.)$/, '')), `its User-Agent is cut to 200 characters (${ua.length})`)

  await proxy.close()
  const all = records(auditDir)
  t.same(all.map(r => r.route).slice(1), ['refusal-summary', 'audit-checkpoint'], 'shutdown wrote the summary of the open minute, then signed the chain')
  const summary = all[1]
  t.match(summary, { route: 'refusal-summary', tenant: null, outcome: 'rejected' })
  t.equal(summary.refusals.total, ATTACKS, 'every refusal is counted')
  const itemised = summary.refusals.top as Array<{ count: number, caller_ip: string, route: string, reason: string }>
  t.equal(itemised.reduce((n, c) => n + c.count, 0) + Number(summary.refusals.other), ATTACKS, 'the counts add up')
  t.ok(itemised.every(c => c.caller_ip === '127.0.0.1'), 'counted per client IP')
  t.same([...new Set(itemised.map(c => c.route))].sort(), ['keys-json', 'pallycon-v2', 'speke'], 'counted per route')
  t.ok(itemised.every(c => c.reason.length <= 201), 'reasons are bounded')
  const growth = auditBytes(auditDir) - before
  t.ok(growth < 16 * 1024, `the audit grew by ${growth} bytes for ${ATTACKS} anonymous requests (one record each would be over ${ATTACKS} × 3 KB)`)
  t.notOk(readFileSync(join(auditDir, readdirSync(auditDir).find(f => f.endsWith('.jsonl')) ?? ''), 'utf8').includes('U'.repeat(201)), 'no reflected header longer than 200 characters')
  t.match(await verifyAuditFiles(auditDir), { ok: true, records: 3, chains: 1 }, 'the summary is part of the verified chain')
})

t.test('readiness fails, saying why, when the audit volume has less free space than AUDIT_MIN_FREE_MB', async t => {
  const dataDir = t.testdir()
  const starved = await startProxy({ DATA_DIR: dataDir, AUDIT_MIN_FREE_MB: '100000000' })
  t.teardown(() => starved.close())
  const res = await request(`${starved.url}/readyz`)
  t.equal(res.statusCode, 503)
  const body = await res.body.json() as { checks: Record<string, boolean>, reasons?: Record<string, string> }
  t.equal(body.checks.audit, false)
  t.match(body.reasons?.audit, /audit volume of .* has \d+ MB free, below the floor of 100000000 MB \(AUDIT_MIN_FREE_MB\)/)
  t.ok(starved.logs.some(l => l.includes('below its free-space floor')), 'and logs it')
  await starved.close()

  const roomy = await startProxy({ DATA_DIR: t.testdir(), AUDIT_MIN_FREE_MB: '1' })
  t.teardown(() => roomy.close())
  const ok = await request(`${roomy.url}/readyz`)
  t.equal(ok.statusCode, 200, 'ready with a floor the volume clears')
  t.notOk('reasons' in (await ok.body.json() as object))
})
