// Attacks on the operator surfaces: a guessable ADMIN_TOKEN, admin brute force, open /metrics, credentials in argv, shared credentials.

import t from 'tap'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { encodeEncToken } from '../../src/tenants/enc-token.js'
import { ensureBuilt } from '../helpers/child-proxy.js'
import { fixture, PROJECT_ROOT } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

const V1_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
const ADMIN_TOKEN = 'a-long-enough-admin-token-0123456789abcdef'
const METRICS_TOKEN = 'a-long-enough-metrics-token-0123456789abcd'
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

/** Runs dist/cli.js to completion with `stdin` as its input; gives its exit code and output. */
async function cli (args: string[], env: Record<string, string>, stdin = ''): Promise<{ code: number | null, stdout: string, stderr: string }> {
  ensureBuilt()
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'cli.js'), ...args], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', DATA_DIR: mkdtempSync(join(tmpdir(), 'speke-proxy-cli-')), ...env },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  child.stdin.end(stdin)
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

t.test('a short ADMIN_TOKEN or METRICS_TOKEN stops startup with exit 78 and a clear message', async t => {
  for (const [name, value] of [['ADMIN_TOKEN', 'x'], ['ADMIN_TOKEN', 'a'.repeat(31)], ['METRICS_TOKEN', 'secret']]) {
    const { code, stderr } = await cli(['serve'], { [name]: value })
    t.equal(code, 78, `${name} of ${value.length} characters`)
    t.match(stderr, new RegExp(`configuration error: ${name} must be at least 32 characters`))
    t.notOk(stderr.includes(`${value}\n`) || stderr.includes(`"${value}"`), 'the value is not echoed')
  }
})

t.test('two tenants (or one) listing the same credential hash stop startup', async t => {
  const dir = t.testdir()
  const hash = `sha256:${sha256('shared-credential')}`
  const cases: Array<[string, unknown[]]> = [
    ['across tenants', [{ id: 'acme', encToken: encodeEncToken('A', 'ka'), credentials: [hash] }, { id: 'globex', encToken: encodeEncToken('G', 'kg'), credentials: [hash.toUpperCase().replace('SHA256', 'sha256')] }]],
    ['within a tenant', [{ id: 'acme', encToken: encodeEncToken('A', 'ka'), credentials: [hash, hash] }]]
  ]
  for (const [label, tenants] of cases) {
    const file = join(dir, `${label.replace(/\W/g, '-')}.json`)
    writeFileSync(file, JSON.stringify({ tenants }))
    const { code, stderr } = await cli(['serve'], { TENANTS_FILE: file })
    t.equal(code, 78, label)
    t.match(stderr, /credential hash sha256:[0-9a-f]{12}… is listed (for tenants "acme" and "globex"|twice for tenant "acme"); each credential must belong to exactly one tenant/)
  }
})

t.test('admin brute force: 429 after 30 attempts a minute per address, each failure logged without the token', async t => {
  const proxy = await startProxy({ ADMIN_TOKEN })
  t.teardown(() => proxy.close())
  const guesses = Array.from({ length: 40 }, (_, i) => `guess-${i}-${'g'.repeat(40)}`)
  const statuses: number[] = []
  for (const guess of guesses) {
    const res = await request(`${proxy.url}/admin/audit`, { headers: { authorization: `Bearer ${guess}` } })
    await res.body.text()
    statuses.push(res.statusCode)
  }
  t.same(statuses.slice(0, 30), Array(30).fill(401), 'the first 30 guesses are checked')
  t.same(statuses.slice(30), Array(10).fill(429), 'then the address is held off')
  const right = await request(`${proxy.url}/admin/audit`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  t.equal(right.statusCode, 429, 'even the right token waits: guessing cannot outrun the limit')
  t.ok(Number(right.headers['retry-after']) > 0, 'with Retry-After')
  await right.body.text()
  const failures = proxy.logs.filter(l => l.includes('admin request with a missing or wrong ADMIN_TOKEN'))
  t.equal(failures.length, 30, 'every checked failure is logged')
  t.ok(failures.every(l => { const e = JSON.parse(l) as { level: number, ip: string }; return e.level === 40 && e.ip === '127.0.0.1' }), 'as warnings with the client address')
  const all = proxy.logs.join('')
  t.notOk(guesses.some(g => all.includes(g)), 'no presented token in the log')
  t.notOk(all.includes(ADMIN_TOKEN), 'nor the real one')
})

t.test('/metrics needs METRICS_TOKEN when it is set', async t => {
  const proxy = await startProxy({ METRICS_TOKEN })
  t.teardown(() => proxy.close())
  for (const authorization of [undefined, 'Bearer wrong-token', `Basic ${METRICS_TOKEN}`, `Bearer ${METRICS_TOKEN}x`]) {
    const res = await request(`${proxy.url}/metrics`, { headers: authorization === undefined ? {} : { authorization } })
    t.equal(res.statusCode, 401, `refused with ${authorization ?? 'no Authorization'}`)
    t.notMatch(await res.body.text(), /speke_proxy_/)
  }
  const ok = await request(`${proxy.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
  t.equal(ok.statusCode, 200)
  t.match(await ok.body.text(), /speke_proxy_key_requests_total|speke_proxy_process_cpu/)
})

t.test('tenant hash reads stdin (the argv form is refused); tenant new prints a credential that works', async t => {
  const hashed = await cli(['tenant', 'hash'], {}, 'a-credential-from-stdin\n')
  t.equal(hashed.code, 0)
  t.equal(hashed.stdout.trim(), `sha256:${sha256('a-credential-from-stdin')}`)
  const inArgv = await cli(['tenant', 'hash', 'visible-in-ps'], {})
  t.equal(inArgv.code, 2)
  t.notMatch(inArgv.stdout, /sha256:/)

  const created = await cli(['tenant', 'new'], {})
  t.equal(created.code, 0)
  const m = /^credential: (\S+)\nhash: (sha256:[0-9a-f]{64})\n$/.exec(created.stdout)
  t.ok(m, created.stdout)
  if (m === null) return
  const [, credential, hashLine] = m
  t.equal(hashLine, `sha256:${sha256(credential)}`, 'the hash line is the credential\'s')
  const rehashed = await cli(['tenant', 'hash'], {}, credential)
  t.equal(rehashed.stdout.trim(), hashLine, 'tenant hash agrees')

  const dir = t.testdir()
  const tenantsFile = join(dir, 'tenants.json')
  writeFileSync(tenantsFile, JSON.stringify({ tenants: [{ id: 'acme', encToken: encodeEncToken('ACME', 'real-key'), credentials: [hashLine] }] }))
  const proxy = await startProxy({ DATA_DIR: dir, TENANTS_FILE: tenantsFile, ALLOW_PASSTHROUGH: 'false', KMS_URL: 'local' })
  t.teardown(() => proxy.close())
  const res = await request(`${proxy.url}/cpix/getKey?enc-token=${credential}`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: V1_REQUEST })
  t.equal(res.statusCode, 200, 'the new credential, pasted into the URL as printed, gets keys as tenant acme')
  await res.body.text()
  t.ok(proxy.logs.some(l => l.includes('"tenant":"acme"')), 'and counts as tenant acme')
})
