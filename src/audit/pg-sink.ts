// PostgreSQL sink: one INSERT per record in a transaction that locks this instance's chain-head row, committed before returning.

import pg from 'pg'
import { chainRecord } from './chain.js'
import { ensureChainHead, insertRecordSql, migrateAuditDatabase, quoteSchema, recordToParams } from './pg-schema.js'
import type { AuditRecord } from './record.js'
import { abortReason, errorText, lazyInit, silentLog, type AuditLog, type AuditSink } from './sink.js'

export interface PgSinkOptions {
  databaseUrl: string
  schema?: string
  instanceId: string
  /** Bounds connecting, each statement and lock waits, so a hung server frees its connection. */
  timeoutMs: number
  log?: AuditLog
}

/** A pool whose every wait is bounded by timeoutMs. */
export function openAuditPool (databaseUrl: string, timeoutMs: number, log: AuditLog = silentLog): pg.Pool {
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

export function openPgSink (options: PgSinkOptions): AuditSink & { readonly pool: pg.Pool, readonly schema: string } {
  const schema = options.schema ?? 'public'
  const s = quoteSchema(schema)
  const pool = openAuditPool(options.databaseUrl, options.timeoutMs, options.log)
  const insertSql = insertRecordSql(schema)
  let closed = false

  const state = lazyInit(async () => {
    const client = await pool.connect()
    try {
      await migrateAuditDatabase(client, schema)
      await ensureChainHead(client, schema, options.instanceId)
      client.release()
    } catch (err) {
      client.release(err instanceof Error ? err : true)
      throw err
    }
  })

  async function append (body: Parameters<AuditSink['append']>[0], signal: AbortSignal): Promise<AuditRecord> {
    if (closed) throw new Error('audit database sink is closed')
    await state.ready()
    if (signal.aborted) throw abortReason(signal)
    const client = await pool.connect()
    try {
      if (signal.aborted) throw abortReason(signal)
      await client.query('BEGIN')
      const head = await client.query<{ seq: string, hash: string }>(
        `SELECT seq, hash FROM ${s}.audit_chain_heads WHERE instance_id = $1 FOR UPDATE`, [options.instanceId])
      if (head.rows.length === 0) throw new Error(`audit chain head for instance "${options.instanceId}" is missing`)
      const record = chainRecord(body, { seq: Number(head.rows[0].seq), hash: head.rows[0].hash })
      await client.query(insertSql, recordToParams(record))
      await client.query(`UPDATE ${s}.audit_chain_heads SET seq = $2, hash = $3, updated_at = now() WHERE instance_id = $1`,
        [options.instanceId, record.seq, record.hash])
      // A caller that has already been answered 503 must not leave a record claiming otherwise.
      if (signal.aborted) throw abortReason(signal)
      await client.query('COMMIT')
      client.release()
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
    append,
    close: async () => {
      if (closed) return
      closed = true
      await pool.end()
    }
  }
}
