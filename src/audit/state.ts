// Audit store state: the newest record and signed checkpoint, and a verification of every chain, cached for a minute.

import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { KeyObject } from 'node:crypto'
import type pg from 'pg'
import type { SignedEntry } from './checkpoint.js'
import { listSegments, readSideLog, readTail, SIDE_LOG_PATTERN } from './file-sink.js'
import { quoteSchema } from './pg-schema.js'
import type { AuditSource } from './query.js'
import { errorText } from './sink.js'
import { verifyAuditFiles, verifyAuditRows, type VerifyResult } from './verify.js'

interface LastRecord { time: string, seq: number, instance_id: string }

/** The newest signed entry (checkpoint or restart; nothing in it is secret, a signature is public) and the seq of its record. */
type LastCheckpoint = SignedEntry & { record_seq?: number }

interface Verification {
  ok: boolean
  /** Records that linked up (all of them when ok; those before the first problem otherwise). */
  checked_records: number
  /** When this verification ran (answers reuse it for VERIFY_CACHE_MS). */
  at: string
  /** The first problem, naming the file line or row. */
  error?: string
  /** False when the server was given no public key: then only the hash links were checked, not the signatures. */
  signatures_checked: boolean
}

export interface AuditState {
  sink: 'files' | 'postgres'
  /** Records in the store, as counted by the verification (present when it passed). */
  records?: number
  last_record: LastRecord | null
  last_checkpoint: LastCheckpoint | null
  verification: Verification
}

/**
 * A full verification reads every record, so its cost grows with the store: it runs on request, at most once per
 * VERIFY_CACHE_MS (concurrent requests share the run in flight), and later answers within that time reuse its result.
 * The newest record and checkpoint are read fresh on every request (one indexed row, or the tail of each chain's newest file).
 */
const VERIFY_CACHE_MS = 60_000

/** A store directory that does not exist (yet) holds nothing. */
async function unlessMissing<T> (read: Promise<T>, none: T): Promise<T> {
  try {
    return await read
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return none
    throw err
  }
}

const isNewer = (a: LastRecord, b: LastRecord): boolean =>
  a.time !== b.time ? a.time > b.time : a.instance_id !== b.instance_id ? a.instance_id > b.instance_id : a.seq > b.seq

async function lastFileRecord (dir: string): Promise<LastRecord | null> {
  const segments = await listSegments(dir)
  let newest: LastRecord | null = null
  for (const tag of new Set(segments.map((s) => s.tag))) {
    const mine = segments.filter((s) => s.tag === tag)
    for (let i = mine.length - 1; i >= 0; i--) {
      const { lastLine } = await readTail(join(dir, mine[i].name))
      if (lastLine === undefined) continue
      let value: unknown
      try { value = JSON.parse(lastLine) } catch { break }
      const r = value as Partial<LastRecord> | null
      if (typeof r?.time === 'string' && typeof r.seq === 'number' && typeof r.instance_id === 'string') {
        const found = { time: r.time, seq: r.seq, instance_id: r.instance_id }
        if (newest === null || isNewer(found, newest)) newest = found
      }
      break
    }
  }
  return newest
}

async function lastFileCheckpoint (dir: string): Promise<LastCheckpoint | null> {
  let newest: LastCheckpoint | null = null
  for (const name of (await readdir(dir)).filter((n) => SIDE_LOG_PATTERN.test(n))) {
    for (const line of await readSideLog(join(dir, name))) {
      if (line.checkpoint.kind === 'pruned') continue
      if (newest === null || line.checkpoint.time > newest.time) {
        newest = { ...line.checkpoint, ...(line.record_seq === undefined ? {} : { record_seq: line.record_seq }) }
      }
    }
  }
  return newest
}

async function lastDatabaseRecord (pool: pg.Pool, s: string): Promise<LastRecord | null> {
  const { rows } = await pool.query<{ time: Date, seq: string, instance_id: string }>(
    `SELECT "time", seq, instance_id FROM ${s}.audit_records ORDER BY "time" DESC, instance_id DESC, seq DESC LIMIT 1`)
  const row = rows[0]
  return row === undefined ? null : { time: row.time.toISOString(), seq: Number(row.seq), instance_id: row.instance_id }
}

async function lastDatabaseCheckpoint (pool: pg.Pool, s: string): Promise<LastCheckpoint | null> {
  const { rows } = await pool.query<{ entry: SignedEntry, record_seq: string | null }>(
    `SELECT entry, record_seq FROM ${s}.audit_checkpoints WHERE kind <> 'pruned' ORDER BY stored_at DESC LIMIT 1`)
  const row = rows[0]
  return row === undefined ? null : { ...row.entry, ...(row.record_seq === null ? {} : { record_seq: Number(row.record_seq) }) }
}

export interface StateReaderOptions {
  /** The public key of AUDIT_SIGNING_KEY: with it, checkpoint signatures are verified too. */
  publicKey?: KeyObject
  cacheMs?: number
  now?: () => Date
}

/** Reads the state of one audit store; keeps the last verification for `cacheMs` (default VERIFY_CACHE_MS). */
export function createStateReader (source: AuditSource, options: StateReaderOptions = {}): () => Promise<AuditState> {
  const cacheMs = options.cacheMs ?? VERIFY_CACHE_MS
  const now = options.now ?? (() => new Date())
  let cached: { result: VerifyResult, at: Date } | undefined
  let running: Promise<{ result: VerifyResult, at: Date }> | undefined

  async function verifyNow (): Promise<{ result: VerifyResult, at: Date }> {
    const at = now()
    const opts = { publicKey: options.publicKey, live: true }
    let result: VerifyResult
    try {
      result = source.kind === 'files' ? await verifyAuditFiles(source.dir, opts) : await verifyAuditRows(source.pool, source.schema, opts)
    } catch (err) {
      result = { ok: false, records: 0, chains: 0, firstProblem: errorText(err) }
    }
    return { result, at }
  }

  async function verification (): Promise<{ result: VerifyResult, at: Date }> {
    if (cached !== undefined && now().getTime() - cached.at.getTime() < cacheMs) return cached
    running ??= verifyNow().then((v) => { cached = v; return v }).finally(() => { running = undefined })
    return await running
  }

  return async () => {
    const s = source.kind === 'postgres' ? quoteSchema(source.schema) : ''
    const [lastRecord, lastCheckpoint, { result, at }] = await Promise.all([
      source.kind === 'files' ? unlessMissing(lastFileRecord(source.dir), null) : lastDatabaseRecord(source.pool, s),
      source.kind === 'files' ? unlessMissing(lastFileCheckpoint(source.dir), null) : lastDatabaseCheckpoint(source.pool, s),
      verification()
    ])
    return {
      sink: source.kind,
      ...(result.ok ? { records: result.records } : {}),
      last_record: lastRecord,
      last_checkpoint: lastCheckpoint,
      verification: {
        ok: result.ok,
        checked_records: result.records,
        at: at.toISOString(),
        ...(result.firstProblem === undefined ? {} : { error: result.firstProblem }),
        signatures_checked: options.publicKey !== undefined
      }
    }
  }
}
