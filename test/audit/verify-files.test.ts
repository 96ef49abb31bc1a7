// Specification of offline verification of audit files: any edit, deletion or reordering is found and named.

import t from 'tap'
import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { openAuditTrail, recordHash, verifyAuditFiles, type AuditRecord } from '../../src/audit/index.js'
import { canonicalJson } from '../../src/audit/record.js'
import { HMAC_KEY, sampleEvent } from './fixtures/helpers.js'

/** A directory with `n` records of one chain, in one file unless rotateBytes is given. */
async function chainDir (dir: string, n: number, rotateBytes?: number): Promise<string> {
  const trail = await openAuditTrail({ dir, hmacKey: HMAC_KEY, instanceId: 'proxy-a', failOpen: false, writeTimeoutMs: 2000, rotateBytes })
  for (let i = 0; i < n; i++) await trail.record(sampleEvent({ requestId: `req-${i + 1}` }))
  await trail.close()
  return dir
}

function onlyFile (dir: string): string {
  const files = readdirSync(dir)
  if (files.length !== 1) throw new Error(`expected one file, got ${files.join(', ')}`)
  return join(dir, files[0])
}

const lines = (file: string): string[] => readFileSync(file, 'utf8').split('\n').slice(0, -1)
const write = (file: string, ls: string[]): void => writeFileSync(file, ls.map((l) => `${l}\n`).join(''))

t.test('an untouched directory verifies', async (t) => {
  const dir = await chainDir(t.testdir(), 5)
  t.same(await verifyAuditFiles(dir), { ok: true, records: 5, chains: 1 })
})

t.test('an edited field is found, naming file and line', async (t) => {
  const dir = await chainDir(t.testdir(), 5)
  const file = onlyFile(dir)
  const ls = lines(file)
  ls[2] = ls[2].replace('"outcome":"ok"', '"outcome":"rejected"')
  write(file, ls)
  const r = await verifyAuditFiles(dir)
  t.equal(r.ok, false)
  t.equal(r.records, 2, 'the two records before it verified')
  t.match(r.firstProblem, /^audit-proxy-a-\d{8}-000001\.jsonl line 3: chain "proxy-a" seq 3: hash does not match .*altered/)
})

t.test('an edited record whose hash was recomputed breaks the link to the next one', async (t) => {
  const dir = await chainDir(t.testdir(), 4)
  const file = onlyFile(dir)
  const ls = lines(file)
  const edited = { ...(JSON.parse(ls[1]) as AuditRecord), content_id: 'other-movie' }
  ls[1] = canonicalJson({ ...edited, hash: recordHash(edited) })
  write(file, ls)
  const r = await verifyAuditFiles(dir)
  t.equal(r.ok, false)
  t.match(r.firstProblem, /line 3: chain "proxy-a" seq 3: prev_hash does not match/)
})

t.test('a deleted line is found', async (t) => {
  const dir = await chainDir(t.testdir(), 5)
  const file = onlyFile(dir)
  const ls = lines(file)
  ls.splice(1, 1)
  write(file, ls)
  const r = await verifyAuditFiles(dir)
  t.equal(r.ok, false)
  t.match(r.firstProblem, /line 2: chain "proxy-a" seq 3 where seq 2 was expected \(record removed or reordered\)/)
})

t.test('two swapped lines are found', async (t) => {
  const dir = await chainDir(t.testdir(), 5)
  const file = onlyFile(dir)
  const ls = lines(file)
  ;[ls[2], ls[3]] = [ls[3], ls[2]]
  write(file, ls)
  const r = await verifyAuditFiles(dir)
  t.equal(r.ok, false)
  t.match(r.firstProblem, /line 3: chain "proxy-a" seq 4 where seq 3 was expected/)
})

t.test('a deleted file (the first of a rotated chain) is found', async (t) => {
  const dir = await chainDir(t.testdir(), 8, 2500)
  const files = readdirSync(dir).sort()
  t.ok(files.length > 2)
  unlinkSync(join(dir, files[0]))
  const r = await verifyAuditFiles(dir)
  t.equal(r.ok, false)
  t.match(r.firstProblem, new RegExp(`^${files[1].replace(/\./g, '\\.')} line 1: .*seq \\d+ where seq 1 was expected`))
})

t.test('a deleted file in the middle of a rotated chain is found', async (t) => {
  const dir = await chainDir(t.testdir(), 8, 2500)
  const files = readdirSync(dir).sort()
  unlinkSync(join(dir, files[1]))
  const r = await verifyAuditFiles(dir)
  t.equal(r.ok, false)
  t.match(r.firstProblem, new RegExp(`^${files[2].replace(/\./g, '\\.')} line 1: .*removed or reordered`))
})

t.test('garbage, blank and torn lines are named', async (t) => {
  for (const [label, mutate, expected] of [
    ['not JSON', (ls: string[]) => { ls[1] = 'hello' }, /line 2: not valid JSON/],
    ['a blank line', (ls: string[]) => { ls.splice(1, 0, '') }, /line 2: empty line/],
    ['not a record', (ls: string[]) => { ls[0] = '{"a":1}' }, /line 1: not an audit record/]
  ] as const) {
    const dir = await chainDir(t.testdir(), 3)
    const file = onlyFile(dir)
    const ls = lines(file)
    mutate(ls)
    write(file, ls)
    t.match((await verifyAuditFiles(dir)).firstProblem, expected, label)
  }
  const dir = await chainDir(join(t.testdir(), 'torn'), 2)
  const file = onlyFile(dir)
  writeFileSync(file, readFileSync(file, 'utf8') + '{"half":')
  t.match((await verifyAuditFiles(dir)).firstProblem, /line 3: incomplete last line/)
})

t.test('a missing directory does not verify', async (t) => {
  const r = await verifyAuditFiles(join(t.testdir(), 'nope'))
  t.equal(r.ok, false)
  t.match(r.firstProblem, /cannot read audit directory/)
})
