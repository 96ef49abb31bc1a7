// PostgreSQL audit schema: versioned migrations (run under an advisory lock) and the mapping between rows and records.

import type { ClientBase } from 'pg'
import { GENESIS_HASH } from './chain.js'
import { AUDIT_RECORD_FIELDS, type AuditOutcome, type AuditRecord } from './record.js'

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/** A schema name checked and double-quoted for SQL. */
export function quoteSchema (schema: string): string {
  if (!IDENT.test(schema)) throw new Error(`audit database schema must be a plain SQL identifier, got ${JSON.stringify(schema)}`)
  return `"${schema}"`
}

/** Migration n (index + 1) as SQL statements for schema `s` (already quoted). */
export const AUDIT_MIGRATIONS: ReadonlyArray<(s: string) => string[]> = [
  (s) => [
    `CREATE TABLE ${s}.audit_records (
      instance_id text NOT NULL,
      seq bigint NOT NULL CHECK (seq >= 1),
      id uuid NOT NULL UNIQUE,
      "time" timestamptz NOT NULL,
      request_id text NOT NULL,
      route text NOT NULL,
      tenant text,
      caller_ip text,
      user_agent text,
      speke_version text,
      content_id text,
      requested_kids text[] NOT NULL,
      drm_systems text[] NOT NULL,
      track_types text[] NOT NULL,
      key_periods text[] NOT NULL,
      upstream_status integer,
      upstream_latency_ms integer,
      outcome text NOT NULL CHECK (outcome IN ('ok', 'rejected', 'upstream_error')),
      status integer NOT NULL,
      error text,
      returned_kids text[] NOT NULL,
      key_fingerprints text[] NOT NULL,
      request_sha256 text,
      response_sha256 text,
      prev_hash text NOT NULL,
      hash text NOT NULL,
      PRIMARY KEY (instance_id, seq)
    )`,
    `CREATE INDEX audit_records_time_idx ON ${s}.audit_records ("time" DESC, instance_id DESC, seq DESC)`,
    `CREATE INDEX audit_records_tenant_idx ON ${s}.audit_records (tenant, "time" DESC)`,
    `CREATE INDEX audit_records_content_idx ON ${s}.audit_records (content_id, "time" DESC)`,
    `CREATE INDEX audit_records_requested_kids_idx ON ${s}.audit_records USING gin (requested_kids)`,
    `CREATE INDEX audit_records_returned_kids_idx ON ${s}.audit_records USING gin (returned_kids)`,
    `CREATE INDEX audit_records_fingerprints_idx ON ${s}.audit_records USING gin (key_fingerprints)`,
    `CREATE TABLE ${s}.audit_chain_heads (
      instance_id text PRIMARY KEY,
      seq bigint NOT NULL,
      hash text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`
  ]
]

/** Creates the schema and applies missing migrations; safe to run concurrently from several instances. Returns the versions applied now. */
export async function migrateAuditDatabase (client: ClientBase, schema: string): Promise<number[]> {
  const s = quoteSchema(schema)
  const applied: number[] = []
  await client.query('BEGIN')
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`speke-proxy-audit:${schema}`])
    const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])
    if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${s}`)
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.audit_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`)
    const done = await client.query<{ version: number }>(`SELECT version FROM ${s}.audit_migrations`)
    const have = new Set(done.rows.map((r) => r.version))
    for (const [i, migration] of AUDIT_MIGRATIONS.entries()) {
      const version = i + 1
      if (have.has(version)) continue
      for (const sql of migration(s)) await client.query(sql)
      await client.query(`INSERT INTO ${s}.audit_migrations (version) VALUES ($1)`, [version])
      applied.push(version)
    }
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
  return applied
}

/** Ensures this instance has a chain-head row, starting from its last stored record if the row is missing. */
export async function ensureChainHead (client: ClientBase, schema: string, instanceId: string): Promise<void> {
  const s = quoteSchema(schema)
  await client.query(
    `INSERT INTO ${s}.audit_chain_heads (instance_id, seq, hash)
     SELECT $1, COALESCE(last.seq, 0), COALESCE(last.hash, $2)
       FROM (SELECT 1) one
       LEFT JOIN (SELECT seq, hash FROM ${s}.audit_records WHERE instance_id = $1 ORDER BY seq DESC LIMIT 1) last ON true
     ON CONFLICT (instance_id) DO NOTHING`,
    [instanceId, GENESIS_HASH])
}

/** A row of audit_records as node-postgres returns it: the record's fields, with the driver's types for three of them. */
export type AuditRow = Omit<AuditRecord, 'time' | 'seq' | 'outcome'> & { time: Date, seq: string, outcome: string }

export const RECORD_COLUMNS = AUDIT_RECORD_FIELDS.map((f) => f === 'time' ? '"time"' : f).join(', ')

export function rowToRecord (row: AuditRow): AuditRecord {
  return {
    ...row,
    time: row.time.toISOString(),
    seq: Number(row.seq),
    outcome: row.outcome as AuditOutcome
  }
}

export function recordToParams (record: AuditRecord): unknown[] {
  return AUDIT_RECORD_FIELDS.map((f) => record[f])
}

export function insertRecordSql (schema: string): string {
  const s = quoteSchema(schema)
  const params = AUDIT_RECORD_FIELDS.map((_, i) => `$${i + 1}`).join(', ')
  return `INSERT INTO ${s}.audit_records (${RECORD_COLUMNS}) VALUES (${params})`
}
