// Audit record shape, canonical JSON, hashing and HMAC fingerprints: turns what the pipeline knows into a record with no secret in it.

import { createHash, createHmac, randomUUID } from 'node:crypto'
import type { KeyRequestRecord, Outcome, ReturnedKey } from '../request-record.js'
import type { SignedEntry } from './checkpoint.js'

/**
 * What the trail is given for one key request: its record (the same one the log line and the metrics read) with what
 * only the HTTP exchange knows. Refusals without a valid credential (`authenticated` false) are counted into the
 * per-minute refusal summary, by `errorCode`, instead of a record each.
 */
export interface AuditEvent extends KeyRequestRecord {
  requestId: string
  callerIp?: string
  userAgent?: string
  /** The trail HMACs each key into a fingerprint; the key itself is never stored. */
  returnedKeys: ReturnedKey[]
  /** The trail stores the SHA-256 of the bodies only. */
  requestBody?: Buffer
  responseBody?: Buffer
}

/** One line of a refusal summary: how often one client IP was refused on one route for one reason. */
export type RefusalCount = {
  route: string
  status: number
  reason: string
  caller_ip: string | null
  count: number
}

/** What a refusal summary record holds: refusals of requests without a valid credential in one window (usually a UTC minute). */
export type RefusalSummary = {
  window_start: string
  window_end: string
  total: number
  /** The busiest (route, status, reason, client IP) keys, most refused first. */
  top: RefusalCount[]
  /** Refusals not itemised in `top` (keys beyond the bound). */
  other: number
}

/** One stored audit record (field names are the JSON keys and the PostgreSQL columns). */
export type AuditRecord = {
  id: string
  time: string
  instance_id: string
  seq: number
  request_id: string
  route: string
  tenant: string | null
  caller_ip: string | null
  user_agent: string | null
  speke_version: string | null
  content_id: string | null
  requested_kids: string[]
  drm_systems: string[]
  track_types: string[]
  key_periods: string[]
  upstream_status: number | null
  upstream_latency_ms: number | null
  outcome: Outcome
  status: number
  error: string | null
  /** The error code (docs/errors.md) of a failed request; absent otherwise and in older records (which hash as before). */
  error_code?: string
  returned_kids: string[]
  key_fingerprints: string[]
  request_sha256: string | null
  response_sha256: string | null
  prev_hash: string
  hash: string
  /** Only on refusal summary records (route REFUSAL_SUMMARY_ROUTE); absent from every other record, so old records hash as before. */
  refusals?: RefusalSummary
  /** Only on checkpoint and restart records: the signed entry (see checkpoint.ts); absent from every other record. */
  checkpoint?: SignedEntry
  /** "encrypted" when the caller sent a DeliveryKey certificate (keys left encrypted); absent otherwise, so old records hash as before. */
  delivery?: 'encrypted'
}

/** The route of the one record per minute that counts refusals of requests without a valid credential. */
const REFUSAL_SUMMARY_ROUTE = 'refusal-summary'

/** A record before a sink places it in its chain. */
export type AuditRecordBody = Omit<AuditRecord, 'seq' | 'prev_hash' | 'hash'>

/** Every field of a record, in the order used for columns. */
export const AUDIT_RECORD_FIELDS = [
  'id', 'time', 'instance_id', 'seq', 'request_id', 'route', 'tenant', 'caller_ip', 'user_agent', 'speke_version',
  'content_id', 'requested_kids', 'drm_systems', 'track_types', 'key_periods', 'upstream_status', 'upstream_latency_ms',
  'outcome', 'status', 'error', 'returned_kids', 'key_fingerprints', 'request_sha256', 'response_sha256', 'prev_hash', 'hash', 'refusals', 'checkpoint',
  'error_code', 'delivery'
] as const satisfies ReadonlyArray<keyof AuditRecord>

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue | undefined }

/** JSON with object keys sorted at every level and no whitespace; the byte form every hash is computed over. */
export function canonicalJson (value: JsonValue): string {
  if (value === null) return 'null'
  if (typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value)
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonical JSON has no form for ${value}`)
    return JSON.stringify(value)
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] as JsonValue)}`).join(',')}}`
}

export function sha256Hex (data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** 'hmac-sha256:<hex>' of a value (a string is taken as UTF-8), the searchable stand-in for a secret. */
export function hmacValue (hmacKey: Buffer, value: string | Buffer): string {
  return `hmac-sha256:${createHmac('sha256', hmacKey).update(value).digest('hex')}`
}

/** Free text the proxy wrote (error messages, which may quote an upstream answer). */
const MAX_TEXT = 1024
/** Anything copied from the request (user agent, content id, SPEKE version, kids, track types, …). */
export const MAX_REFLECTED = 200
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** Text that survives UTF-8 and PostgreSQL unchanged: no NUL, no lone surrogate, bounded length. */
export function cleanText (value: string, max: number): string {
  const clean = value.replaceAll('\u0000', '\uFFFD').replace(LONE_SURROGATE, '\uFFFD')
  return clean.length > max ? `${clean.slice(0, max)}…` : clean
}

function optionalText (value: string | undefined, max = MAX_REFLECTED): string | null {
  return value === undefined ? null : cleanText(value, max)
}

const INT32_MAX = 2 ** 31 - 1

/** A whole number that fits a PostgreSQL integer column. */
function int32 (value: number): number {
  return Math.min(INT32_MAX, Math.max(-INT32_MAX, Math.round(value)))
}

function optionalInt (value: number | undefined): number | null {
  return value === undefined || !Number.isFinite(value) ? null : int32(value)
}

function textList (values: string[], lower: boolean): string[] {
  return values.map((v) => cleanText(lower ? v.trim().toLowerCase() : v, MAX_REFLECTED))
}

/** Removes any spelling of a returned key (hex in either case, base64, base64url) from free text such as an upstream error. */
function redactKeys (text: string, keys: Buffer[]): string {
  let out = text
  for (const key of keys) {
    if (key.length < 8) continue
    out = out.replace(new RegExp(key.toString('hex'), 'gi'), '[redacted]')
    for (const form of [key.toString('base64').replace(/=+$/, ''), key.toString('base64url')]) out = out.split(form).join('[redacted]')
  }
  return out
}

/** Builds the record body for one event: kids lower case, keys HMAC'd, bodies hashed, nothing secret kept. */
export function buildRecordBody (event: AuditEvent, hmacKey: Buffer, instanceId: string, now: Date): AuditRecordBody {
  const keys = event.returnedKeys.map((k) => k.key)
  const scrub = (value: string | undefined, max?: number): string | null => {
    const text = optionalText(value, max)
    return text === null ? null : redactKeys(text, keys)
  }
  return {
    id: randomUUID(),
    time: now.toISOString(),
    instance_id: instanceId,
    request_id: cleanText(event.requestId, MAX_REFLECTED),
    route: cleanText(event.route, MAX_REFLECTED),
    tenant: scrub(event.tenant),
    caller_ip: optionalText(event.callerIp),
    user_agent: scrub(event.userAgent),
    speke_version: optionalText(event.spekeVersion),
    content_id: scrub(event.request?.contentId),
    requested_kids: textList(event.request?.kids ?? [], true),
    drm_systems: textList(event.request?.drmSystems ?? [], true),
    track_types: textList(event.request?.trackTypes ?? [], false),
    key_periods: textList(event.request?.keyPeriods ?? [], false),
    upstream_status: optionalInt(event.upstreamStatus),
    upstream_latency_ms: optionalInt(event.upstreamMs),
    outcome: event.outcome,
    status: Number.isFinite(event.status) ? int32(event.status) : 0,
    error: scrub(event.error, MAX_TEXT),
    ...(event.errorCode === undefined ? {} : { error_code: cleanText(event.errorCode, MAX_REFLECTED) }),
    ...(event.deliveredEncrypted === true ? { delivery: 'encrypted' as const } : {}),
    returned_kids: event.returnedKeys.map((k) => cleanText(k.kid.trim().toLowerCase(), MAX_REFLECTED)),
    key_fingerprints: event.returnedKeys.map((k) => hmacValue(hmacKey, k.key)),
    request_sha256: event.requestBody === undefined ? null : sha256Hex(event.requestBody),
    response_sha256: event.responseBody === undefined ? null : sha256Hex(event.responseBody)
  }
}

/** What a record the trail writes about itself (a summary, a checkpoint) says: it carries no request, only a sentence. */
export interface TrailRecordFacts { instanceId: string, requestId: string, route: string, outcome: Outcome, error: string, now: Date }

/** The body of a record the trail writes about itself, with every request field empty, in the order of every record. */
export function trailRecordBody (facts: TrailRecordFacts): AuditRecordBody {
  return {
    id: randomUUID(),
    time: facts.now.toISOString(),
    instance_id: facts.instanceId,
    request_id: facts.requestId,
    route: facts.route,
    tenant: null,
    caller_ip: null,
    user_agent: null,
    speke_version: null,
    content_id: null,
    requested_kids: [],
    drm_systems: [],
    track_types: [],
    key_periods: [],
    upstream_status: null,
    upstream_latency_ms: null,
    outcome: facts.outcome,
    status: 0,
    error: facts.error,
    returned_kids: [],
    key_fingerprints: [],
    request_sha256: null,
    response_sha256: null
  }
}

/** The record body of a refusal summary: no request of its own, the counts in `refusals`, a sentence in `error`. */
export function buildSummaryBody (summary: RefusalSummary, instanceId: string, now: Date): AuditRecordBody {
  const requests = `${summary.total} key request${summary.total === 1 ? '' : 's'}`
  const error = `${requests} without a valid credential refused from ${summary.window_start} to ${summary.window_end} (counts in "refusals")`
  const facts = { instanceId, requestId: `refusals-${summary.window_start}`, route: REFUSAL_SUMMARY_ROUTE, outcome: 'rejected' as const, error, now }
  return { ...trailRecordBody(facts), refusals: summary }
}
