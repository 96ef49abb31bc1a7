// What one key request did: the one record its log line, its audit record (src/audit/record.ts) and its metrics derive from. Never secrets.

import type { RequestSummary } from './cpix/summary.js'
import type { ErrorCode } from './error-codes.js'
import { SPEKE_V1_VERSION } from './protocol.js'
import type { Dialect } from './protocol.js'

export type Outcome = 'ok' | 'rejected' | 'upstream_error'
export const OUTCOMES: readonly Outcome[] = ['ok', 'rejected', 'upstream_error']

export interface KeyRequestRecord {
  /** The key route (KeyRouteName), 'unknown' for a refusal before routing. */
  route: string
  dialect?: Dialect
  tenant?: string
  /** True once the caller's credential was accepted (a tenant's, or an allowed pass-through token); false for refusals without one. */
  authenticated: boolean
  /** X-Speke-Version as sent (clipped); absent for SPEKE v1. */
  spekeVersion?: string
  /** What the CPIX request asked for (summarised before validation, so a refused request still says it). */
  request?: RequestSummary
  upstreamStatus?: number
  /** Time waiting on the key provider, whole milliseconds. */
  upstreamMs?: number
  outcome: Outcome
  status: number
  error?: string
  /** The code of a refusal (docs/errors.md): a stable reason to count by. */
  errorCode?: ErrorCode
  keysReturned: number
  repairs?: string[]
  /** True when the caller named a DeliveryKey certificate, so the keys left encrypted for it (never set otherwise). */
  deliveredEncrypted?: true
}

/** A key served, for the audit's HMAC fingerprints only; never logged. */
export interface ReturnedKey { kid: string, key: Buffer }

/** The fields of the one `key request` log line. */
export function logFields (r: KeyRequestRecord): Record<string, unknown> {
  return {
    route: r.route,
    tenant: r.tenant,
    authenticated: r.authenticated,
    spekeVersion: r.spekeVersion ?? (r.dialect === 'speke-v1' ? SPEKE_V1_VERSION : undefined),
    contentId: r.request?.contentId,
    keys: r.request?.kids.length,
    drmSystems: r.request?.drmSystems,
    trackTypes: r.request?.trackTypes,
    keysReturned: r.keysReturned,
    repairs: r.repairs,
    deliveredEncrypted: r.deliveredEncrypted,
    upstreamStatus: r.upstreamStatus,
    upstreamMs: r.upstreamMs,
    outcome: r.outcome,
    status: r.status,
    errorCode: r.errorCode,
    error: r.error
  }
}
