// The speke-proxy command: token inspection never shows the access key, config check names bad settings, tenant hashes match.

import t from 'tap'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { runCli } from '../src/cli.js'
import { DEMO_ACCESS_KEY, DEMO_TOKEN } from './helpers/fixtures.js'

async function run (argv: string[], env: NodeJS.ProcessEnv = {}, stdin = ''): Promise<{ code: number | 'serving', out: string, err: string }> {
  let out = ''
  let err = ''
  const sink = (append: (s: string) => void): Writable => new Writable({ write (c: Buffer, _e, done) { append(c.toString()); done() } })
  const code = await runCli(argv, env, sink(s => { out += s }), sink(s => { err += s }), Readable.from([Buffer.from(stdin)]))
  return { code, out, err }
}

t.test('--help lists every command', async t => {
  const { code, out } = await run(['--help'])
  t.equal(code, 0)
  for (const command of ['serve', 'keyserver', 'audit verify', 'token inspect', 'tenant hash', 'tenant new', 'config check']) t.match(out, command)
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

t.test('tenant hash reads the credential from stdin and gives the line TENANTS_FILE expects', async t => {
  const expected = `sha256:${createHash('sha256').update('my-credential').digest('hex')}`
  for (const input of ['my-credential', 'my-credential\n', 'my-credential\r\n']) {
    const { code, out } = await run(['tenant', 'hash'], {}, input)
    t.equal(code, 0)
    t.equal(out.trim(), expected, `from ${JSON.stringify(input)}`)
  }
  const argv = await run(['tenant', 'hash', 'my-credential'])
  t.equal(argv.code, 2, 'a credential on the command line is refused')
  t.match(argv.err, /reads the credential from stdin, not from the command line/)
  t.notOk(argv.out.includes('sha256:'), 'and not hashed')
  const empty = await run(['tenant', 'hash'], {}, '')
  t.equal(empty.code, 1)
  t.match(empty.err, /no credential on stdin/)
  const spaced = await run(['tenant', 'hash'], {}, 'two words')
  t.equal(spaced.code, 1)
  t.match(spaced.err, /whitespace or control characters/)
})

t.test('tenant new prints a fresh URL-safe credential and its hash line', async t => {
  const first = await run(['tenant', 'new'])
  const second = await run(['tenant', 'new'])
  t.equal(first.code, 0)
  const m = /^credential: (spk_[A-Za-z0-9_-]{43})\nhash: (sha256:[0-9a-f]{64})\n$/.exec(first.out)
  t.ok(m, first.out)
  if (m === null) return
  t.equal(m[2], `sha256:${createHash('sha256').update(m[1]).digest('hex')}`)
  t.not(second.out, first.out, 'each run makes a new credential')
  t.match(first.err, /TENANTS_FILE/)
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
