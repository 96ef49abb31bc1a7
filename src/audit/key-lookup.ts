// Key lookup: which KIDs went out for a content id (or where one KID went), one entry per (kid, content id, tenant), files or PostgreSQL.

import type pg from 'pg'
import { ProxyError } from '../errors.js'
import type { Outcome } from '../request-record.js'
import { PASSTHROUGH_PREFIX } from '../tenants/registry.js'
import { quoteSchema } from './pg-schema.js'
import { bad, checkLimit, compareDesc, decodeCursor, encodeCursor, fileRecords, normalizeKid, positionOf, toIso, type AuditSource, type Position } from './query.js'
import type { AuditRecord } from './record.js'

export interface KeyLookupFilter {
  contentId?: string
  tenant?: string
  /** A UUID in any case, with or without dashes. */
  kid?: string
  limit?: number
  cursor?: string
}

/** managed: a tenant of TENANTS_FILE; passthrough: `site:<site id>` (a raw PallyCon token); none: a record without a tenant. */
export type TenantKind = 'managed' | 'passthrough' | 'none'

export interface KeyEntry {
  kid: string
  content_id: string | null
  tenant: string | null
  tenant_kind: TenantKind
  /** Union over the requests that named the kid (a record lists a request's systems, tracks and periods, not per kid). */
  drm_systems: string[]
  track_types: string[]
  key_periods: string[]
  /** Times of the first and last ok record that returned the kid; null when it was never issued. */
  first_issued: string | null
  last_issued: string | null
  times_issued: number
  /** From the newest record naming the kid (requested or returned), so a later failure shows. */
  last_outcome: Outcome
  last_status: number
  /** True when every issue of the kid went out encrypted for a DeliveryKey certificate (never in clear); false if never issued. */
  delivered_encrypted: boolean
}

export interface KeyPage { keys: KeyEntry[], nextCursor?: string }

/** Entries held in memory by a scan of the files; a broader filter is refused (400) rather than exhaust memory. */
const MAX_FILE_KEY_GROUPS = 10_000

export function tenantKind (tenant: string | null): TenantKind {
  if (tenant === null) return 'none'
  return tenant.startsWith(PASSTHROUGH_PREFIX) ? 'passthrough' : 'managed'
}

/** Where a page ends: entries are ordered by first_seen descending, then kid, content id, tenant (null as ''). */
interface After { firstSeen: string, kid: string, contentId: string, tenant: string }

interface Criteria { contentId?: string, tenant?: string, kid?: string, limit: number, after?: After }

const cursorOf = (a: After): string[] => [a.firstSeen, a.kid, a.contentId, a.tenant]

function readAfter (values: unknown[]): After | undefined {
  if (values.length !== 4 || !values.every((v): v is string => typeof v === 'string')) return undefined
  const [firstSeen, kid, contentId, tenant] = values
  return { firstSeen: toIso(firstSeen, 'cursor'), kid, contentId, tenant }
}

function criteria (filter: KeyLookupFilter): Criteria {
  if (filter.contentId === undefined && filter.kid === undefined) throw bad('give content_id or kid (or both)')
  return {
    contentId: filter.contentId,
    tenant: filter.tenant,
    kid: filter.kid === undefined ? undefined : normalizeKid(filter.kid),
    limit: checkLimit(filter.limit),
    after: filter.cursor === undefined ? undefined : decodeCursor(filter.cursor, readAfter)
  }
}

/** Code-unit order, as PostgreSQL's "C" collation orders ASCII; null sorts as ''. */
const cmp = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0

function compareKeys (a: After, b: After): number {
  if (a.firstSeen !== b.firstSeen) return a.firstSeen < b.firstSeen ? 1 : -1
  return cmp(a.kid, b.kid) || cmp(a.contentId, b.contentId) || cmp(a.tenant, b.tenant)
}

// ---------------------------------------------------------------- files

interface Group {
  key: After
  entry: KeyEntry
  last: Position
  drm: Set<string>
  tracks: Set<string>
  periods: Set<string>
}

function addAll (set: Set<string>, values: string[]): void {
  for (const v of values) set.add(v)
}

function update (g: Group, r: AuditRecord, kid: string): void {
  const e = g.entry
  if (r.time < g.key.firstSeen) g.key.firstSeen = r.time
  addAll(g.drm, r.drm_systems)
  addAll(g.tracks, r.track_types)
  addAll(g.periods, r.key_periods)
  if (r.outcome === 'ok' && r.returned_kids.includes(kid)) {
    e.delivered_encrypted = (e.times_issued === 0 || e.delivered_encrypted) && r.delivery === 'encrypted'
    e.times_issued++
    if (e.first_issued === null || r.time < e.first_issued) e.first_issued = r.time
    if (e.last_issued === null || r.time > e.last_issued) e.last_issued = r.time
  }
  const pos = positionOf(r)
  if (compareDesc(pos, g.last) < 0) {
    g.last = pos
    e.last_outcome = r.outcome
    e.last_status = r.status
  }
}

function newGroup (r: AuditRecord, kid: string): Group {
  return {
    key: { firstSeen: r.time, kid, contentId: r.content_id ?? '', tenant: r.tenant ?? '' },
    entry: {
      kid,
      content_id: r.content_id,
      tenant: r.tenant,
      tenant_kind: tenantKind(r.tenant),
      drm_systems: [],
      track_types: [],
      key_periods: [],
      first_issued: null,
      last_issued: null,
      times_issued: 0,
      last_outcome: r.outcome,
      last_status: r.status,
      delivered_encrypted: false
    },
    last: positionOf(r),
    drm: new Set(),
    tracks: new Set(),
    periods: new Set()
  }
}

/** One pass over every segment; memory grows with the entries matched (at most MAX_FILE_KEY_GROUPS), not the records. */
async function lookupFiles (dir: string, c: Criteria, maxGroups: number): Promise<KeyPage> {
  const groups = new Map<string, Group>()
  for await (const r of fileRecords(dir)) {
    if ((c.contentId !== undefined && r.content_id !== c.contentId) || (c.tenant !== undefined && r.tenant !== c.tenant)) continue
    for (const kid of new Set([...r.requested_kids, ...r.returned_kids])) {
      if (c.kid !== undefined && kid !== c.kid) continue
      const id = JSON.stringify([kid, r.content_id, r.tenant])
      let g = groups.get(id)
      if (g === undefined) {
        if (groups.size >= maxGroups) {
          throw new ProxyError('KEY_LOOKUP_TOO_BROAD', `more than ${maxGroups} keys match: narrow the lookup (add tenant or kid, or a more specific content_id)`)
        }
        g = newGroup(r, kid)
        groups.set(id, g)
      }
      update(g, r, kid)
    }
  }
  const sorted = [...groups.values()]
    .filter((g) => c.after === undefined || compareKeys(g.key, c.after) > 0)
    .sort((a, b) => compareKeys(a.key, b.key))
  const page = sorted.slice(0, c.limit).map((g) => ({
    ...g.entry,
    drm_systems: [...g.drm].sort(cmp),
    track_types: [...g.tracks].sort(cmp),
    key_periods: [...g.periods].sort(cmp)
  }))
  return sorted.length > c.limit ? { keys: page, nextCursor: encodeCursor(cursorOf(sorted[c.limit - 1].key)) } : { keys: page }
}

// ---------------------------------------------------------------- PostgreSQL

interface KeyRow {
  kid: string
  content_id: string | null
  tenant: string | null
  first_seen: Date
  first_issued: Date | null
  last_issued: Date | null
  times_issued: string
  delivered_encrypted: boolean
  last_outcome: string
  last_status: number
  drm_systems: string[][]
  track_types: string[][]
  key_periods: string[][]
}

/** The distinct values of the distinct arrays PostgreSQL aggregated, sorted. */
const flat = (lists: string[][] | null): string[] => [...new Set((lists ?? []).flat())].sort(cmp)

/**
 * The records are found by index (content_id: btree (content_id, time); kid: GIN on requested_kids and returned_kids;
 * tenant: btree (tenant, time)), then each record is unnested into its kids and grouped. Arrays are aggregated as
 * distinct JSON arrays, so a kid issued a thousand times for the same request shape carries one copy.
 */
async function lookupDatabase (pool: pg.Pool, schema: string, c: Criteria): Promise<KeyPage> {
  const s = quoteSchema(schema)
  const where: string[] = []
  const params: unknown[] = []
  const param = (value: unknown): string => { params.push(value); return `$${params.length}` }
  if (c.contentId !== undefined) where.push(`r.content_id = ${param(c.contentId)}`)
  if (c.tenant !== undefined) where.push(`r.tenant = ${param(c.tenant)}`)
  let kidFilter = ''
  if (c.kid !== undefined) {
    const k = param(c.kid)
    where.push(`(r.requested_kids @> ARRAY[${k}::text] OR r.returned_kids @> ARRAY[${k}::text])`)
    kidFilter = `WHERE x = ${k}`
  }
  const key = 'kid COLLATE "C", coalesce(content_id, \'\') COLLATE "C", coalesce(tenant, \'\') COLLATE "C"'
  let after = ''
  if (c.after !== undefined) {
    const t = param(c.after.firstSeen)
    after = `WHERE first_seen < ${t}::timestamptz OR (first_seen = ${t}::timestamptz AND ` +
      `(${key}) > ` +
      `(${param(c.after.kid)}::text COLLATE "C", ${param(c.after.contentId)}::text COLLATE "C", ${param(c.after.tenant)}::text COLLATE "C"))`
  }
  const limit = param(c.limit + 1)
  const sql = `
    WITH m AS (
      SELECT r."time", r.instance_id, r.seq, r.tenant, r.content_id, r.outcome, r.status, r.delivery,
             r.drm_systems, r.track_types, r.key_periods, k.kid,
             (r.outcome = 'ok' AND k.kid = ANY (r.returned_kids)) AS issued
        FROM ${s}.audit_records r
        CROSS JOIN LATERAL (SELECT DISTINCT x AS kid FROM unnest(r.requested_kids || r.returned_kids) AS x ${kidFilter}) k
       WHERE ${where.join(' AND ')}
    ), g AS (
      SELECT kid, content_id, tenant,
             min("time") AS first_seen,
             min("time") FILTER (WHERE issued) AS first_issued,
             max("time") FILTER (WHERE issued) AS last_issued,
             count(*) FILTER (WHERE issued) AS times_issued,
             coalesce(bool_and(delivery IS NOT DISTINCT FROM 'encrypted') FILTER (WHERE issued), false) AS delivered_encrypted,
             (array_agg(outcome ORDER BY "time" DESC, instance_id DESC, seq DESC))[1] AS last_outcome,
             (array_agg(status ORDER BY "time" DESC, instance_id DESC, seq DESC))[1] AS last_status,
             jsonb_agg(DISTINCT to_jsonb(drm_systems)) AS drm_systems,
             jsonb_agg(DISTINCT to_jsonb(track_types)) AS track_types,
             jsonb_agg(DISTINCT to_jsonb(key_periods)) AS key_periods
        FROM m GROUP BY kid, content_id, tenant
    )
    SELECT * FROM g ${after} ORDER BY first_seen DESC, ${key} LIMIT ${limit}`
  const { rows } = await pool.query<KeyRow>(sql, params)
  const keys: KeyEntry[] = rows.slice(0, c.limit).map((row) => ({
    kid: row.kid,
    content_id: row.content_id,
    tenant: row.tenant,
    tenant_kind: tenantKind(row.tenant),
    drm_systems: flat(row.drm_systems),
    track_types: flat(row.track_types),
    key_periods: flat(row.key_periods),
    first_issued: row.first_issued?.toISOString() ?? null,
    last_issued: row.last_issued?.toISOString() ?? null,
    times_issued: Number(row.times_issued),
    last_outcome: row.last_outcome as Outcome,
    last_status: row.last_status,
    delivered_encrypted: row.delivered_encrypted
  }))
  if (rows.length <= c.limit) return { keys }
  const last = rows[c.limit - 1]
  return { keys, nextCursor: encodeCursor([last.first_seen.toISOString(), last.kid, last.content_id ?? '', last.tenant ?? '']) }
}

/**
 * Every KID the audit names for `contentId` and/or `kid` (optionally one tenant's), one entry per (kid, content id,
 * tenant), newest first by the first record naming it; kids that were requested but never issued are kept (times_issued 0).
 * The files are scanned whole and refused past `maxGroups` entries (KEY_LOOKUP_TOO_BROAD); PostgreSQL reads by index.
 */
export async function lookupKeys (source: AuditSource, filter: KeyLookupFilter, maxGroups = MAX_FILE_KEY_GROUPS): Promise<KeyPage> {
  const c = criteria(filter)
  return source.kind === 'files' ? await lookupFiles(source.dir, c, maxGroups) : await lookupDatabase(source.pool, source.schema, c)
}
