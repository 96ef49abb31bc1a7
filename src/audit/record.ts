// Audit record shape, canonical JSON, hashing and HMAC fingerprints: turns what the pipeline knows into a record with no secret in it.

import { createHash, createHmac, randomUUID } from 'node:crypto'

export type AuditOutcome = 'ok' | 'rejected' | 'upstream_error'
export const AUDIT_OUTCOMES: readonly AuditOutcome[] = ['ok', 'rejected', 'upstream_error']

/** What the pipeline knows about one request on a key route. */
export interface AuditEvent {
  requestId: string
  route: string
  tenant?: string
  callerIp?: string
  userAgent?: string
  spekeVersion?: string
  contentId?: string
  requestedKids: string[]
  drmSystems: string[]
  trackTypes: string[]
  keyPeriods: string[]
  upstreamStatus?: number
  upstreamLatencyMs?: number
  outcome: AuditOutcome
  status: number
  error?: string
  /** The trail HMACs each key into a fingerprint; the key itself is never stored. */
  returnedKeys: Array<{ kid: string, key: Buffer }>
  /** The trail stores the SHA-256 of the bodies only. */
  requestBody?: Buffer
  responseBody?: Buffer
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
  outcome: AuditOutcome
  status: number
  error: string | null
  returned_kids: string[]
  key_fingerprints: string[]
  request_sha256: string | null
  response_sha256: string | null
  prev_hash: string
  hash: string
}

/** A record before a sink places it in its chain. */
export type AuditRecordBody = Omit<AuditRecord, 'seq' | 'prev_hash' | 'hash'>

/** Every field of a record, in the order used for columns. */
export const AUDIT_RECORD_FIELDS = [
  'id', 'time', 'instance_id', 'seq', 'request_id', 'route', 'tenant', 'caller_ip', 'user_agent', 'speke_version',
  'content_id', 'requested_kids', 'drm_systems', 'track_types', 'key_periods', 'upstream_status', 'upstream_latency_ms',
  'outcome', 'status', 'error', 'returned_kids', 'key_fingerprints', 'request_sha256', 'response_sha256', 'prev_hash', 'hash'
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

const MAX_TEXT = 4096
const MAX_SHORT = 1024
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** Text that survives UTF-8 and PostgreSQL unchanged: no NUL, no lone surrogate, bounded length. */
export function cleanText (value: string, max: number): string {
  const clean = value.replace(/\u0000/g, '\uFFFD').replace(LONE_SURROGATE, '\uFFFD')
  return clean.length > max ? `${clean.slice(0, max)}…` : clean
}

function optionalText (value: string | undefined, max = MAX_SHORT): string | null {
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
  return values.map((v) => cleanText(lower ? v.trim().toLowerCase() : v, MAX_SHORT))
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
    request_id: cleanText(event.requestId, MAX_SHORT),
    route: cleanText(event.route, MAX_SHORT),
    tenant: scrub(event.tenant),
    caller_ip: optionalText(event.callerIp),
    user_agent: scrub(event.userAgent),
    speke_version: optionalText(event.spekeVersion),
    content_id: scrub(event.contentId),
    requested_kids: textList(event.requestedKids, true),
    drm_systems: textList(event.drmSystems, true),
    track_types: textList(event.trackTypes, false),
    key_periods: textList(event.keyPeriods, false),
    upstream_status: optionalInt(event.upstreamStatus),
    upstream_latency_ms: optionalInt(event.upstreamLatencyMs),
    outcome: event.outcome,
    status: Number.isFinite(event.status) ? int32(event.status) : 0,
    error: scrub(event.error, MAX_TEXT),
    returned_kids: event.returnedKeys.map((k) => cleanText(k.kid.trim().toLowerCase(), MAX_SHORT)),
    key_fingerprints: event.returnedKeys.map((k) => hmacValue(hmacKey, k.key)),
    request_sha256: event.requestBody === undefined ? null : sha256Hex(event.requestBody),
    response_sha256: event.responseBody === undefined ? null : sha256Hex(event.responseBody)
  }
}
