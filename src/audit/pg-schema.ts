// PostgreSQL audit schema: versioned migrations (run under an advisory lock) and the mapping between rows and records.

import type { ClientBase } from 'pg'
import type { SignedEntry } from './checkpoint.js'
import type { Outcome } from '../request-record.js'
import { AUDIT_RECORD_FIELDS, type AuditRecord, type RefusalSummary } from './record.js'

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/** A schema name checked and double-quoted for SQL. */
export function quoteSchema (schema: string): string {
  if (!IDENT.test(schema)) throw new Error(`audit database schema must be a plain SQL identifier, got ${JSON.stringify(schema)}`)
  return `"${schema}"`
}

/** Migration n (index + 1) as SQL statements for schema `s` (already quoted). */
const AUDIT_MIGRATIONS: ReadonlyArray<(s: string) => string[]> = [
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
  ],
  // Refusal summaries: the counts of one window; NULL on every other record (and on every record written before).
  (s) => [`ALTER TABLE ${s}.audit_records ADD COLUMN IF NOT EXISTS refusals jsonb`],
  // Signed checkpoints (checkpoint.ts): a column on the records, an append-only side log, and records that refuse
  // UPDATE, DELETE and TRUNCATE (prune deletes as the owner role only, with speke_proxy.audit_prune set). The heads
  // table is gone: the writer finds its head in the records (needing only INSERT and SELECT), and nothing trusts a head row.
  (s) => [
    `ALTER TABLE ${s}.audit_records ADD COLUMN IF NOT EXISTS checkpoint jsonb`,
    `CREATE INDEX IF NOT EXISTS audit_records_checkpoint_idx ON ${s}.audit_records (instance_id, seq) WHERE checkpoint IS NOT NULL`,
    `CREATE TABLE IF NOT EXISTS ${s}.audit_checkpoints (
      entry_hash text PRIMARY KEY,
      instance_id text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('checkpoint', 'restart', 'pruned')),
      seq bigint NOT NULL,
      record_seq bigint,
      record_hash text,
      entry jsonb NOT NULL,
      stored_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`,
    `CREATE INDEX IF NOT EXISTS audit_checkpoints_instance_idx ON ${s}.audit_checkpoints (instance_id, stored_at)`,
    `CREATE OR REPLACE FUNCTION ${s}.audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_records'
         AND current_setting('speke_proxy.audit_prune', true) = 'on'
         AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        RETURN OLD;
      END IF;
      RAISE EXCEPTION 'speke-proxy audit: % on %.% refused: audit records are append-only (speke-proxy audit prune, as the owner role, is the only way to remove them)', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
    END
    $fn$`,
    `CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON ${s}.audit_records FOR EACH ROW EXECUTE FUNCTION ${s}.audit_append_only()`,
    `CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON ${s}.audit_records FOR EACH STATEMENT EXECUTE FUNCTION ${s}.audit_append_only()`,
    `CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON ${s}.audit_checkpoints FOR EACH ROW EXECUTE FUNCTION ${s}.audit_append_only()`,
    `CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON ${s}.audit_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION ${s}.audit_append_only()`,
    `DROP TABLE IF EXISTS ${s}.audit_chain_heads`
  ],
  // Error codes (docs/errors.md) of failed requests: NULL on every other record (and on every record written before).
  (s) => [`ALTER TABLE ${s}.audit_records ADD COLUMN IF NOT EXISTS error_code text`],
  // Encrypted key delivery ('encrypted', NULL otherwise and on every record written before), and the indexes of the admin
  // read API. Key lookup already has its indexes from version 1: GIN on requested_kids and returned_kids, btree on
  // (content_id, time) and (tenant, time); activity reads the time index. The GIN indexes stop using a pending list
  // (fastupdate): unflushed, it made the planner cost a kid lookup above a sequential scan, and its flush lands on
  // whichever audit INSERT overflows it (a latency spike inside the audit write deadline); a record adds a few kids, so
  // writing them straight into the index costs little. New: the newest checkpoint record and side-log entry without a
  // scan (GET /admin/audit/state), and the route filter of GET /admin/audit.
  (s) => [
    `ALTER TABLE ${s}.audit_records ADD COLUMN IF NOT EXISTS delivery text`,
    `ALTER INDEX ${s}.audit_records_requested_kids_idx SET (fastupdate = off)`,
    `ALTER INDEX ${s}.audit_records_returned_kids_idx SET (fastupdate = off)`,
    `ALTER INDEX ${s}.audit_records_fingerprints_idx SET (fastupdate = off)`,
    `CREATE INDEX IF NOT EXISTS audit_records_route_idx ON ${s}.audit_records (route, "time" DESC)`,
    `CREATE INDEX IF NOT EXISTS audit_records_checkpoint_time_idx ON ${s}.audit_records ("time" DESC) WHERE checkpoint IS NOT NULL`,
    `CREATE INDEX IF NOT EXISTS audit_checkpoints_stored_idx ON ${s}.audit_checkpoints (stored_at DESC)`
  ]
]

/** The schema version a database holds (0 when it has no audit tables). */
export async function auditSchemaVersion (client: Pick<ClientBase, 'query'>, schema: string): Promise<number> {
  const s = quoteSchema(schema)
  const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${s}.audit_migrations`])
  if (exists.rows[0]?.t === null || exists.rows[0]?.t === undefined) return 0
  const { rows } = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.audit_migrations`)
  return rows[0]?.v ?? 0
}

export const LATEST_AUDIT_VERSION = AUDIT_MIGRATIONS.length

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

/** A row of audit_records as node-postgres returns it: the record's fields, with the driver's types for some of them. */
export type AuditRow = Omit<AuditRecord, 'time' | 'seq' | 'outcome' | 'refusals' | 'checkpoint' | 'error_code' | 'delivery'> & {
  time: Date
  seq: string
  outcome: string
  refusals: RefusalSummary | null
  checkpoint: SignedEntry | null
  error_code: string | null
  delivery: string | null
}

export const RECORD_COLUMNS = AUDIT_RECORD_FIELDS.map((f) => f === 'time' ? '"time"' : f).join(', ')

/** The record a row stores; `refusals`, `checkpoint`, `error_code` and `delivery` are left out unless set (records hash as written). */
export function rowToRecord (row: AuditRow): AuditRecord {
  const { refusals, checkpoint, error_code: errorCode, delivery, ...rest } = row
  return {
    ...rest,
    time: row.time.toISOString(),
    seq: Number(row.seq),
    outcome: row.outcome as Outcome,
    ...(refusals === null || refusals === undefined ? {} : { refusals }),
    ...(checkpoint === null || checkpoint === undefined ? {} : { checkpoint }),
    ...(errorCode === null || errorCode === undefined ? {} : { error_code: errorCode }),
    // Only 'encrypted' is ever written; any other value is kept as stored so verify sees the row as it is.
    ...(delivery === null || delivery === undefined ? {} : { delivery: delivery as 'encrypted' })
  }
}

/** Columns later migrations added, with their types: a database that predates one reads them as NULL. */
const ADDED_COLUMNS: Partial<Record<keyof AuditRecord, string>> = { refusals: 'jsonb', checkpoint: 'jsonb', error_code: 'text', delivery: 'text' }

/** The select list for records in a database that may predate a migration: a missing added column reads as NULL. */
export async function recordColumnsOf (client: Pick<ClientBase, 'query'>, schema: string): Promise<string> {
  const { rows } = await client.query<{ column_name: string }>(
    "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'audit_records' AND column_name = ANY($2)", [schema, Object.keys(ADDED_COLUMNS)])
  const have = new Set(rows.map((r) => r.column_name))
  return AUDIT_RECORD_FIELDS.map((f) => {
    const added = ADDED_COLUMNS[f]
    return f === 'time' ? '"time"' : added !== undefined && !have.has(f) ? `NULL::${added} AS ${f}` : f
  }).join(', ')
}

export function recordToParams (record: AuditRecord): unknown[] {
  // node-postgres would send an object as text anyway, but a jsonb column wants it as JSON text explicitly.
  return AUDIT_RECORD_FIELDS.map((f) => f === 'refusals' || f === 'checkpoint' ? (record[f] === undefined ? null : JSON.stringify(record[f])) : record[f] ?? null)
}

export function insertRecordSql (schema: string): string {
  const s = quoteSchema(schema)
  const params = AUDIT_RECORD_FIELDS.map((_, i) => `$${i + 1}`).join(', ')
  return `INSERT INTO ${s}.audit_records (${RECORD_COLUMNS}) VALUES (${params})`
}
