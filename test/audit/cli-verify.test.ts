// Specification of `speke-proxy audit verify`: exit 0 when every chain verifies, 1 naming the first bad record, 2 on bad usage.

import t from 'tap'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { openAuditTrail, runAuditVerify } from '../../src/audit/index.js'
import { HMAC_KEY, PG_URL, pgSchema, sampleEvent, sql } from './fixtures/helpers.js'

async function run (argv: string[]): Promise<{ code: number, text: string }> {
  const out = new PassThrough()
  let text = ''
  out.on('data', (d: Buffer) => { text += d.toString('utf8') })
  const code = await runAuditVerify(argv, out, new PassThrough())
  return { code, text }
}

t.test('--dir: 0 for an intact directory, 1 naming the altered line', async (t) => {
  const dir = join(t.testdir(), 'audit')
  const trail = await openAuditTrail({ dir, hmacKey: HMAC_KEY, instanceId: 'proxy-a', failOpen: false, writeTimeoutMs: 2000 })
  for (let i = 0; i < 3; i++) await trail.record(sampleEvent())
  await trail.close()
  t.same(await run(['audit', 'verify', '--dir', dir]), { code: 0, text: `audit verify: OK: directory ${dir}: 3 records in 1 chains\n` })

  const [file] = readdirSync(dir)
  writeFileSync(join(dir, file), readFileSync(join(dir, file), 'utf8').replace('"status":200', '"status":201'))
  const bad = await run(['--dir', dir])
  t.equal(bad.code, 1)
  t.match(bad.text, new RegExp(`FAILED: directory .*: ${file.replace(/\./g, '\\.')} line 1: chain "proxy-a" seq 1: hash does not match`))
})

t.test('--database-url with --schema: 0 when intact, 1 naming the edited row', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  const trail = await openAuditTrail({ databaseUrl: PG_URL, databaseSchema: schema, hmacKey: HMAC_KEY, instanceId: 'proxy-a', failOpen: false, writeTimeoutMs: 3000 })
  for (let i = 0; i < 3; i++) await trail.record(sampleEvent())
  await trail.close()
  const ok = await run(['audit', 'verify', '--database-url', PG_URL, '--schema', schema])
  t.same(ok, { code: 0, text: `audit verify: OK: database schema ${schema}: 3 records in 1 chains\n` })
  t.notMatch(ok.text, /postgres:\/\//, 'the database URL (which may hold a password) is not echoed')
  await sql(`SET session_replication_role = replica; UPDATE "${schema}".audit_records SET tenant = 'someone-else' WHERE seq = 2`)
  const bad = await run(['audit', 'verify', '--database-url', PG_URL, '--schema', schema])
  t.equal(bad.code, 1)
  t.match(bad.text, /FAILED: database schema .*: row id=[0-9a-f-]{36} \(instance_id="proxy-a", seq=2\): .*altered/)
})

t.test('bad usage exits 2 with the usage line', async (t) => {
  for (const argv of [['audit', 'verify'], ['audit', 'verify', '--bogus'], ['verify', '--dir'], ['--dir', 'x', '--schema', 's'], ['--dir', 'x', 'extra']]) {
    const r = await run(argv)
    t.equal(r.code, 2, argv.join(' '))
    t.match(r.text, /usage: speke-proxy audit verify --dir DIR \| --database-url URL/)
  }
  t.same(await run(['audit', 'verify', '--help']), { code: 0, text: 'usage: speke-proxy audit verify --dir DIR | --database-url URL [--schema SCHEMA] --public-key FILE [--anchors LOGFILE]\n' })
})

t.test('an unreadable source is a failure, not a pass', async (t) => {
  const r = await run(['--dir', join(t.testdir(), 'missing')])
  t.equal(r.code, 1)
  t.match(r.text, /cannot read audit directory/)
})
