// PostgreSQL sink: one INSERT per record in a transaction serialised per chain by an advisory lock; needs only INSERT and SELECT.

import pg from 'pg'
import { createHash } from 'node:crypto'
import { chainRecord, GENESIS, headOf, type ChainHead } from './chain.js'
import { checkpointBody, lineOf, newEntry, type CheckpointLine, type CheckpointSettings } from './checkpoint.js'
import { auditSchemaVersion, insertRecordSql, LATEST_AUDIT_VERSION, migrateAuditDatabase, quoteSchema, recordToParams } from './pg-schema.js'
import { canonicalJson, sha256Hex, type AuditRecord } from './record.js'
import { abortReason, errorText, lazyInit, silentLog, type AuditLog, type AuditSink } from './sink.js'

export interface PgSinkOptions {
  databaseUrl: string
  schema?: string
  instanceId: string
  /** Bounds connecting, each statement and lock waits, so a hung server frees its connection. */
  timeoutMs: number
  log?: AuditLog
  /** The owner role's URL for migrations (AUDIT_DATABASE_MIGRATE_URL); without it the writer migrates if it may. */
  migrateUrl?: string
  checkpoints?: CheckpointSettings
}

/** A pool whose every wait is bounded by timeoutMs. */
function openAuditPool (databaseUrl: string, timeoutMs: number, log: AuditLog = silentLog): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: 10,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    statement_timeout: timeoutMs,
    lock_timeout: timeoutMs,
    idle_in_transaction_session_timeout: Math.max(2 * timeoutMs, 1000),
    application_name: 'speke-proxy-audit'
  })
  pool.on('error', (err) => { log.error({ err: errorText(err) }, 'audit database connection failed') })
  return pool
}

/** The advisory-lock key of one chain (a signed 64-bit integer, as text). */
export function chainLockKey (schema: string, instanceId: string): string {
  return createHash('sha256').update(`speke-proxy-audit:${schema}:${instanceId}`).digest().readBigInt64BE(0).toString()
}

/** Brings the schema to the latest version: with the owner URL when given, else as the writer (which may not be allowed). */
async function ensureAuditSchema (
  client: pg.ClientBase, schema: string, migrateUrl: string | undefined, timeoutMs: number
): Promise<void> {
  const version = await auditSchemaVersion(client, schema)
  if (version >= LATEST_AUDIT_VERSION) return
  try {
    if (migrateUrl === undefined) {
      await migrateAuditDatabase(client, schema)
      return
    }
    const owner = new pg.Client({ connectionString: migrateUrl, connectionTimeoutMillis: timeoutMs, application_name: 'speke-proxy-audit-migrate' })
    await owner.connect()
    try { await migrateAuditDatabase(owner, schema) } finally { await owner.end().catch(() => {}) }
  } catch (err) {
    throw new Error(`audit database schema "${schema}" is at version ${version}, this proxy needs ${LATEST_AUDIT_VERSION}, and migrating failed (${errorText(err)}): ` +
      'run "speke-proxy audit migrate --database-url <owner URL>" or set AUDIT_DATABASE_MIGRATE_URL to the owner role')
  }
}

export function sideEntryParams (line: CheckpointLine): unknown[] {
  const e = line.checkpoint
  return [sha256Hex(canonicalJson(e)), e.instance_id, e.kind, e.seq, line.record_seq ?? null, line.record_hash ?? null, JSON.stringify(e)]
}

export function insertSideEntrySql (s: string): string {
  return `INSERT INTO ${s}.audit_checkpoints (entry_hash, instance_id, kind, seq, record_seq, record_hash, entry) VALUES ($1, $2, $3, $4, $5, $6, $7)`
}

function aborted (signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true
}

export function openPgSink (options: PgSinkOptions): AuditSink & { readonly pool: pg.Pool, readonly schema: string } {
  const schema = options.schema ?? 'public'
  const s = quoteSchema(schema)
  const pool = openAuditPool(options.databaseUrl, options.timeoutMs, options.log)
  const insertSql = insertRecordSql(schema)
  const sideSql = insertSideEntrySql(s)
  const lockKey = chainLockKey(schema, options.instanceId)
  const cp = options.checkpoints
  const instance = options.instanceId
  let closed = false

  /** Under the chain lock: the last record, and the last checkpoint record at or before it. */
  async function readHead (client: pg.PoolClient): Promise<{ head: ChainHead, checkpoint?: ChainHead }> {
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [lockKey])
    const { rows } = await client.query<{ seq: string, hash: string, cp_seq: string | null, cp_hash: string | null }>(
      `SELECT l.seq, l.hash, c.seq AS cp_seq, c.hash AS cp_hash
         FROM (SELECT seq, hash FROM ${s}.audit_records WHERE instance_id = $1 ORDER BY seq DESC LIMIT 1) l
         LEFT JOIN LATERAL (SELECT seq, hash FROM ${s}.audit_records WHERE instance_id = $1 AND checkpoint IS NOT NULL ORDER BY seq DESC LIMIT 1) c ON true`,
      [instance])
    const row = rows[0]
    if (row === undefined) return { head: GENESIS }
    const head = { seq: Number(row.seq), hash: row.hash }
    if (row.cp_seq === null || row.cp_hash === null) return { head }
    return { head, checkpoint: { seq: Number(row.cp_seq), hash: row.cp_hash } }
  }

  async function insertCheckpoint (client: pg.PoolClient, record: AuditRecord): Promise<CheckpointLine> {
    await client.query(insertSql, recordToParams(record))
    const line = lineOf(record)
    await client.query(sideSql, sideEntryParams(line))
    return line
  }

  /**
   * Meets the chain's last checkpoint (from the side log, never a head row): its record must still be there with its
   * hash (or pruned, with records after it). Otherwise a signed restart record names the head found and the one lost.
   */
  async function meetCheckpoint (client: pg.PoolClient): Promise<CheckpointLine | undefined> {
    if (cp === undefined) return undefined
    await client.query('BEGIN')
    const { head, checkpoint } = await readHead(client)
    const last = await client.query<{ record_seq: string, record_hash: string }>(
      `SELECT record_seq, record_hash FROM ${s}.audit_checkpoints WHERE instance_id = $1 AND kind <> 'pruned' ORDER BY stored_at DESC, seq DESC LIMIT 1`, [instance])
    const expected = last.rows[0]
    if (expected === undefined) { await client.query('COMMIT'); return undefined }
    const target = { seq: Number(expected.record_seq), hash: expected.record_hash }
    const found = await client.query<{ hash: string }>(`SELECT hash FROM ${s}.audit_records WHERE instance_id = $1 AND seq = $2`, [instance, target.seq])
    const pruned = await client.query<{ n: string | null }>(`SELECT max(seq) AS n FROM ${s}.audit_checkpoints WHERE instance_id = $1 AND kind = 'pruned'`, [instance])
    const prunedThrough = Number(pruned.rows[0]?.n ?? 0)
    const met = found.rows[0] !== undefined
      ? found.rows[0].hash === target.hash && head.seq >= target.seq
      : prunedThrough >= target.seq && head.seq > prunedThrough
    if (met) { await client.query('COMMIT'); return undefined }
    const now = new Date()
    const entry = newEntry(cp.signer, 'restart', 'postgres', instance, head, checkpoint?.hash ?? target.hash, now, target)
    const line = await insertCheckpoint(client, chainRecord(checkpointBody(entry, now), head))
    await client.query('COMMIT')
    return line
  }

  const state = lazyInit(async () => {
    const client = await pool.connect()
    let line: CheckpointLine | undefined
    try {
      await ensureAuditSchema(client, schema, options.migrateUrl, options.timeoutMs)
      line = await meetCheckpoint(client)
      client.release()
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      client.release(err instanceof Error ? err : true)
      throw err
    }
    if (line !== undefined) {
      options.log?.error({ instance, lost: line.checkpoint.expected }, 'audit chain does not reach its last signed checkpoint (records removed?): started again with a signed restart record')
      cp?.onCheckpoint?.(line)
    }
  })

  /** One transaction: the record (when given), then a checkpoint when due or forced; committed before returning. */
  async function write (body: Parameters<AuditSink['append']>[0] | undefined, signal: AbortSignal | undefined, force: boolean): Promise<AuditRecord | undefined> {
    if (closed) throw new Error('audit database sink is closed')
    await state.ready()
    if (aborted(signal)) throw abortReason(signal as AbortSignal)
    const client = await pool.connect()
    try {
      if (aborted(signal)) throw abortReason(signal as AbortSignal)
      await client.query('BEGIN')
      const { head, checkpoint } = await readHead(client)
      let next = head
      let record: AuditRecord | undefined
      if (body !== undefined) {
        record = chainRecord(body, head)
        await client.query(insertSql, recordToParams(record))
        next = headOf(record)
      }
      let line: CheckpointLine | undefined
      const unsigned = next.seq - (checkpoint?.seq ?? 0)
      if (cp !== undefined && unsigned > 0 && (force || unsigned >= cp.everyRecords)) {
        const now = new Date()
        const entry = newEntry(cp.signer, 'checkpoint', 'postgres', instance, next, checkpoint?.hash, now)
        line = await insertCheckpoint(client, chainRecord(checkpointBody(entry, now), next))
      }
      // A caller that has already been answered 503 must not leave a record claiming otherwise.
      if (aborted(signal)) throw abortReason(signal as AbortSignal)
      await client.query('COMMIT')
      client.release()
      if (line !== undefined) cp?.onCheckpoint?.(line)
      return record
    } catch (err) {
      // The connection may be mid-transaction or wedged: discard it rather than reuse it.
      client.release(err instanceof Error ? err : true)
      throw err
    }
  }

  return {
    name: 'postgres',
    pool,
    schema,
    init: state.ready,
    probe: async () => {
      await state.ready()
      await pool.query('SELECT 1')
    },
    append: async (body, signal) => (await write(body, signal, false)) as AuditRecord,
    checkpoint: async () => { if (cp !== undefined && !closed) await write(undefined, undefined, true) },
    close: async () => {
      if (closed) return
      closed = true
      await pool.end()
    }
  }
}
