// The speke-proxy command: token inspection never shows the access key, config check names bad settings, tenant hashes match.

import t from 'tap'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { runCli } from '../src/cli.js'
import { DEMO_ACCESS_KEY, DEMO_TOKEN } from './helpers/fixtures.js'

async function run (argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | 'serving', out: string, err: string }> {
  let out = ''
  let err = ''
  const sink = (append: (s: string) => void): Writable => new Writable({ write (c: Buffer, _e, done) { append(c.toString()); done() } })
  const code = await runCli(argv, env, sink(s => { out += s }), sink(s => { err += s }))
  return { code, out, err }
}

t.test('--help lists every command', async t => {
  const { code, out } = await run(['--help'])
  t.equal(code, 0)
  for (const command of ['serve', 'keyserver', 'audit verify', 'token inspect', 'tenant hash', 'config check']) t.match(out, command)
})

t.test('token inspect prints the site id and never the access key', async t => {
  const { code, out, err } = await run(['token', 'inspect', DEMO_TOKEN])
  t.equal(code, 0)
  t.match(out, /site_id: DEMO/)
  t.notOk(out.includes(DEMO_ACCESS_KEY) || err.includes(DEMO_ACCESS_KEY), 'the access key is not printed')
  const bad = await run(['token', 'inspect', 'garbage'])
  t.equal(bad.code, 1)
  t.match(bad.err, /not a PallyCon enc-token/)
})

t.test('tenant hash gives the line TENANTS_FILE expects', async t => {
  const { code, out } = await run(['tenant', 'hash', 'my-credential'])
  t.equal(code, 0)
  t.equal(out.trim(), `sha256:${createHash('sha256').update('my-credential').digest('hex')}`)
})

t.test('config check: a good environment, and bad settings named', async t => {
  const dir = t.testdir()
  const tenants = join(dir, 'tenants.json')
  writeFileSync(tenants, JSON.stringify({ tenants: [{ id: 'acme', encToken: 'env:ACME_TOKEN', credentials: [`sha256:${'a'.repeat(64)}`] }] }))
  const good = await run(['config', 'check'], { DATA_DIR: dir, TENANTS_FILE: tenants, ACME_TOKEN: DEMO_TOKEN })
  t.equal(good.code, 0)
  t.match(good.out, /provider: local/)
  t.match(good.out, /tenants: acme \(site DEMO, 1 credential\)/)
  t.notOk(good.out.includes(DEMO_TOKEN), 'no token printed')
  const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ PORT: 'eighty' }, /PORT must be a whole number/],
    [{ KMS_URL: 'ftp://kms' }, /KMS_URL must use http or https/],
    [{ NODE_ENV: 'production' }, /KMS_URL is not set/],
    [{ KMS_TIMEOUT_MS: '60000' }, /KMS_TIMEOUT_MS must be between/],
    [{ TLS_CERT_FILE: '/x.crt' }, /TLS_CERT_FILE and TLS_KEY_FILE must be set together/],
    [{ TENANTS_FILE: tenants }, /environment variable ACME_TOKEN, which is not set/],
    [{ ALLOW_PASSTHROUGH: 'maybe' }, /ALLOW_PASSTHROUGH must be true or false/],
    [{ RESPONSE_MODE: 'fix' }, /RESPONSE_MODE must be one of repair, passthrough/]
  ]
  for (const [env, message] of cases) {
    const res = await run(['config', 'check'], { DATA_DIR: dir, ...env })
    t.equal(res.code, 78, `${Object.keys(env).join(',')}: exit 78`)
    t.match(res.err, message)
  }
})

t.test('audit verify is wired to the audit CLI; unknown commands exit 2', async t => {
  const usage = await run(['audit', 'verify'])
  t.equal(usage.code, 2)
  const unknown = await run(['frobnicate'])
  t.equal(unknown.code, 2)
  t.match(unknown.err, /unknown command "frobnicate"/)
})
