// Audit queries: filter and page records newest first, from the JSON-lines files or from PostgreSQL.

import { createReadStream } from 'node:fs'
import { join } from 'node:path'
import type pg from 'pg'
import { ProxyError } from '../errors.js'
import { listSegments } from './file-sink.js'
import { quoteSchema, RECORD_COLUMNS, rowToRecord, type AuditRow } from './pg-schema.js'
import { OUTCOMES } from '../request-record.js'
import type { Outcome } from '../request-record.js'
import type { KeyRouteName } from '../protocol.js'
import type { AuditRecord } from './record.js'

export type AuditSource =
  | { kind: 'files', dir: string }
  | { kind: 'postgres', pool: pg.Pool, schema: string }

export interface AuditFilter {
  tenant?: string
  contentId?: string
  /** A key route name (KEY_ROUTE_NAMES). */
  route?: string
  /** Matches requested or returned kids (a UUID, any case, with or without dashes). */
  kid?: string
  /** Matches a returned key's 'hmac-sha256:…' fingerprint (see POST /admin/audit/hash). */
  fingerprint?: string
  outcome?: string
  /** Inclusive lower bound on time (ISO 8601). */
  since?: string | Date
  /** Exclusive upper bound on time (ISO 8601). */
  until?: string | Date
  limit?: number
  cursor?: string
}

export interface AuditPage { records: AuditRecord[], nextCursor?: string }

const DEFAULT_QUERY_LIMIT = 100
const MAX_QUERY_LIMIT = 1000

/** Every key route name (protocol.ts), as records store it in `route`; the Record type keeps the list complete. */
const KEY_ROUTES: Record<KeyRouteName, true> = { speke: true, 'pallycon-v1': true, 'pallycon-v2': true, anevia: true, 'keys-json': true }
const KEY_ROUTE_NAMES = Object.keys(KEY_ROUTES) as readonly KeyRouteName[]

export interface Position { time: string, instance: string, seq: number }

interface Criteria {
  tenant?: string
  contentId?: string
  route?: KeyRouteName
  kid?: string
  fingerprint?: string
  outcome?: Outcome
  since?: string
  until?: string
  limit: number
  after?: Position
}

export const bad = (message: string): ProxyError => new ProxyError('BAD_AUDIT_QUERY', message)

const UUID = /^([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})$/i

/** A KID as records store it (lower case, dashed), from a UUID in any case with or without dashes; else a 400. */
export function normalizeKid (value: string): string {
  const m = UUID.exec(value.trim())
  if (m === null) throw bad('kid must be a UUID (32 hex digits, with or without dashes)')
  return m.slice(1).join('-').toLowerCase()
}

/** A page size from 1 to MAX_QUERY_LIMIT, else a 400. */
export function checkLimit (limit: number | undefined, fallback = DEFAULT_QUERY_LIMIT): number {
  const n = limit ?? fallback
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_QUERY_LIMIT) throw bad(`limit must be an integer from 1 to ${MAX_QUERY_LIMIT}`)
  return n
}

export function toIso (value: string | Date, name: string): string {
  const date = value instanceof Date ? value : new Date(value)
  if (Number.isNaN(date.getTime()) || (typeof value === 'string' && !/^\d{4}-\d{2}-\d{2}/.test(value))) throw bad(`${name} must be an ISO 8601 time`)
  return date.toISOString()
}

/** A page's end as the opaque cursor the client passes back: base64url of a JSON array. */
export function encodeCursor (values: Array<string | number>): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url')
}

/** The array inside a cursor, given to `read` (which returns undefined for a wrong shape); anything else is a 400. */
export function decodeCursor<T> (cursor: string, read: (values: unknown[]) => T | undefined): T {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {}
  const decoded = Array.isArray(value) ? read(value) : undefined
  if (decoded === undefined) throw bad('cursor is not one this server returned')
  return decoded
}

function readPosition (values: unknown[]): Position | undefined {
  const [time, instance, seq] = values
  if (values.length !== 3 || typeof time !== 'string' || typeof instance !== 'string' || typeof seq !== 'number' || !Number.isSafeInteger(seq)) return undefined
  return { time: toIso(time, 'cursor'), instance, seq }
}

function criteria (filter: AuditFilter): Criteria {
  const limit = checkLimit(filter.limit)
  if (filter.outcome !== undefined && !(OUTCOMES as readonly string[]).includes(filter.outcome)) throw bad(`outcome must be one of ${OUTCOMES.join(', ')}`)
  if (filter.route !== undefined && !(KEY_ROUTE_NAMES as readonly string[]).includes(filter.route)) throw bad(`route must be one of ${KEY_ROUTE_NAMES.join(', ')}`)
  return {
    tenant: filter.tenant,
    contentId: filter.contentId,
    route: filter.route as KeyRouteName | undefined,
    kid: filter.kid === undefined ? undefined : normalizeKid(filter.kid),
    fingerprint: filter.fingerprint?.trim().toLowerCase(),
    outcome: filter.outcome as Outcome | undefined,
    since: filter.since === undefined ? undefined : toIso(filter.since, 'since'),
    until: filter.until === undefined ? undefined : toIso(filter.until, 'until'),
    limit,
    after: filter.cursor === undefined ? undefined : decodeCursor(filter.cursor, readPosition)
  }
}

function cursorOf (r: AuditRecord): Array<string | number> {
  return [r.time, r.instance_id, r.seq]
}

export function positionOf (r: AuditRecord): Position {
  return { time: r.time, instance: r.instance_id, seq: r.seq }
}

/** Newest first: time, then instance id, then seq, all descending. */
export function compareDesc (a: Position, b: Position): number {
  if (a.time !== b.time) return a.time < b.time ? 1 : -1
  if (a.instance !== b.instance) return a.instance < b.instance ? 1 : -1
  return b.seq - a.seq
}

function matches (r: AuditRecord, c: Criteria): boolean {
  return (c.tenant === undefined || r.tenant === c.tenant) &&
    (c.contentId === undefined || r.content_id === c.contentId) &&
    (c.route === undefined || r.route === c.route) &&
    (c.kid === undefined || r.requested_kids.includes(c.kid) || r.returned_kids.includes(c.kid)) &&
    (c.fingerprint === undefined || r.key_fingerprints.includes(c.fingerprint)) &&
    (c.outcome === undefined || r.outcome === c.outcome) &&
    (c.since === undefined || r.time >= c.since) &&
    (c.until === undefined || r.time < c.until) &&
    (c.after === undefined || compareDesc(positionOf(r), c.after) > 0)
}

function isRecord (value: unknown): value is AuditRecord {
  if (typeof value !== 'object' || value === null) return false
  const r = value as Partial<AuditRecord>
  return typeof r.time === 'string' && typeof r.instance_id === 'string' && typeof r.seq === 'number' &&
    Array.isArray(r.requested_kids) && Array.isArray(r.returned_kids) && Array.isArray(r.key_fingerprints)
}

/**
 * Every parseable record line of every segment (unparseable lines are verify's business, not the query's); with
 * `sinceDay` (YYYYMMDD) segments of earlier UTC days are skipped: a segment holds no record later than its day.
 */
export async function * fileRecords (dir: string, sinceDay?: string): AsyncGenerator<AuditRecord> {
  for (const seg of await listSegments(dir)) {
    if (sinceDay !== undefined && seg.day < sinceDay) continue
    let rest = ''
    for await (const chunk of createReadStream(join(dir, seg.name), { encoding: 'utf8' })) {
      const lines = (rest + String(chunk)).split('\n')
      rest = lines.pop() ?? ''
      for (const line of lines) {
        let value: unknown
        try { value = JSON.parse(line) } catch { continue }
        if (isRecord(value)) yield value
      }
    }
  }
}

async function queryFiles (dir: string, c: Criteria): Promise<AuditPage> {
  const found: AuditRecord[] = []
  for await (const r of fileRecords(dir)) if (matches(r, c)) found.push(r)
  found.sort((a, b) => compareDesc(positionOf(a), positionOf(b)))
  return page(found, c.limit)
}

async function queryDatabase (pool: pg.Pool, schema: string, c: Criteria): Promise<AuditPage> {
  const where: string[] = []
  const params: unknown[] = []
  const add = (sql: (p: string) => string, value: unknown): void => { params.push(value); where.push(sql(`$${params.length}`)) }
  if (c.tenant !== undefined) add((p) => `tenant = ${p}`, c.tenant)
  if (c.contentId !== undefined) add((p) => `content_id = ${p}`, c.contentId)
  if (c.route !== undefined) add((p) => `route = ${p}`, c.route)
  if (c.kid !== undefined) add((p) => `(requested_kids @> ARRAY[${p}::text] OR returned_kids @> ARRAY[${p}::text])`, c.kid)
  if (c.fingerprint !== undefined) add((p) => `key_fingerprints @> ARRAY[${p}::text]`, c.fingerprint)
  if (c.outcome !== undefined) add((p) => `outcome = ${p}`, c.outcome)
  if (c.since !== undefined) add((p) => `"time" >= ${p}::timestamptz`, c.since)
  if (c.until !== undefined) add((p) => `"time" < ${p}::timestamptz`, c.until)
  if (c.after !== undefined) {
    params.push(c.after.time, c.after.instance, c.after.seq)
    const n = params.length
    where.push(`("time", instance_id, seq) < ($${n - 2}::timestamptz, $${n - 1}::text, $${n}::bigint)`)
  }
  params.push(c.limit + 1)
  const sql = `SELECT ${RECORD_COLUMNS} FROM ${quoteSchema(schema)}.audit_records` +
    (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY "time" DESC, instance_id DESC, seq DESC LIMIT $${params.length}`
  const result = await pool.query<AuditRow>(sql, params)
  return page(result.rows.map(rowToRecord), c.limit)
}

function page (sorted: AuditRecord[], limit: number): AuditPage {
  if (sorted.length <= limit) return { records: sorted }
  const records = sorted.slice(0, limit)
  return { records, nextCursor: encodeCursor(cursorOf(records[records.length - 1])) }
}

/** Records matching `filter`, newest first, at most `limit` (default 100, at most 1000); pass nextCursor back for the next page. */
export async function queryAudit (source: AuditSource, filter: AuditFilter): Promise<AuditPage> {
  const c = criteria(filter)
  return source.kind === 'files' ? await queryFiles(source.dir, c) : await queryDatabase(source.pool, source.schema, c)
}
