// Refusals made before the pipeline are audited too (one record each for an identified caller,
// a per-minute summary without one); readiness follows the audit sink.

import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { DEMO_TOKEN, fixture } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

const V1_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')

function records (dir: string): Array<Record<string, unknown>> {
  return readdirSync(dir).filter(f => f.endsWith('.jsonl')).flatMap(f => readFileSync(join(dir, f), 'utf8').trim().split('\n').filter(Boolean).map(l => JSON.parse(l) as Record<string, unknown>))
}

/** Polls /readyz until it answers 200 or the time is up; returns the last status. */
async function readyStatusWithin (url: string, ms: number): Promise<number> {
  const until = Date.now() + ms
  for (;;) {
    const res = await request(`${url}/readyz`)
    await res.body.text()
    if (res.statusCode === 200 || Date.now() > until) return res.statusCode
    await new Promise(resolve => setTimeout(resolve, 150))
  }
}

t.test('413 and 429 of an identified caller each leave one audit record; an Anevia path error without a valid token is counted in the refusal summary', async t => {
  const dataDir = t.testdir()
  const proxy = await startProxy({ DATA_DIR: dataDir, BODY_LIMIT: '2048', RATE_LIMIT_PER_MINUTE: '2' })
  t.teardown(() => proxy.close())
  const big = await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: Buffer.alloc(4096, 0x20) })
  t.equal(big.statusCode, 413)
  await big.body.text()
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) {
    const res = await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: V1_REQUEST })
    statuses.push(res.statusCode)
    await res.body.text()
  }
  t.same(statuses, [200, 429, 429], 'the 413 counted against the limit too')
  const smooth = await request(`${proxy.url}/cpix/anevia/smooth/${encodeURIComponent('eyJzaXRlX2lkIjoiWCJ9')}/cid`)
  t.equal(smooth.statusCode, 404)
  await smooth.body.text()
  const before = records(join(dataDir, 'audit'))
  t.same(before.map(r => [r.route, r.status, r.outcome, r.tenant]), [['speke', 413, 'rejected', 'site:DEMO'], ['speke', 200, 'ok', 'site:DEMO'], ['speke', 429, 'rejected', 'site:DEMO'], ['speke', 429, 'rejected', 'site:DEMO']])
  t.match(String(before[2].error), /Rate limit of 2 key requests per minute/)
  await proxy.close()
  const all = records(join(dataDir, 'audit'))
  t.same(all.slice(4).map(r => r.route), ['refusal-summary', 'audit-checkpoint'], 'shutdown added the refusal summary, then signed the chain')
  t.match(all[4], { route: 'refusal-summary', refusals: { total: 1, top: [{ route: 'anevia', status: 404, caller_ip: '127.0.0.1', count: 1 }] } })
  t.notOk(JSON.stringify(all).includes(DEMO_TOKEN), 'no token in the records')
})

t.test('readiness: 503 when the only sink cannot create its directory, ready again by itself once it can', async t => {
  const dataDir = t.testdir()
  const blocker = join(dataDir, 'blocker')
  writeFileSync(blocker, 'a file where the audit directory should be')
  const proxy = await startProxy({ DATA_DIR: dataDir, AUDIT_DIR: join(blocker, 'audit') })
  t.teardown(() => proxy.close())
  const first = await request(`${proxy.url}/readyz`)
  t.equal(first.statusCode, 503)
  t.match(await first.body.json(), { checks: { audit: false } })
  const heartbeat = await request(`${proxy.url}/cpix/getKey/heartbeat`)
  t.equal(await heartbeat.body.text(), 'SUCCESS', 'the heartbeat still answers')
  execFileSync('rm', [blocker])
  const ready = await readyStatusWithin(proxy.url, 6000)
  t.equal(ready, 200, 'ready again without any key request')
})

t.test('readiness: 503 when the only sink cannot write, ready again by itself once it can write', async t => {
  const dataDir = t.testdir()
  const auditDir = join(dataDir, 'audit')
  mkdirSync(auditDir)
  writeFileSync(join(dataDir, 'placeholder'), '')
  execFileSync('chattr', ['+i', auditDir])
  t.teardown(() => { try { execFileSync('chattr', ['-i', auditDir]) } catch {} })
  const proxy = await startProxy({ DATA_DIR: dataDir, AUDIT_DIR: auditDir })
  t.teardown(() => proxy.close())
  const first = await request(`${proxy.url}/readyz`)
  t.equal(first.statusCode, 503, 'not ready before any key request')
  t.match(await first.body.json(), { checks: { audit: false } })
  const refused = await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: V1_REQUEST })
  t.equal(refused.statusCode, 503)
  t.notMatch(await refused.body.text(), /PlainValue/)
  execFileSync('chattr', ['-i', auditDir])
  const ready = await readyStatusWithin(proxy.url, 6000)
  t.equal(ready, 200, 'the readiness probe found the sink writable again without any key request')
  const served = await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: V1_REQUEST })
  t.equal(served.statusCode, 200)
  await served.body.text()
})
