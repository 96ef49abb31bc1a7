// Recent activity: key requests per tenant and outcome in the last minutes, and refusals without a credential (files or PostgreSQL).

import type pg from 'pg'
import { quoteSchema } from './pg-schema.js'
import { bad, fileRecords, type AuditSource } from './query.js'
import { tenantKind, type TenantKind } from './key-lookup.js'

const DEFAULT_ACTIVITY_MINUTES = 60
const MAX_ACTIVITY_MINUTES = 1440

interface TenantActivity {
  tenant: string | null
  tenant_kind: TenantKind
  requests: number
  ok: number
  rejected: number
  upstream_errors: number
}

export interface Activity {
  since: string
  until: string
  /** Busiest first. */
  tenants: TenantActivity[]
  /** Key requests refused without a valid credential (counted per minute in refusal summaries, never one record each). */
  refused_without_credential: number
}

function window (minutes: number | undefined, now: Date): { since: Date, until: Date } {
  const m = minutes ?? DEFAULT_ACTIVITY_MINUTES
  if (!Number.isSafeInteger(m) || m < 1 || m > MAX_ACTIVITY_MINUTES) throw bad(`minutes must be an integer from 1 to ${MAX_ACTIVITY_MINUTES}`)
  return { since: new Date(now.getTime() - m * 60_000), until: now }
}

function entry (tenant: string | null): TenantActivity {
  return { tenant, tenant_kind: tenantKind(tenant), requests: 0, ok: 0, rejected: 0, upstream_errors: 0 }
}

const busiestFirst = (a: TenantActivity, b: TenantActivity): number =>
  b.requests - a.requests || ((a.tenant ?? '') < (b.tenant ?? '') ? -1 : (a.tenant ?? '') > (b.tenant ?? '') ? 1 : 0)

/** Segments of the window's days only; memory grows with the tenants seen. */
async function activityFiles (dir: string, since: string, until: string): Promise<Omit<Activity, 'since' | 'until'>> {
  const tenants = new Map<string | null, TenantActivity>()
  let refused = 0
  for await (const r of fileRecords(dir, since.slice(0, 10).replace(/-/g, ''))) {
    if (r.time < since || r.time >= until || r.checkpoint !== undefined) continue
    if (r.refusals !== undefined) { refused += r.refusals.total; continue }
    const t = tenants.get(r.tenant) ?? entry(r.tenant)
    tenants.set(r.tenant, t)
    t.requests++
    if (r.outcome === 'ok') t.ok++
    else if (r.outcome === 'rejected') t.rejected++
    else t.upstream_errors++
  }
  return { tenants: [...tenants.values()].sort(busiestFirst), refused_without_credential: refused }
}

/** Two aggregates over the time index (btree on time). */
async function activityDatabase (pool: pg.Pool, schema: string, since: string, until: string): Promise<Omit<Activity, 'since' | 'until'>> {
  const s = quoteSchema(schema)
  const range = '"time" >= $1::timestamptz AND "time" < $2::timestamptz'
  const [counts, refusals] = await Promise.all([
    pool.query<{ tenant: string | null, requests: string, ok: string, rejected: string, upstream_errors: string }>(
      `SELECT tenant, count(*) AS requests, count(*) FILTER (WHERE outcome = 'ok') AS ok,
              count(*) FILTER (WHERE outcome = 'rejected') AS rejected, count(*) FILTER (WHERE outcome = 'upstream_error') AS upstream_errors
         FROM ${s}.audit_records WHERE ${range} AND checkpoint IS NULL AND refusals IS NULL GROUP BY tenant`, [since, until]),
    pool.query<{ n: string | null }>(
      `SELECT sum((refusals->>'total')::bigint) AS n FROM ${s}.audit_records WHERE ${range} AND refusals IS NOT NULL`, [since, until])
  ])
  const tenants = counts.rows.map((row) => ({
    ...entry(row.tenant),
    requests: Number(row.requests),
    ok: Number(row.ok),
    rejected: Number(row.rejected),
    upstream_errors: Number(row.upstream_errors)
  }))
  return { tenants: tenants.sort(busiestFirst), refused_without_credential: Number(refusals.rows[0]?.n ?? 0) }
}

/** Key requests per tenant in the last `minutes` (1 to 1440, default 60) up to `now`; checkpoint and summary records are not requests. */
export async function auditActivity (source: AuditSource, minutes: number | undefined, now = new Date()): Promise<Activity> {
  const w = window(minutes, now)
  const since = w.since.toISOString()
  const until = w.until.toISOString()
  const counted = source.kind === 'files'
    ? await activityFiles(source.dir, since, until)
    : await activityDatabase(source.pool, source.schema, since, until)
  return { since, until, ...counted }
}
