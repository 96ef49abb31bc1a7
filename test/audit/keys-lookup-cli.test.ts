// `speke-proxy keys lookup`, run as the built command (dist/cli.js): the store from the server's settings, a table or JSON, bad usage.

import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { openAuditTrail } from '../../src/audit/index.js'
import { ensureBuilt } from '../helpers/child-proxy.js'
import { PROJECT_ROOT } from '../helpers/fixtures.js'
import { HMAC_KEY, KEY_A, PG_URL, pgSchema, sampleAsk, sampleEvent } from './fixtures/helpers.js'

const KID = '6c5f5206-7d98-4b8a-8d9e-0a4b7c1d2e3f'
const ESC = '\u001b[2J'
const HOSTILE = `<img src=x onerror=alert(1)>${ESC}`

async function cli (args: string[], env: Record<string, string>): Promise<{ code: number | null, stdout: string, stderr: string }> {
  ensureBuilt()
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'cli.js'), ...args], { cwd: PROJECT_ROOT, env: { PATH: process.env.PATH ?? '', ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

async function fill (store: { dir?: string, databaseUrl?: string, databaseSchema?: string }): Promise<void> {
  const trail = await openAuditTrail({ ...store, hmacKey: HMAC_KEY, instanceId: 'proxy-a', failOpen: false, writeTimeoutMs: 3000 })
  await trail.record(sampleEvent({ tenant: 'acme', request: sampleAsk({ contentId: 'movie-9' }), returnedKeys: [{ kid: KID, key: KEY_A }], deliveredEncrypted: true }))
  await trail.record(sampleEvent({ tenant: 'site:DEMO', request: sampleAsk({ contentId: 'movie-9' }), returnedKeys: [{ kid: KID, key: KEY_A }] }))
  await trail.record(sampleEvent({ tenant: 'acme', request: sampleAsk({ contentId: HOSTILE }), returnedKeys: [{ kid: KID, key: KEY_A }] }))
  await trail.close()
}

t.test('the files the server would write (DATA_DIR/audit): a table, or JSON', async (t) => {
  const dataDir = t.testdir()
  await fill({ dir: join(dataDir, 'audit') })
  const table = await cli(['keys', 'lookup', '--content-id', 'movie-9'], { DATA_DIR: dataDir })
  t.equal(table.code, 0, table.stderr)
  const lines = table.stdout.trimEnd().split('\n')
  t.match(lines[0], /^KID +CONTENT ID +TENANT +KIND +ISSUED +FIRST ISSUED +LAST ISSUED +LAST +ENCRYPTED +TRACKS +PERIODS +DRM SYSTEMS$/)
  t.equal(lines.length, 3, 'a header and one line per (kid, content id, tenant)')
  t.match(table.stdout, new RegExp(`${KID} +movie-9 +site:DEMO +passthrough +1 .* ok 200 +no +AUDIO,SD`))
  t.match(table.stdout, new RegExp(`${KID} +movie-9 +acme +managed +1 .* ok 200 +yes`))

  const json = await cli(['keys', 'lookup', '--content-id', 'movie-9', '--tenant', 'acme', '--json'], { DATA_DIR: dataDir })
  t.equal(json.code, 0)
  t.match(JSON.parse(json.stdout), { keys: [{ kid: KID, content_id: 'movie-9', tenant: 'acme', tenant_kind: 'managed', times_issued: 1, delivered_encrypted: true }] })

  const byKid = await cli(['keys', 'lookup', '--kid', KID.toUpperCase().replace(/-/g, ''), '--json'], { DATA_DIR: dataDir })
  t.same((JSON.parse(byKid.stdout) as { keys: Array<{ content_id: string }> }).keys.map((k) => k.content_id).sort(), [HOSTILE, 'movie-9', 'movie-9'].sort())

  const hostile = await cli(['keys', 'lookup', '--kid', KID], { DATA_DIR: dataDir })
  t.notOk(hostile.stdout.includes(ESC), 'a terminal escape in a content id is not printed raw')
  t.match(hostile.stdout, /<img src=x onerror=alert\(1\)>\\x1b\[2J/, 'it is shown escaped')

  const none = await cli(['keys', 'lookup', '--content-id', 'nothing'], { DATA_DIR: dataDir })
  t.same([none.code, none.stdout], [1, ''])
  t.match(none.stderr, /no key in the audit matches/)
})

t.test('the PostgreSQL store of AUDIT_DATABASE_URL, or --database-url', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  await fill({ databaseUrl: PG_URL, databaseSchema: schema })
  const fromEnv = await cli(['keys', 'lookup', '--content-id', 'movie-9', '--json'], { DATA_DIR: t.testdir(), AUDIT_DATABASE_URL: PG_URL, AUDIT_DATABASE_SCHEMA: schema })
  t.equal(fromEnv.code, 0, fromEnv.stderr)
  t.equal((JSON.parse(fromEnv.stdout) as { keys: unknown[] }).keys.length, 2)
  const fromFlag = await cli(['keys', 'lookup', '--content-id', 'movie-9', '--database-url', PG_URL, '--schema', schema, '--limit', '1', '--json'], { DATA_DIR: t.testdir() })
  t.equal((JSON.parse(fromFlag.stdout) as { keys: unknown[] }).keys.length, 1, '--limit')
  t.notMatch(fromFlag.stdout + fromFlag.stderr, /postgres:\/\//, 'the database URL is not echoed')
})

t.test('bad usage exits 2 with the usage; bad settings exit 78', async (t) => {
  for (const args of [[], ['--tenant', 'acme'], ['--content-id', 'x', '--bogus'], ['--kid', 'not-a-uuid'], ['--content-id', 'x', '--limit', '0'], ['--content-id', 'x', '--dir', 'a', '--database-url', 'postgres://h/d']]) {
    const r = await cli(['keys', 'lookup', ...args], { DATA_DIR: t.testdir() })
    t.equal(r.code, 2, args.join(' '))
    t.match(r.stderr, /keys lookup|usage: speke-proxy keys lookup/)
  }
  const help = await cli(['keys', 'lookup', '--help'], {})
  t.same([help.code, help.stdout.startsWith('usage: speke-proxy keys lookup')], [0, true])
  const settings = await cli(['keys', 'lookup', '--content-id', 'x'], { AUDIT: 'maybe' })
  t.equal(settings.code, 78)
  t.match(settings.stderr, /configuration error: AUDIT must be on or off/)
  const listed = await cli(['--help'], {})
  t.match(listed.stdout, /keys lookup --content-id ID/, 'listed in the help')
})
