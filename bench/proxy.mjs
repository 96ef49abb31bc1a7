// What the proxy costs next to a plain reverse proxy: throughput, latency, peak memory and start time for one SPEKE v2 request
// (four keys, three DRM systems) answered by a PallyCon-shaped KMS reply, every server under test on its own core. Not part of npm test.
//
// Peers measured in the same run: the bare fake KMS hit directly, and @fastify/reply-from as a passthrough proxy in front of it.
// Then speke-proxy in front of the same fake KMS (passthrough; verify+repair, audit off and with the file audit) and with the
// embedded provider. Every configuration: autocannon at --connections (32), then at 1 connection.

import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { SPEKE_VERSION, TOKEN, pallyconReply, spekeV2Request } from './request.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    'latency-duration': { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    warmup: { type: 'string', default: '2' },
    root: { type: 'string', default: resolve(HERE, '..') },
    only: { type: 'string' },
    profile: { type: 'string' },
    'node-options': { type: 'string' },
    json: { type: 'string' }
  }
})
const duration = Number(values.duration)
const latencyDuration = Number(values['latency-duration'])
const connections = Number(values.connections)
const warmup = Number(values.warmup)
/** The checkout whose dist/main.js is measured (another checkout's, e.g. a baseline, with --root). */
const ROOT = resolve(values.root)
const OWN_ROOT = resolve(HERE, '..')

execFileSync(process.execPath, [join(OWN_ROOT, 'scripts', 'build-if-needed.mjs')], { cwd: OWN_ROOT, stdio: 'inherit' })
if (ROOT !== OWN_ROOT && !existsSync(join(ROOT, 'dist', 'main.js'))) throw new Error(`${ROOT}/dist/main.js is missing: build that checkout first`)

// Pinning: the server under test on CPU 0; this process (autocannon) and the fake KMS on CPU 1.
const pinned = availableParallelism() >= 2 && hasTaskset()
const UNDER_TEST_CPU = '0'
const LOAD_CPU = '1'
if (pinned) execFileSync('taskset', ['-a', '-cp', LOAD_CPU, String(process.pid)], { stdio: 'ignore' })
process.stderr.write(pinned
  ? `pinned: server under test on CPU ${UNDER_TEST_CPU}; autocannon (pid ${process.pid}) and the fake KMS on CPU ${LOAD_CPU}\n`
  : 'not pinned (taskset missing or one CPU): every process shares the CPUs\n')
process.stderr.write(`load average before the run: ${loadavg().map(l => l.toFixed(2)).join(' ')}\n`)

const body = spekeV2Request()
const replyFile = join(mkdtempSync(join(tmpdir(), 'bench-proxy-')), 'reply.xml')
writeFileSync(replyFile, await pallyconReply(OWN_ROOT, body))
const path = `/cpix/getKey?enc-token=${encodeURIComponent(TOKEN)}`
const headers = { 'content-type': 'application/xml', 'x-speke-version': SPEKE_VERSION }

function hasTaskset () {
  try { execFileSync('taskset', ['-V'], { stdio: 'ignore' }); return true } catch { return false }
}

async function freePort () {
  const server = createServer()
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise(resolve => server.close(resolve))
  return port
}

/** Every process the bench started, stopped when it exits however it exits (a server that fails to start throws). */
const children = new Set()
process.on('exit', () => { for (const child of children) child.kill('SIGTERM') })
// Interrupted (Ctrl-C, kill): exit, so that the handler above runs.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(1))

function spawnPinned (cpu, args, options) {
  const child = pinned ? spawn('taskset', ['-c', cpu, process.execPath, ...args], options) : spawn(process.execPath, args, options)
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

/** Start a server process and time spawn → first 200 on the key request (polled every 5 ms). */
async function startServer (cpu, args, env) {
  const port = await freePort()
  const started = performance.now()
  const child = spawnPinned(cpu, args.map(a => a === '$PORT' ? String(port) : a), { cwd: ROOT, env: { PATH: process.env.PATH, ...env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'] })
  let exited
  child.on('exit', code => { exited = code })
  const url = `http://127.0.0.1:${port}`
  for (;;) {
    if (exited !== undefined) throw new Error(`${args.join(' ')} exited with ${exited}`)
    try {
      const res = await fetch(url + path, { method: 'POST', headers, body })
      const text = await res.text()
      if (res.status !== 200) throw new Error(`first answer of ${args.join(' ')} is ${res.status}: ${text.slice(0, 300)}`)
      break
    } catch (err) {
      if (err.message.startsWith('first answer')) throw err
      await new Promise(resolve => setTimeout(resolve, 5))
    }
  }
  const startMs = performance.now() - started
  return {
    url,
    pid: child.pid,
    startMs,
    stop: () => new Promise(resolve => { if (exited !== undefined) resolve(); else { child.on('exit', resolve); child.kill('SIGTERM') } })
  }
}

/** VmHWM of the node process (under taskset, the pid is taskset's until it execs node, which it does at once). */
function peakRssMiB (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

async function load (url, conns, seconds) {
  const options = { url: url + path, method: 'POST', headers, body, connections: conns, pipelining: 1 }
  if (warmup > 0 && conns > 1) await autocannon({ ...options, duration: warmup })
  const r = await autocannon({ ...options, duration: seconds })
  return { r, bad: r.non2xx + r.errors + r.timeouts }
}

const fakeKmsPort = await freePort()
const kms = spawnPinned(LOAD_CPU, [join(HERE, 'fake-kms.mjs'), replyFile, String(fakeKmsPort)], { stdio: ['ignore', 'ignore', 'inherit'] })
const kmsUrl = `http://127.0.0.1:${fakeKmsPort}`
for (let i = 0; ; i++) {
  try { await fetch(kmsUrl + path, { method: 'POST', body }); break } catch { if (i > 400) throw new Error('fake KMS did not start'); await new Promise(resolve => setTimeout(resolve, 5)) }
}

const dataDirs = []
const dataDir = () => { const dir = mkdtempSync(join(tmpdir(), 'bench-proxy-data-')); dataDirs.push(dir); return dir }
process.on('exit', () => { for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 }) })
const PROXY_ENV = {
  HOST: '127.0.0.1',
  LOG_LEVEL: 'info',
  RATE_LIMIT_PER_MINUTE: '0',
  RATE_LIMIT_PER_IP_PER_MINUTE: '0',
  MAX_EVENT_LOOP_DELAY_MS: '0',
  ...(values['node-options'] === undefined ? {} : { NODE_OPTIONS: values['node-options'] })
}
const main = join(ROOT, 'dist', 'main.js')
const CONFIGS = [
  { name: 'fake KMS direct', direct: true },
  { name: '@fastify/reply-from passthrough', args: [join(HERE, 'reply-from.mjs'), kmsUrl, '$PORT'], env: {} },
  { name: 'speke-proxy RESPONSE_MODE=passthrough, audit off', args: [main], env: () => ({ ...PROXY_ENV, KMS_URL: kmsUrl, RESPONSE_MODE: 'passthrough', AUDIT: 'off', DATA_DIR: dataDir() }) },
  { name: 'speke-proxy verify+repair, audit off', args: [main], env: () => ({ ...PROXY_ENV, KMS_URL: kmsUrl, RESPONSE_MODE: 'repair', AUDIT: 'off', DATA_DIR: dataDir() }) },
  { name: 'speke-proxy verify+repair, file audit', args: [main], env: () => { const d = dataDir(); return { ...PROXY_ENV, KMS_URL: kmsUrl, RESPONSE_MODE: 'repair', DATA_DIR: d, AUDIT_DIR: join(d, 'audit') } } },
  { name: 'speke-proxy embedded provider, audit off', args: [main], env: () => ({ ...PROXY_ENV, KMS_URL: 'local', AUDIT: 'off', DATA_DIR: dataDir() }) }
].filter(c => values.only === undefined || c.name.includes(values.only))

const rows = []
for (const config of CONFIGS) {
  process.stderr.write(`${config.name}\n`)
  let server
  if (!config.direct) {
    const env = typeof config.env === 'function' ? config.env() : config.env
    const profileArgs = values.profile !== undefined && config.args[0] === main ? ['--cpu-prof', `--cpu-prof-dir=${resolve(values.profile)}`] : []
    server = await startServer(UNDER_TEST_CPU, [...profileArgs, ...config.args], env)
  }
  const url = config.direct ? kmsUrl : server.url
  const many = await load(url, connections, duration)
  const one = await load(url, 1, latencyDuration)
  rows.push({
    name: config.name,
    rps: many.r.requests.average,
    p99: many.r.latency.p99,
    // One connection sends one request at a time: the mean latency is the run's time over its requests
    // (autocannon's own histogram has whole milliseconds).
    mean1: 1000 * one.r.duration / one.r.requests.total,
    bad: many.bad + one.bad,
    answered: many.r['2xx'] + one.r['2xx'],
    rss: server === undefined ? undefined : peakRssMiB(server.pid),
    startMs: server?.startMs
  })
  await server?.stop()
}
kms.kill('SIGTERM')
rmSync(dirname(replyFile), { recursive: true, force: true })

const peer = rows.find(r => r.name.startsWith('@fastify/reply-from'))
const direct = rows.find(r => r.name === 'fake KMS direct')
const f = (n, d = 0) => n === undefined ? '-' : n.toFixed(d)
console.log(`| config | req/s (${connections} conn.) | × reply-from | mean ms at 1 conn. | + over direct | p99 ms | peak RSS MiB | start to first answer ms | non-2xx |`)
console.log('|---|---|---|---|---|---|---|---|---|')
for (const r of rows) {
  const added = direct === undefined || r === direct ? undefined : r.mean1 - direct.mean1
  const ratio = peer === undefined ? '-' : f(r.rps / peer.rps, 2)
  console.log(`| ${r.name} | ${f(r.rps)} | ${ratio} | ${f(r.mean1, 2)} | ${added === undefined ? '—' : `+${f(added, 2)}`} | ${r.p99} | ${f(r.rss)} | ${f(r.startMs)} | ${r.bad} |`)
}
process.stderr.write(`load average after the run: ${loadavg().map(l => l.toFixed(2)).join(' ')}\n`)
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ root: ROOT, pinned, rows }, null, 2))
const failed = rows.filter(r => r.bad > 0 || r.answered === 0)
if (failed.length > 0) {
  process.stderr.write(`FAILED: non-2xx answers or errors in ${failed.map(r => r.name).join(', ')}\n`)
  process.exitCode = 1
}
