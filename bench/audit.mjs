#!/usr/bin/env node
// Audit trail throughput: SPEKE v1 key requests per second against `node dist/main.js` (embedded key provider) with the
// audit off (baseline), the file sink, the PostgreSQL sink, and both; each as a ratio to the baseline of the same round.
// Not part of `npm test`. See bench/README.md.
//
//   node bench/audit.mjs [--duration 10] [--warmup 2] [--connections 32] [--rounds 1] [--database-url URL | --no-pg]
//
// Needs: autocannon (devDependency), a built dist/ (built here when stale). PostgreSQL: --database-url (or
// AUDIT_BENCH_DATABASE_URL) names a server; without either, an embedded PostgreSQL from npm is started for the run.

import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { startTestDatabase } from '../scripts/test-database.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const FIXTURE = resolve(ROOT, 'test', 'fixtures', 'aws-speke-v1', 'aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
const DEMO_TOKEN = 'eyJhY2Nlc3Nfa2V5IjoiZHNJb2xjN2gxRzhUVW1JMTdiWXd4aFV1TkZvRmNlNzJjeDllTU9rNjJ3YjhWTjJQZGdwV1lISXhTRVg5ZjBIaSIsInNpdGVfaWQiOiJERU1PIn0='

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '1' },
    'no-pg': { type: 'boolean', default: false },
    'database-url': { type: 'string' }
  }
})
const duration = positive('duration')
const warmup = Number(args.warmup)
if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`--warmup must be a whole number ≥ 0, got ${args.warmup}`)
const connections = positive('connections')
const rounds = positive('rounds')
const withPg = !args['no-pg']
const namedDatabase = args['database-url'] ?? process.env.AUDIT_BENCH_DATABASE_URL
const embeddedDatabase = withPg && namedDatabase === undefined ? await startTestDatabase() : undefined
const PG_URL = namedDatabase ?? embeddedDatabase?.url

function positive (name) {
  const n = Number(args[name])
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number ≥ 1, got ${args[name]}`)
  return n
}

// The library API comes from dist/, so build it first when src/ is newer.
execFileSync(process.execPath, ['scripts/build-if-needed.mjs'], { cwd: ROOT, stdio: 'inherit' })
const { verifyAuditFiles, verifyAuditDatabase } = await import(join(ROOT, 'dist', 'audit', 'index.js'))
const { default: pg } = await import('pg')

const body = readFileSync(FIXTURE)
const work = mkdtempSync(join(tmpdir(), 'speke-proxy-bench-'))
const schema = `audit_bench_${process.pid}_${randomBytes(4).toString('hex')}`
const hmacKey = randomBytes(32).toString('base64')

/** name → extra environment for the server; every config gets its own DATA_DIR per round. */
const configs = [
  { name: 'audit off (baseline)', file: false, env: () => ({ AUDIT: 'off' }) },
  // The same file sink with checkpoints pushed out of the run (10,000,000 records / 24 h): the difference is what signed
  // checkpoints cost at their defaults (every 1000 records or 60 s).
  { name: 'file sink, no checkpoint in the run', file: true, env: (dir) => ({ AUDIT_DIR: join(dir, 'audit'), AUDIT_CHECKPOINT_RECORDS: '10000000', AUDIT_CHECKPOINT_INTERVAL_S: '86400' }) },
  { name: 'file sink', file: true, env: (dir) => ({ AUDIT_DIR: join(dir, 'audit') }) },
  ...(withPg
    ? [
        { name: 'PostgreSQL sink', file: false, env: () => ({ AUDIT_DATABASE_URL: PG_URL, AUDIT_DATABASE_SCHEMA: schema }) },
        { name: 'file + PostgreSQL', file: true, env: (dir) => ({ AUDIT_DIR: join(dir, 'audit'), AUDIT_DATABASE_URL: PG_URL, AUDIT_DATABASE_SCHEMA: schema }) }
      ]
    : [])
]

async function pgQuery (text) {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 })
  await client.connect()
  try { return await client.query(text) } finally { await client.end() }
}

/** Starts the built server in its own process (so load generator and server do not share an event loop). */
async function startServer (env) {
  const child = spawn(process.execPath, ['dist/main.js'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      HOST: '127.0.0.1',
      KMS_URL: 'local',
      LOG_LEVEL: 'info',
      AUDIT_HMAC_KEY: hmacKey,
      // Measure the audit, not the guards in front of it: no per-tenant rate limit, no load shedding.
      RATE_LIMIT_PER_MINUTE: '0',
      RATE_LIMIT_PER_IP_PER_MINUTE: '0',
      MAX_EVENT_LOOP_DELAY_MS: '0',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output = []
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output.join('')}`)), 20_000)
    let pending = ''
    child.stderr.on('data', (c) => { output.push(String(c)) })
    child.stdout.on('data', (c) => {
      const lines = (pending + String(c)).split('\n')
      pending = lines.pop()
      for (const line of lines) {
        if (output.length < 50) output.push(line + '\n')
        const m = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(line)
        if (m !== null) { clearTimeout(timer); resolve(m[1]) }
      }
    })
    exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`server exited (${code ?? signal}):\n${output.join('')}`)) })
  })
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM')
      const { code } = await exited
      if (code !== 0) throw new Error(`server did not stop cleanly (exit ${code})`)
    }
  }
}

async function load (url, seconds) {
  return await autocannon({
    url: `${url}/cpix/getKey?enc-token=${encodeURIComponent(DEMO_TOKEN)}`,
    method: 'POST',
    headers: { 'content-type': 'application/xml' },
    body,
    connections,
    pipelining: 1,
    duration: seconds
  })
}

async function measure (name, env, dir) {
  const server = await startServer({ DATA_DIR: dir, ...env })
  try {
    if (warmup > 0) await load(server.url, warmup)
    const r = await load(server.url, duration)
    const ok = r['2xx'] ?? 0
    return { name, rps: ok / r.duration, p50: r.latency.p50, p99: r.latency.p99, ok, bad: r.non2xx + r.errors + r.timeouts }
  } finally {
    await server.stop()
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

try {
  if (withPg) {
    try { await pgQuery('SELECT 1') } catch (err) {
      throw new Error(`PostgreSQL is needed at ${PG_URL} (pass --database-url, or --no-pg): ${err.message}`)
    }
  }
  process.stderr.write(`audit bench: ${connections} connections, ${warmup} s warm-up + ${duration} s per config, ${rounds} round(s), node ${process.version}\n`)
  const results = new Map(configs.map(({ name }) => [name, []]))
  for (let round = 1; round <= rounds; round++) {
    let baseline
    for (const { name, file, env } of configs) {
      const dir = mkdtempSync(join(work, 'data-'))
      const r = await measure(name, env(dir), dir)
      baseline ??= r.rps
      r.ratio = r.rps / baseline
      if (file) {
        const v = await verifyAuditFiles(join(dir, 'audit'))
        r.check = v.ok && v.records >= r.ok ? `files ok (${v.records})` : `FILES: ${v.firstProblem ?? `${v.records} records < ${r.ok} answered`}`
      }
      results.get(name).push(r)
      process.stderr.write(`  round ${round}: ${name}: ${r.rps.toFixed(0)} req/s${r.check === undefined ? '' : `, ${r.check}`}\n`)
    }
  }
  if (withPg) {
    const v = await verifyAuditDatabase(PG_URL, schema)
    process.stderr.write(`PostgreSQL chain: ${v.ok ? `ok, ${v.records} records in ${v.chains} chains` : `FAILED: ${v.firstProblem}`}\n`)
  }

  const rows = configs.map(({ name }) => {
    const rs = results.get(name)
    return [name, median(rs.map((r) => r.rps)).toFixed(0), median(rs.map((r) => r.ratio)).toFixed(2),
      median(rs.map((r) => r.p50)).toFixed(1), median(rs.map((r) => r.p99)).toFixed(1), String(rs.reduce((n, r) => n + r.bad, 0))]
  })
  const head = ['config', 'req/s', 'ratio', 'p50 ms', 'p99 ms', 'errors/non-2xx']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells) => `| ${cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(' | ')} |`
  console.log(line(head))
  console.log(`|${widths.map((w, i) => i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`).join('|')}|`)
  for (const r of rows) console.log(line(r))
  if (rounds > 1) console.log(`(medians over ${rounds} rounds; each ratio is to the baseline of its own round)`)
  const plain = median(results.get('file sink, no checkpoint in the run').map((r) => r.rps))
  const signed = median(results.get('file sink').map((r) => r.rps))
  console.log(`signed checkpoints at their defaults: ${((1 - signed / plain) * 100).toFixed(1)} % of file-sink throughput (${signed.toFixed(0)} vs ${plain.toFixed(0)} req/s)`)
} finally {
  if (withPg) await pgQuery(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {})
  await embeddedDatabase?.stop()
  rmSync(work, { recursive: true, force: true })
}
