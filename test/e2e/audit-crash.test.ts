// Crash safety of the file audit sink: `node dist/main.js` under concurrent SPEKE load is SIGKILLed mid-load; every key the
// client received (HTTP 200) must have its record on disk, the chain must still verify (a torn last line is named by verify
// and dropped on the next start, as documented), and a restarted proxy resumes the same chain.

import t from 'tap'
import { createPublicKey } from 'node:crypto'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { createHmac, randomBytes, randomUUID } from 'node:crypto'
import { appendFileSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Pool } from 'undici'
import { verifyAuditFiles, type AuditRecord } from '../../src/audit/index.js'
import { DEMO_TOKEN, PROJECT_ROOT, fixtureText } from '../helpers/fixtures.js'

const V1_REQUEST = fixtureText('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
const FIXTURE_KID = '98ee5596-cd3e-a20d-163a-e382420c6eff'
const HMAC_KEY = randomBytes(32)
const INSTANCE_ID = `crash-${randomBytes(4).toString('hex')}`

/**
 * The load runs LOAD_MS before SIGKILL, longer (up to MAX_LOAD_MS) on a slow or busy machine until MIN_SERVED keys were
 * served; CONCURRENCY requests at once, MAX_REQUESTS in all.
 */
const LOAD_MS = 1500
const MAX_LOAD_MS = 15_000
const MIN_SERVED = 100
const CONCURRENCY = 32
const MAX_REQUESTS = 20_000

/** A SPEKE v1 request whose content id and kid are unique, so its record can be found on disk. */
function uniqueRequest (n: number): { contentId: string, kid: string, body: string } {
  const contentId = `crash-${n}-${randomBytes(4).toString('hex')}`
  const kid = randomUUID()
  const body = V1_REQUEST.replace(/(<cpix:CPIX\b[^>]*?\bid=")[^"]*(")/, `$1${contentId}$2`).split(FIXTURE_KID).join(kid)
  return { contentId, kid, body }
}

interface Running {
  child: ChildProcess
  url: string
  output: string[]
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/** Spawns the built server with a clean environment (nothing inherited but PATH) and waits for its listening line. */
async function spawnProxy (dataDir: string): Promise<Running> {
  const child = spawn(process.execPath, ['dist/main.js'], {
    cwd: PROJECT_ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      KMS_URL: 'local',
      INSTANCE_ID,
      AUDIT_HMAC_KEY: HMAC_KEY.toString('base64'),
      // Checkpoints only at shutdown here, so the records on disk are the test's requests (test/security/audit-forgery covers checkpoints).
      AUDIT_CHECKPOINT_RECORDS: '10000000',
      AUDIT_CHECKPOINT_INTERVAL_S: '86400',
      LOG_LEVEL: 'info',
      // The load is the point: no rate limit (429: per tenant, or per address, as every request comes from 127.0.0.1) or
      // event-loop load shedding (503) in front of the audit.
      RATE_LIMIT_PER_MINUTE: '0',
      RATE_LIMIT_PER_IP_PER_MINUTE: '0',
      MAX_EVENT_LOOP_DELAY_MS: '0'
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output: string[] = []
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "Server listening" line within 20 s:\n${output.join('')}`)), 20_000)
    let pending = ''
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')))
    child.stdout?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8')
      output.push(text)
      const lines = (pending + text).split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) {
        let msg: unknown
        try { msg = (JSON.parse(line) as { msg?: unknown }).msg } catch { continue }
        const m = typeof msg === 'string' ? /^Server listening at (http:\/\/127\.0\.0\.1:\d+)$/.exec(msg) : null
        if (m !== null) { clearTimeout(timer); resolve(m[1]) }
      }
    })
    void exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`the server exited (${code ?? signal}) before listening:\n${output.join('')}`)) })
  })
  return { child, url, output, exited }
}

/** Complete lines of every segment (a torn tail without newline is left out), parsed, in write order. */
function diskRecords (dir: string): AuditRecord[] {
  return readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort().flatMap((f) => {
    const lines = readFileSync(join(dir, f), 'utf8').split('\n')
    lines.pop() // after the last newline: '' or a torn write
    return lines.map((l) => JSON.parse(l) as AuditRecord)
  })
}

function keyOf (xml: string): { kid: string, key: Buffer } | undefined {
  const m = /<cpix:ContentKey\b[^>]*?\bkid="([^"]+)"[^>]*>[\s\S]*?<pskc:PlainValue>([A-Za-z0-9+/=]+)<\/pskc:PlainValue>/.exec(xml)
  return m === null ? undefined : { kid: m[1].toLowerCase(), key: Buffer.from(m[2], 'base64') }
}

const fingerprint = (key: Buffer): string => `hmac-sha256:${createHmac('sha256', HMAC_KEY).update(key).digest('hex')}`

t.test('SIGKILL under load: every key served has its record on disk and the chain survives', async (t) => {
  execFileSync(process.execPath, ['scripts/build-if-needed.mjs'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
  const dataDir = join(t.testdir(), 'data')
  const auditDir = join(dataDir, 'audit')
  const proxy = await spawnProxy(dataDir)
  t.teardown(() => { if (proxy.child.exitCode === null && proxy.child.signalCode === null) proxy.child.kill('SIGKILL') })

  const pool = new Pool(proxy.url, { connections: CONCURRENCY, pipelining: 1 })
  const served: Array<{ contentId: string, kid: string, key: Buffer | undefined }> = []
  const otherStatus = new Map<number, number>()
  let started = 0
  let failed = 0
  let inFlight = 0
  let killed = false
  let inFlightAtKill = 0
  let startedAtKill = 0

  async function worker (): Promise<void> {
    // eslint-disable-next-line no-unmodified-loop-condition -- `killed` is set by the test body while this worker awaits its request
    while (!killed && started < MAX_REQUESTS) {
      const req = uniqueRequest(started++)
      inFlight++
      try {
        const res = await pool.request({
          path: `/cpix/getKey?enc-token=${encodeURIComponent(DEMO_TOKEN)}`,
          method: 'POST',
          headers: { 'content-type': 'application/xml' },
          body: req.body
        })
        const text = await res.body.text()
        if (res.statusCode === 200) served.push({ contentId: req.contentId, kid: req.kid, key: keyOf(text)?.key })
        else otherStatus.set(res.statusCode, (otherStatus.get(res.statusCode) ?? 0) + 1)
      } catch {
        failed++
      } finally {
        inFlight--
      }
    }
  }

  const began = Date.now()
  const workers = Array.from({ length: CONCURRENCY }, async () => await worker())
  // eslint-disable-next-line no-unmodified-loop-condition -- the workers advance `started` while this loop sleeps
  while (Date.now() - began < MAX_LOAD_MS && (Date.now() - began < LOAD_MS || served.length < MIN_SERVED) && started < MAX_REQUESTS) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  inFlightAtKill = inFlight
  startedAtKill = started
  proxy.child.kill('SIGKILL')
  killed = true
  const exit = await proxy.exited
  await Promise.all(workers)
  await pool.destroy()
  const elapsed = Date.now() - began

  t.equal(exit.signal, 'SIGKILL', 'the server died of SIGKILL')
  t.ok(inFlightAtKill > 0, `killed mid-load: ${inFlightAtKill} requests in flight at the kill`)
  t.ok(startedAtKill < MAX_REQUESTS, `the load was still running when killed (${startedAtKill} started, bound ${MAX_REQUESTS})`)
  t.ok(served.length >= MIN_SERVED, `the server answered ${served.length} requests with 200 before the kill`)
  t.strictSame([...otherStatus.entries()], [], 'no answer other than 200 while the server was alive')
  t.comment(`load ${elapsed} ms: ${started} started, ${served.length} x 200, ${failed} cut off by the kill, ${inFlightAtKill} in flight at the kill`)

  const records = diskRecords(auditDir)
  const byContent = new Map<string, AuditRecord[]>()
  for (const r of records) byContent.set(r.content_id ?? '', [...(byContent.get(r.content_id ?? '') ?? []), r])
  let found = 0
  const missing: string[] = []
  const wrong: string[] = []
  for (const s of served) {
    const mine = byContent.get(s.contentId) ?? []
    if (mine.length !== 1) { missing.push(`${s.contentId} (${mine.length} records)`); continue }
    found++
    const r = mine[0]
    const expected = { outcome: 'ok', status: 200, route: 'speke', tenant: 'site:DEMO', requested_kids: [s.kid], returned_kids: [s.kid], key_fingerprints: s.key === undefined ? [] : [fingerprint(s.key)] }
    const actual = {
      outcome: r.outcome,
      status: r.status,
      route: r.route,
      tenant: r.tenant,
      requested_kids: r.requested_kids,
      returned_kids: r.returned_kids,
      key_fingerprints: r.key_fingerprints
    }
    if (JSON.stringify(actual) !== JSON.stringify(expected)) wrong.push(`${s.contentId}: ${JSON.stringify(actual)}`)
  }
  t.ok(served.every((s) => s.key !== undefined), 'every 200 carried a content key')
  t.strictSame(missing, [], 'no served request lacks its record (or has two)')
  t.strictSame(wrong, [], 'each record names the served kid, outcome ok, and the fingerprint of the key the client got')
  t.equal(found, served.length, `all ${served.length} served requests found on disk`)
  const sentIds = new Set(served.map((s) => s.contentId))
  t.ok(records.length >= served.length, `${records.length} records on disk (≥ ${served.length} answered: a request recorded just before the kill may never have been answered)`)
  t.ok(records.every((r) => typeof r.content_id === 'string' && r.content_id.startsWith('crash-')), 'every record on disk is one of the test\'s requests')
  t.equal(new Set(records.map((r) => r.content_id)).size, records.length, 'no request is recorded twice')
  t.strictSame(records.map((r) => r.seq), records.map((_, i) => i + 1), 'sequence numbers run 1..n with no gap')
  t.comment(`${records.length} records on disk, ${records.filter((r) => !sentIds.has(r.content_id ?? '')).length} of them for requests whose answer the client never got`)

  // Verify after the crash: clean, or (documented) only a torn last line, which verify names and the next start drops.
  const afterCrash = await verifyAuditFiles(auditDir)
  if (afterCrash.ok) {
    t.strictSame(afterCrash, { ok: true, records: records.length, chains: 1 }, 'verifyAuditFiles: ok right after the SIGKILL')
  } else {
    t.match(afterCrash.firstProblem, /line \d+: incomplete last line \(no newline\)$/, 'verifyAuditFiles names only a torn last line')
    t.equal(afterCrash.records, records.length, 'every complete line before it links up')
  }

  // Simulate the torn write a crash can leave (a record cut short), whether or not this kill left one.
  const segments = readdirSync(auditDir).filter((f) => f.endsWith('.jsonl')).sort()
  const last = join(auditDir, segments[segments.length - 1])
  if (afterCrash.ok) appendFileSync(last, '{"caller_ip":"127.0.0.1","content_id":"torn-wri')
  const torn = await verifyAuditFiles(auditDir)
  t.equal(torn.ok, false, 'verify refuses a file ending in a torn line')
  t.match(torn.firstProblem, new RegExp(`^${segments[segments.length - 1].replace(/\./g, '\\.')} line ${records.length + 1}: incomplete last line \\(no newline\\)$`), 'and names the file, the line and the problem')
  t.equal(torn.records, records.length, 'the records before the torn line still link up')

  // Restart on the same directory: the torn tail is dropped, the chain resumes, and a graceful stop leaves it verifiable.
  const again = await spawnProxy(dataDir)
  t.teardown(() => { if (again.child.exitCode === null && again.child.signalCode === null) again.child.kill('SIGKILL') })
  const next = uniqueRequest(MAX_REQUESTS + 1)
  const pool2 = new Pool(again.url)
  const res = await pool2.request({ path: `/cpix/getKey?enc-token=${encodeURIComponent(DEMO_TOKEN)}`, method: 'POST', headers: { 'content-type': 'application/xml' }, body: next.body })
  const text = await res.body.text()
  await pool2.close()
  t.equal(res.statusCode, 200, 'the restarted proxy serves keys')
  again.child.kill('SIGTERM')
  const stopped = await again.exited
  t.equal(stopped.code, 0, 'SIGTERM stops it cleanly')

  t.notMatch(readFileSync(last, 'utf8'), /torn-wri/, 'the torn tail was dropped on start')
  t.strictSame(await verifyAuditFiles(auditDir), { ok: true, records: records.length + 2, chains: 1 }, 'verifyAuditFiles: ok, one chain holding every record and the shutdown checkpoint')
  const all = diskRecords(auditDir)
  t.equal(all[all.length - 1].route, 'audit-checkpoint', 'SIGTERM ends the chain with a signed checkpoint')
  const signedKey = readFileSync(join(dataDir, 'audit-signing.key'), 'utf8')
  const publicKey = createPublicKey(signedKey)
  t.match(await verifyAuditFiles(auditDir, { publicKey }), { ok: true, checkpoints: 1, warnings: [] }, 'and it verifies with the public key alone')
  const after = all.filter((r) => r.checkpoint === undefined)
  const resumed = after[after.length - 1]
  t.equal(resumed.content_id, next.contentId, 'the new request is the last record')
  t.equal(resumed.seq, records.length + 1, 'it continues the chain where the crash left it')
  t.equal(resumed.prev_hash, records[records.length - 1].hash, 'linked to the last record written before the kill')
  t.strictSame(resumed.key_fingerprints, [fingerprint(keyOf(text)?.key ?? Buffer.alloc(0))], 'with the fingerprint of the key served')
  for (const s of served) {
    if (!after.some((r) => r.content_id === s.contentId)) { t.fail(`${s.contentId} lost after the restart`); break }
  }
})
