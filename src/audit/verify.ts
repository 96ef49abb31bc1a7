// Offline verification: walks every chain in an audit directory or database, checks every checkpoint signature, and names
// the first record, file line or row that was altered, removed, reordered or cut (see checkpoint.ts for what is decided how).

import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { KeyObject } from 'node:crypto'
import type pg from 'pg'
import { startWalk, walkRecord, type ChainHead, type ChainWalk } from './chain.js'
import { entryProblem, type CheckpointLine, type CheckpointStore, type SignedEntry, type Verifier } from './checkpoint.js'
import { listSegments, readLines, SIDE_LOG_PATTERN } from './file-sink.js'
import { quoteSchema, recordColumnsOf, rowToRecord, type AuditRow } from './pg-schema.js'
import type { AuditRecord } from './record.js'
import { errorText } from './sink.js'
import { keyIdOf } from './signing-key.js'

export interface VerifyOptions {
  /** The Ed25519 public key every checkpoint must be signed with; without it signatures are not checked. */
  publicKey?: KeyObject
  /** A process log (pino JSON lines) holding "audit checkpoint" lines: every checkpoint in it must still be in the store. */
  anchors?: string
  /**
   * The store is being written while it is read (GET /admin/audit/state): bytes after the last newline of a chain's
   * newest file are a write in flight, not a torn line.
   */
  live?: boolean
}

export interface VerifyResult {
  ok: boolean
  records: number
  chains: number
  /** Names the file and line, or the row, and what is wrong with it. */
  firstProblem?: string
  /** With a public key: signed checkpoints seen in the chains. */
  checkpoints?: number
  /** With a public key: what is not an error but not proven either (records after the last checkpoint). */
  warnings?: string[]
}

interface Located<T> { value: T, where: string }

interface ChainState {
  /** Where the chain's last record is. */
  lastWhere: string
  /** The signed prune point it begins after (0: it begins at seq 1). */
  startedAfter: number
  /** seq → hash of every checkpoint record. */
  checkpoints: Map<number, string>
  lastCheckpoint?: number
  since: number
}

/** The state of one verification: side entries first, then records in chain order, then the cross-checks. */
function createCheck (store: CheckpointStore, options: VerifyOptions) {
  const verifier: Verifier | undefined = options.publicKey === undefined
    ? undefined
    : { publicKey: options.publicKey, keyId: keyIdOf(options.publicKey) }
  const prunes = new Map<string, Map<number, Located<SignedEntry>>>()
  const sideLines: Array<Located<CheckpointLine>> = []
  const chains = new Map<string, ChainState>()
  const walk: ChainWalk = startWalk((instance, seq) => {
    const p = prunes.get(instance)?.get(seq)
    return p === undefined ? undefined : { seq, hash: p.value.head }
  })
  let signed = 0
  let problem: string | undefined

  const fail = (text: string): void => { problem ??= text }

  /** A line of a side log (or a row of audit_checkpoints): checked now, matched against the chain at the end. */
  function side (value: unknown, where: string): void {
    const line = value as Partial<CheckpointLine> | null
    const bad = typeof line === 'object' && line !== null ? entryProblem(line.checkpoint, verifier) : 'not a checkpoint line'
    if (bad !== undefined) { fail(`${where}: ${bad}`); return }
    const l = line as CheckpointLine
    if (l.checkpoint.kind === 'pruned') {
      const byInstance = prunes.get(l.checkpoint.instance_id) ?? new Map<number, Located<SignedEntry>>()
      byInstance.set(l.checkpoint.seq, { value: l.checkpoint, where })
      prunes.set(l.checkpoint.instance_id, byInstance)
      return
    }
    sideLines.push({ value: l, where })
  }

  function record (value: unknown, where: string): void {
    if (problem !== undefined) return
    const bad = walkRecord(walk, value)
    if (bad !== undefined) { fail(`${where}: ${bad}`); return }
    const r = value as AuditRecord
    const chain: ChainState = chains.get(r.instance_id) ?? { lastWhere: where, startedAfter: r.seq - 1, checkpoints: new Map(), since: 0 }
    chains.set(r.instance_id, chain)
    chain.lastWhere = where
    if (r.checkpoint === undefined) { chain.since++; return }
    const e = r.checkpoint
    const at = `${where}: chain ${JSON.stringify(r.instance_id)} seq ${r.seq}`
    const bad2 = entryProblem(e, verifier)
    if (bad2 !== undefined) { fail(`${at}: checkpoint ${bad2}`); return }
    if (e.kind === 'pruned' || e.instance_id !== r.instance_id || e.store !== store) { fail(`${at}: checkpoint entry does not belong here (kind ${e.kind}, instance ${JSON.stringify(e.instance_id)}, store ${e.store})`); return }
    if (e.seq !== r.seq - 1 || e.head !== r.prev_hash) {
      const from = chain.lastCheckpoint ?? chain.startedAfter
      fail(`${at}: checkpoint signed seq ${e.seq} with head ${e.head.slice(0, 16)}…, but the record before it is seq ${r.seq - 1} with hash ${r.prev_hash.slice(0, 16)}…: ` +
        `a record between seq ${from + 1} and ${r.seq - 1} was altered, removed or inserted after it was signed (every hash recomputed)`)
      return
    }
    if (e.kind === 'restart') {
      fail(`${at}: signed restart record: the writer found its chain cut back to seq ${e.seq}` +
        (e.expected == null ? '' : `, short of its last checkpoint (record seq ${e.expected.seq})`) + ': records were removed while it was stopped')
      return
    }
    signed++
    chain.checkpoints.set(r.seq, r.hash)
    chain.lastCheckpoint = r.seq
    chain.since = 0
  }

  /** A checkpoint known outside the chain (side log, anchor log) must be in it, unless pruned. */
  function held (l: CheckpointLine, where: string): void {
    if (problem !== undefined || l.record_seq === undefined || l.record_hash === undefined) return
    const instance = l.checkpoint.instance_id
    const chain = chains.get(instance)
    if (chain !== undefined && l.record_seq <= chain.startedAfter) return
    const head: ChainHead | undefined = walk.heads.get(instance)
    if (chain === undefined || head === undefined) {
      fail(`chain ${JSON.stringify(instance)}: ${where} holds its checkpoint at seq ${l.record_seq}, but the store holds no record of this chain (every file or row of it removed)`)
    } else if (head.seq < l.record_seq) {
      fail(`chain ${JSON.stringify(instance)} ends at seq ${head.seq} (${chain.lastWhere}), before its checkpoint at seq ${l.record_seq} held in ${where}: records removed from the end (cut tail)`)
    } else if (chain.checkpoints.get(l.record_seq) !== l.record_hash) {
      fail(`chain ${JSON.stringify(instance)}: ${where} holds a checkpoint at seq ${l.record_seq} that the store no longer holds (records at or before it rewritten)`)
    }
  }

  async function anchors (path: string): Promise<void> {
    for await (const { line, lineNo } of readLines(path)) {
      if (problem !== undefined) return
      if (!line.includes('audit_checkpoint')) continue
      let value: unknown
      try { value = JSON.parse(line) } catch { continue }
      const a = (value as { audit_checkpoint?: CheckpointLine } | null)?.audit_checkpoint
      if (a === undefined) continue
      const where = `anchor log ${path} line ${lineNo}`
      const bad = entryProblem(a.checkpoint, verifier)
      if (bad !== undefined) { fail(`${where}: ${bad}`); continue }
      if (a.checkpoint.store !== store) continue
      held(a, where)
    }
  }

  async function finish (): Promise<VerifyResult> {
    for (const l of sideLines) held(l.value, l.where)
    if (problem === undefined && options.anchors !== undefined) {
      try { await anchors(options.anchors) } catch (err) { fail(`cannot read the anchor log ${options.anchors}: ${errorText(err)}`) }
    }
    const base = { records: walk.records, chains: walk.heads.size }
    const extra: Partial<VerifyResult> = {}
    if (verifier !== undefined) {
      extra.checkpoints = signed
      extra.warnings = [...chains.entries()].filter(([, c]) => c.since > 0).map(([instance, c]) =>
        `chain ${JSON.stringify(instance)}: ${c.since} unanchored record${c.since === 1 ? '' : 's'} after ${c.lastCheckpoint === undefined ? 'its start (no checkpoint yet)' : `its last checkpoint (seq ${c.lastCheckpoint})`}, up to ${c.lastWhere}: not yet signed, so an edit there with every hash recomputed would not show`)
    }
    return problem === undefined ? { ok: true, ...base, ...extra } : { ok: false, ...base, firstProblem: problem, ...extra }
  }

  return { side, record, finish, fail, failed: () => problem !== undefined }
}

function parse (line: string): unknown {
  if (line.trim() === '') return 'empty line'
  try { return JSON.parse(line) } catch { return undefined }
}

/** Verifies every chain in the JSON-lines files of `dir`, file by file in write order, and its side logs. */
export async function verifyAuditFiles (dir: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const check = createCheck('file', options)
  let segments
  let names: string[]
  try {
    names = await readdir(dir)
    segments = await listSegments(dir)
  } catch (err) {
    check.fail(`cannot read audit directory ${dir}: ${errorText(err)}`)
    return await check.finish()
  }
  for (const name of names.filter((n) => SIDE_LOG_PATTERN.test(n)).sort()) {
    for await (const { line, lineNo, torn } of readLines(join(dir, name))) {
      if (torn === true) continue // a side-log append cut by a crash; the chain holds the checkpoint
      const value = parse(line)
      check.side(value, `${name} line ${lineNo}`)
    }
  }
  const newest = new Map(segments.map((seg) => [seg.tag, seg.name]))
  for (const seg of segments) {
    for await (const { line, lineNo, torn } of readLines(join(dir, seg.name))) {
      if (check.failed()) return await check.finish()
      const where = `${seg.name} line ${lineNo}`
      if (torn === true && options.live === true && newest.get(seg.tag) === seg.name) break
      if (torn === true) { check.fail(`${where}: incomplete last line (no newline)`); break }
      if (line.trim() === '') { check.fail(`${where}: empty line`); break }
      const value = parse(line)
      if (value === undefined) { check.fail(`${where}: not valid JSON`); break }
      check.record(value, where)
    }
  }
  return await check.finish()
}

/** Verifies every chain in `schema`.audit_records and its audit_checkpoints side log; never trusts a head row. */
export async function verifyAuditDatabase (databaseUrl: string, schema = 'public', options: VerifyOptions = {}): Promise<VerifyResult> {
  // Loaded only when used: the admin API's state check reads through the server's own pool.
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'speke-proxy-audit-verify', connectionTimeoutMillis: 10_000 })
  try {
    await client.connect()
  } catch (err) {
    const check = createCheck('postgres', options)
    check.fail(`cannot read audit database (schema ${schema}): ${errorText(err)}`)
    return await check.finish()
  }
  try {
    return await verifyAuditRows(client, schema, options)
  } finally {
    await client.end().catch(() => {})
  }
}

/** The same check over an open connection or pool (the server's own pool, for GET /admin/audit/state): pages of 1000 rows. */
export async function verifyAuditRows (client: pg.ClientBase | pg.Pool, schema = 'public', options: VerifyOptions = {}): Promise<VerifyResult> {
  const s = quoteSchema(schema)
  const check = createCheck('postgres', options)
  try {
    const hasSide = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${s}.audit_checkpoints`])
    if (hasSide.rows[0]?.t != null) {
      const side = await client.query<{
        instance_id: string, kind: string, seq: string, record_seq: string | null, record_hash: string | null, entry: SignedEntry
      }>(
        `SELECT instance_id, kind, seq, record_seq, record_hash, entry FROM ${s}.audit_checkpoints ORDER BY instance_id, stored_at, seq`)
      for (const row of side.rows) {
        const line = {
          checkpoint: row.entry,
          ...(row.record_seq === null ? {} : { record_seq: Number(row.record_seq) }),
          ...(row.record_hash === null ? {} : { record_hash: row.record_hash })
        }
        check.side(line,
          `audit_checkpoints row (instance_id=${JSON.stringify(row.instance_id)}, kind=${row.kind}, seq=${row.seq})`)
      }
    }
    const columns = await recordColumnsOf(client, schema)
    let after: [string, string] = ['', '0']
    for (;;) {
      const { rows } = await client.query<AuditRow>(
        `SELECT ${columns} FROM ${s}.audit_records WHERE (instance_id, seq) > ($1::text, $2::bigint)
         ORDER BY instance_id, seq LIMIT 1000`, after)
      if (rows.length === 0) break
      for (const row of rows) {
        check.record(rowToRecord(row), `row id=${row.id} (instance_id=${JSON.stringify(row.instance_id)}, seq=${row.seq})`)
        if (check.failed()) return await check.finish()
      }
      const last = rows[rows.length - 1]
      after = [last.instance_id, last.seq]
    }
    return await check.finish()
  } catch (err) {
    check.fail(`cannot read audit database (schema ${schema}): ${errorText(err)}`)
    return await check.finish()
  }
}
