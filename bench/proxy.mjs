// What the proxy costs: throughput and peak memory of SPEKE v1 key requests through the proxy, as ratios to the bare fake KMS.
//
// Baseline: the fake KMS (a plain node:http server returning a fixed, correct CPIX reply) hit directly.
// Then the proxy in front of it with RESPONSE_MODE=passthrough and =repair, and the embedded provider alone.
// Audit is off here (bench/audit.mjs measures it). Not part of npm test.

import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({ options: { duration: { type: 'string', default: '8' }, connections: { type: 'string', default: '32' }, warmup: { type: 'string', default: '2' } } })
const duration = Number(values.duration)
const connections = Number(values.connections)
const warmup = Number(values.warmup)

execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-if-needed.mjs')], { cwd: ROOT, stdio: 'inherit' })
const { localProvider } = await import(join(ROOT, 'dist', 'kms', 'local', 'provider.js'))

const TOKEN = Buffer.from(JSON.stringify({ site_id: 'BNCH', access_key: 'bench-access-key' })).toString('base64')
const body = readFileSync(join(ROOT, 'test', 'fixtures', 'aws-speke-v1', 'aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml'))
const reply = (await localProvider({ secret: Buffer.alloc(32, 3), playReadyLaUrl: 'https://license.example.com/pr', hlsKeyUrlBase: 'https://keys.example.com', widevineProvider: 'bench' })
  .getKeys({ route: 'speke', token: TOKEN, body }, AbortSignal.timeout(5000))).body

const kms = createServer((req, res) => {
  req.resume()
  req.on('end', () => { res.writeHead(200, { 'content-type': 'application/xml' }); res.end(reply) })
})
await new Promise(resolve => kms.listen(0, '127.0.0.1', resolve))
const kmsUrl = `http://127.0.0.1:${kms.address().port}`

async function load (url) {
  const options = { url: `${url}/cpix/getKey?enc-token=${encodeURIComponent(TOKEN)}`, method: 'POST', headers: { 'content-type': 'application/xml' }, body, connections, pipelining: 1 }
  if (warmup > 0) await autocannon({ ...options, duration: warmup })
  return await autocannon({ ...options, duration })
}

function peakRssMiB (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

async function startProxy (env) {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'main.js')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', AUDIT: 'off', LOG_LEVEL: 'info', RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_IP_PER_MINUTE: '0', MAX_EVENT_LOOP_DELAY_MS: '0', DATA_DIR: mkdtempSync(join(tmpdir(), 'bench-proxy-')), ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const url = await new Promise((resolve, reject) => {
    let text = ''
    child.stdout.on('data', c => { text += c; const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(text); if (m) resolve(m[1]) })
    child.on('exit', code => reject(new Error(`proxy exited ${code}: ${text}`)))
  })
  return { url, pid: child.pid, stop: () => new Promise(resolve => { child.on('exit', resolve); child.kill('SIGTERM') }) }
}

const rows = []
process.stderr.write('baseline: fake KMS direct\n')
const base = await load(kmsUrl)
rows.push({ name: 'fake KMS direct (baseline)', rps: base.requests.average, p99: base.latency.p99, rss: undefined, bad: base.non2xx + base.errors })
for (const [name, env] of [
  ['proxy → KMS, passthrough', { KMS_URL: kmsUrl, RESPONSE_MODE: 'passthrough' }],
  ['proxy → KMS, verify+repair', { KMS_URL: kmsUrl, RESPONSE_MODE: 'repair' }],
  ['proxy, embedded provider', { KMS_URL: 'local' }]
]) {
  process.stderr.write(`${name}\n`)
  const proxy = await startProxy(env)
  const r = await load(proxy.url)
  rows.push({ name, rps: r.requests.average, p99: r.latency.p99, rss: peakRssMiB(proxy.pid), bad: r.non2xx + r.errors })
  await proxy.stop()
}
kms.close()

console.log('| config | req/s | ratio to baseline | p99 ms | peak RSS MiB | errors/non-2xx |')
console.log('|---|---|---|---|---|---|')
for (const r of rows) {
  console.log(`| ${r.name} | ${r.rps.toFixed(0)} | ${(r.rps / rows[0].rps).toFixed(2)} | ${r.p99} | ${r.rss === undefined ? '-' : r.rss.toFixed(0)} | ${r.bad} |`)
}
