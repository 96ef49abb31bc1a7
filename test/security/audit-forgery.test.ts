// Forging the audit trail with write access to its store and the project's own hash function: `audit verify`, holding only
// the public key (and the shipped log), names every forgery by instance, seq and file line or row.

import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import {
  keyIdOf, openAuditTrail, pruneAuditFiles, publicKeyPem, recordHash, runAuditVerify, signEntry, verifyAuditDatabase, verifyAuditFiles,
  type AuditRecord, type AuditSettings, type SignedEntry, type Signer
} from '../../src/audit/index.js'
import { canonicalJson } from '../../src/audit/record.js'
import { HMAC_KEY, PG_URL, pgSchema, sampleEvent, sql } from '../audit/fixtures/helpers.js'

function newKey (): Signer & { publicKey: ReturnType<typeof generateKeyPairSync>['publicKey'] } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) }
}
const KEY = newKey()
const OTHER = newKey()

const lines: string[] = []
const anchorLog = {
  info: (obj: object, msg: string) => { lines.push(JSON.stringify({ level: 30, ...obj, msg })) },
  warn () {},
  error () {}
}

function settings (more: Partial<AuditSettings>): AuditSettings {
  return { hmacKey: HMAC_KEY, instanceId: 'proxy-a', failOpen: false, writeTimeoutMs: 3000, checkpoints: { signer: KEY, everyRecords: 4, intervalMs: 60_000 }, ...more }
}

/** n records in dir (checkpoint every 4 and at close), optionally rotated small; returns the anchor log path. */
async function filled (dir: string, n: number, rotateBytes?: number, clock?: () => Date): Promise<string> {
  lines.length = 0
  const trail = await openAuditTrail(settings({ dir, rotateBytes, clock }), anchorLog)
  for (let i = 0; i < n; i++) await trail.record(sampleEvent({ requestId: `req-${i + 1}` }))
  await trail.close()
  const anchors = join(dir, '..', 'process.log')
  writeFileSync(anchors, lines.map((l) => `${l}\n`).join(''))
  return anchors
}

const segments = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort()
const read = (file: string): AuditRecord[] => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as AuditRecord)
const write = (file: string, rs: AuditRecord[]): void => writeFileSync(file, rs.map((r) => `${canonicalJson(r)}\n`).join(''))

/** Renumbers and re-links every record from index `from` on with the project's own hash function. */
function rechain (rs: AuditRecord[], from = 0, renumber = false): AuditRecord[] {
  for (let i = from; i < rs.length; i++) {
    const prev = i === 0 ? undefined : rs[i - 1]
    if (prev !== undefined) rs[i].prev_hash = prev.hash
    if (renumber && prev !== undefined) rs[i].seq = prev.seq + 1
    const { hash: _h, ...rest } = rs[i]
    rs[i].hash = recordHash(rest)
  }
  return rs
}

async function cli (argv: string[]): Promise<{ code: number, text: string }> {
  const out = new PassThrough()
  let text = ''
  out.on('data', (d: Buffer) => { text += d.toString('utf8') })
  const code = await runAuditVerify(argv, out, out)
  return { code, text }
}

function keyFile (dir: string, key = KEY): string {
  const path = join(dir, '..', `public-${key.keyId}.pem`)
  writeFileSync(path, publicKeyPem(key.publicKey))
  return path
}

t.test('an untouched trail verifies with the public key; records after the last checkpoint are a warning', async (t) => {
  const dir = join(t.testdir(), 'audit')
  const anchors = await filled(dir, 10)
  const r = await verifyAuditFiles(dir, { publicKey: KEY.publicKey, anchors })
  t.match(r, { ok: true, records: 13, chains: 1, checkpoints: 3, warnings: [] }, 'checkpoints after 4, 8 and at close (seq 5, 10, 13)')
  t.equal(lines.length, 3, 'one anchor line per checkpoint')
  const ok = await cli(['--dir', dir, '--public-key', keyFile(dir), '--anchors', anchors])
  t.equal(ok.code, 0)
  t.match(ok.text, /OK: directory .*: 13 records in 1 chains, 3 signed checkpoints/)
})

t.test('an edited record (tenant, outcome, fingerprints) with every hash recomputed is named at the next checkpoint', async (t) => {
  const dir = join(t.testdir(), 'audit')
  await filled(dir, 10)
  const [file] = segments(dir)
  const rs = read(join(dir, file))
  Object.assign(rs[1], { tenant: 'someone-else', outcome: 'rejected', caller_ip: '198.51.100.1', key_fingerprints: ['hmac-sha256:' + '0'.repeat(64)] })
  write(join(dir, file), rechain(rs, 1))
  const r = await cli(['--dir', dir, '--public-key', keyFile(dir)])
  t.equal(r.code, 1)
  t.match(r.text, new RegExp(`FAILED: .*${file.replace(/\./g, '\\.')} line 5: chain "proxy-a" seq 5: checkpoint signed seq 4 .*a record between seq 1 and 4 was altered, removed or inserted after it was signed \\(every hash recomputed\\)`))
})

t.test('a deleted middle record, renumbered and re-hashed, is named', async (t) => {
  const dir = join(t.testdir(), 'audit')
  await filled(dir, 10)
  const [file] = segments(dir)
  const rs = read(join(dir, file))
  rs.splice(3, 1)
  write(join(dir, file), rechain(rs, 3, true))
  const r = await cli(['--dir', dir, '--public-key', keyFile(dir)])
  t.equal(r.code, 1)
  t.match(r.text, /line 4: chain "proxy-a" seq 4: checkpoint signed seq 4 .*between seq 1 and 3/)
})

t.test('a cut tail is named from the side log, and from the anchor log when the side log was cut too', async (t) => {
  const dir = join(t.testdir(), 'audit')
  const anchors = await filled(dir, 10)
  const [file] = segments(dir)
  const rs = read(join(dir, file))
  write(join(dir, file), rs.slice(0, 7))
  const r = await cli(['--dir', dir, '--public-key', keyFile(dir)])
  t.equal(r.code, 1)
  t.match(r.text, new RegExp(`chain "proxy-a" ends at seq 7 \\(${file.replace(/\./g, '\\.')} line 7\\), before its checkpoint at seq 10 held in audit-proxy-a\\.checkpoints line 2: records removed from the end \\(cut tail\\)`))
  const side = join(dir, 'audit-proxy-a.checkpoints')
  writeFileSync(side, readFileSync(side, 'utf8').split('\n')[0] + '\n')
  t.equal((await cli(['--dir', dir, '--public-key', keyFile(dir)])).code, 0, 'chain and side log cut together: only the shipped log can tell')
  const a = await cli(['--dir', dir, '--public-key', keyFile(dir), '--anchors', anchors])
  t.equal(a.code, 1)
  t.match(a.text, /ends at seq 7 .*before its checkpoint at seq 10 held in anchor log .*process\.log line 2: records removed from the end \(cut tail\)/)
})

t.test('a deleted first, middle or last file, and swapped files, are named', async (t) => {
  for (const [label, attack, expected] of [
    ['first file', (fs: string[], dir: string) => { unlinkSync(join(dir, fs[0])) }, /line 1: chain "proxy-a" seq \d+ where seq 1 was expected .*no signed prune record covers/],
    ['middle file', (fs: string[], dir: string) => { unlinkSync(join(dir, fs[1])) }, /line 1: chain "proxy-a" seq \d+ where seq \d+ was expected \(record removed or reordered\)/],
    ['last file', (fs: string[], dir: string) => { unlinkSync(join(dir, fs[fs.length - 1])) }, /ends at seq \d+ .*before its checkpoint at seq \d+ held in audit-proxy-a\.checkpoints line \d+: records removed from the end \(cut tail\)/],
    ['swapped files', (fs: string[], dir: string) => {
      renameSync(join(dir, fs[0]), join(dir, 'tmp')); renameSync(join(dir, fs[1]), join(dir, fs[0])); renameSync(join(dir, 'tmp'), join(dir, fs[1]))
    }, /line 1: chain "proxy-a" seq \d+ where seq 1 was expected/]
  ] as const) {
    const dir = join(t.testdir(), label.replace(/ /g, '-'), 'audit')
    await filled(dir, 12, 2500)
    const fs = segments(dir)
    t.ok(fs.length >= 3, `${label}: ${fs.length} files`)
    attack(fs, dir)
    const r = await cli(['--dir', dir, '--public-key', keyFile(dir)])
    t.equal(r.code, 1, label)
    t.match(r.text, expected, label)
  }
})

t.test('checkpoints re-signed with another key after rewriting are named as such', async (t) => {
  const dir = join(t.testdir(), 'audit')
  await filled(dir, 6)
  const [file] = segments(dir)
  const rs = read(join(dir, file))
  rs[0].tenant = 'forged'
  for (let i = 0; i < rs.length; i++) {
    if (i > 0) rs[i].prev_hash = rs[i - 1].hash
    const cp = rs[i].checkpoint
    if (cp !== undefined) {
      const { signature: _s, key_id: _k, ...unsigned } = cp
      rs[i].checkpoint = signEntry(OTHER, { ...unsigned, head: rs[i].prev_hash }) as SignedEntry
    }
    const { hash: _h, ...rest } = rs[i]
    rs[i].hash = recordHash(rest)
  }
  write(join(dir, file), rs)
  unlinkSync(join(dir, 'audit-proxy-a.checkpoints'))
  const r = await cli(['--dir', dir, '--public-key', keyFile(dir)])
  t.equal(r.code, 1)
  t.match(r.text, new RegExp(`line 5: chain "proxy-a" seq 5: checkpoint signed by another key \\(key id ${OTHER.keyId}, the given public key is ${KEY.keyId}\\)`))
})

t.test('restart continues the same chain; prune then verify passes from the prune point', async (t) => {
  const dir = join(t.testdir(), 'audit')
  let now = new Date('2025-03-01T10:00:00Z')
  await filled(dir, 9, 2500, () => now)
  now = new Date('2025-03-03T10:00:00Z')
  await filled(dir, 3, 2500, () => now)
  const first = await verifyAuditFiles(dir, { publicKey: KEY.publicKey })
  t.match(first, { ok: true, chains: 1, warnings: [] }, 'the restarted writer continued the same chain')
  const before = segments(dir)
  const pruned = await pruneAuditFiles(dir, new Date('2025-03-02T00:00:00Z'), { ...KEY })
  t.equal(pruned.length, 1)
  t.ok(segments(dir).length < before.length, `${before.length - segments(dir).length} old files removed`)
  const after = await cli(['--dir', dir, '--public-key', keyFile(dir)])
  t.equal(after.code, 0, after.text)
  unlinkSync(join(dir, segments(dir)[0]))
  t.match((await cli(['--dir', dir, '--public-key', keyFile(dir)])).text, /where seq \d+ was expected .*no signed prune record covers/, 'deleting past the prune point is still named')
})

t.test('PostgreSQL: UPDATE and DELETE refused; a writer with INSERT and SELECT only works; removed rows do not resume silently', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  const role = `audit_writer_${process.pid}_${Date.now() % 100000}`
  const base = { databaseUrl: PG_URL, databaseSchema: schema }
  // The owner migrates; the writer role has only what the README grants.
  const owner = await openAuditTrail(settings(base))
  await owner.close()
  await sql(`CREATE ROLE ${role} LOGIN PASSWORD 'w'; GRANT USAGE ON SCHEMA "${schema}" TO ${role};
    GRANT SELECT, INSERT ON "${schema}".audit_records, "${schema}".audit_checkpoints TO ${role}; GRANT SELECT ON "${schema}".audit_migrations TO ${role}`)
  t.teardown(async () => { await sql(`DROP OWNED BY ${role}; DROP ROLE ${role}`) })
  const writerUrl = new URL(PG_URL)
  writerUrl.username = role
  writerUrl.password = 'w'
  const writer = await openAuditTrail(settings({ ...base, databaseUrl: writerUrl.toString() }))
  for (let i = 0; i < 10; i++) await writer.record(sampleEvent({ requestId: `w-${i}` }))
  await writer.close()
  t.match(await verifyAuditDatabase(PG_URL, schema, { publicKey: KEY.publicKey }), { ok: true, records: 13, checkpoints: 3 })

  await t.rejects(sql(`UPDATE "${schema}".audit_records SET tenant = 'x' WHERE seq = 2`), /append-only/, 'UPDATE refused, even for the superuser')
  await t.rejects(sql(`DELETE FROM "${schema}".audit_records WHERE seq = 13`), /append-only/, 'DELETE refused')
  await t.rejects(sql(`TRUNCATE "${schema}".audit_records`), /append-only/, 'TRUNCATE refused')

  // An owner bypassing the trigger cuts the tail; the next start writes a signed restart record, and verify names both.
  await sql(`SET session_replication_role = replica; DELETE FROM "${schema}".audit_records WHERE seq >= 11`)
  const cut = await verifyAuditDatabase(PG_URL, schema, { publicKey: KEY.publicKey })
  t.match(cut.firstProblem, /chain "proxy-a" ends at seq 10 \(row id=.*seq=10\)\), before its checkpoint at seq 13 held in audit_checkpoints row .*cut tail/)
  const again = await openAuditTrail(settings({ ...base, databaseUrl: writerUrl.toString() }))
  await again.record(sampleEvent({ requestId: 'after-cut' }))
  await again.close()
  const restart = await sql<{ seq: string, route: string }>(`SELECT seq, route FROM "${schema}".audit_records WHERE seq = 11`)
  t.same(restart, [{ seq: '11', route: 'audit-restart' }], 'the writer did not resume silently')
  const r = await verifyAuditDatabase(PG_URL, schema, { publicKey: KEY.publicKey })
  t.match(r.firstProblem, /seq=11\): chain "proxy-a" seq 11: signed restart record: the writer found its chain cut back to seq 10, short of its last checkpoint \(record seq 13\)/)
})
