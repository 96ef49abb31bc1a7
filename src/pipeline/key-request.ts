// One key request, start to finish: caller (identified before the body was read) → Content-Type → SPEKE version → CPIX validation → key provider → reply checks → audit → reply.

import { MAX_MESSAGE_CHARS, ProxyError, badRequest, clip, isProxyError } from '../errors.js'
import { decodeXmlBytes } from '../cpix/decode.js'
import type { CpixDocument } from '../cpix/model.js'
import { parseCpix } from '../cpix/parse.js'
import { summarizeRequest } from '../cpix/summary.js'
import type { RequestSummary } from '../cpix/summary.js'
import { validateRequest } from '../cpix/validate.js'
import type { Dialect } from '../cpix/validate.js'
import type { KeyProvider, KeyRoute, ProviderReply } from '../kms/provider.js'
import { decodeEncToken } from '../tenants/enc-token.js'
import type { Caller } from '../tenants/registry.js'
import { checkCpixContentType } from './content-type.js'
import { dialectFor } from './dialect.js'
import { keysInReply, rejectNonCpix } from './kms-reply.js'

export interface KeyRequest {
  route: KeyRoute
  /** The URL family for logs and audit when it differs from the KMS route (the JSON key API). */
  label?: string
  /**
   * Who is calling: identified from the URL alone before any body byte was read (src/routes/key-guard.ts),
   * so no work proportional to the body is ever done for a caller without a valid credential.
   */
  caller: Caller
  /** What the caller put in the enc-token position (query or path), for scrubbing KMS replies. */
  credential: string
  spekeVersion?: string
  keyRotation?: boolean
  anevia?: { format: 'dash' | 'hls', contentId: string }
  body?: Buffer
  contentType?: string
  requestId: string
}

export type Outcome = 'ok' | 'rejected' | 'upstream_error'

/** What one key request did, for the log line and the audit record. Never secrets. */
export interface KeyRequestRecord {
  route: string
  dialect?: Dialect
  tenant?: string
  /** True once the caller's credential was accepted (a managed tenant's, or an allowed pass-through token); false for refusals of requests without one. */
  authenticated: boolean
  spekeVersion?: string
  request?: RequestSummary
  upstreamStatus?: number
  upstreamMs?: number
  outcome: Outcome
  status: number
  error?: string
  /** The ProxyError code of a refusal (e.g. MISSING_TOKEN, RATE_LIMITED): a stable reason to count by. */
  errorCode?: string
  keysReturned: number
  repairs?: string[]
}

export interface KeyResponse {
  status: number
  headers: Record<string, string>
  body: Buffer | string
  record: KeyRequestRecord
  /** Keys in the reply, for the audit's HMAC fingerprints only; never logged. */
  returnedKeys: ReturnedKey[]
}

export interface ReturnedKey { kid: string, key: Buffer }

/** A step after the provider: verify (and for SPEKE v2 repair) the reply against the request. */
export type ReplyCheck = (input: {
  request: CpixDocument | undefined
  reply: ProviderReply
  dialect: Dialect | undefined
  route: KeyRoute
  anevia?: { format: 'dash' | 'hls', contentId: string }
}) => CheckedReply

export interface CheckedReply extends ProviderReply {
  /** Keys the verification read from the reply (for audit fingerprints). */
  returnedKeys?: ReturnedKey[]
  /** What repair changed, for the log. */
  repairs?: string[]
}

export interface PipelineDeps {
  provider: KeyProvider
  kmsTimeoutMs: number
  userAgent: string
  checkReply?: ReplyCheck
  /** Told about errors that are bugs (not ProxyErrors), for the log; the caller only sees a 500. */
  onInternalError?: (err: unknown) => void
}

export async function handleKeyRequest (deps: PipelineDeps, req: KeyRequest): Promise<KeyResponse> {
  const caller = req.caller
  const record: KeyRequestRecord = { route: req.label ?? req.route, tenant: caller.tenant, authenticated: true, outcome: 'rejected', status: 500, keysReturned: 0, spekeVersion: req.spekeVersion }
  try {
    if (req.body !== undefined) checkCpixContentType(req.contentType)
    const dialect = dialectFor(req.route, req.spekeVersion)
    record.dialect = dialect

    const doc = req.body === undefined ? undefined : parseCpix(decodeXmlBytes(req.body))
    if (doc !== undefined) {
      // Summarised before validation, so a refused request still says what it asked for.
      record.request = summarizeRequest(doc)
      if (dialect !== undefined) validateRequest(doc, dialect)
    }
    if (req.anevia !== undefined) record.request = { contentId: req.anevia.contentId, kids: [], drmSystems: [], trackTypes: [], keyPeriods: [] }

    const reply = await callProvider(deps, req, caller, record)
    rejectNonCpix(reply, secretsOf(caller, req.credential))
    const checked: CheckedReply = deps.checkReply?.({ request: doc, reply, dialect, route: req.route, anevia: req.anevia }) ?? reply
    record.outcome = checked.status >= 200 && checked.status < 300 ? 'ok' : 'upstream_error'
    record.status = checked.status
    record.repairs = checked.repairs
    const returnedKeys = record.outcome === 'ok' ? (checked.returnedKeys ?? keysInReply(checked.body)) : []
    record.keysReturned = returnedKeys.length
    return {
      returnedKeys,
      status: checked.status,
      headers: { 'content-type': checked.contentType ?? 'application/xml', ...spekeHeaders(req.route, req.spekeVersion, deps.userAgent) },
      body: checked.body,
      record
    }
  } catch (err) {
    if (!isProxyError(err)) deps.onInternalError?.(err)
    const error = isProxyError(err) ? err : new ProxyError(500, 'INTERNAL', 'Internal error in speke-proxy')
    const message = clip(error.message, MAX_MESSAGE_CHARS)
    record.status = error.status
    record.error = message
    record.errorCode = error.code
    if (record.outcome !== 'upstream_error' || !isProxyError(err)) record.outcome = error.status >= 500 && isProxyError(err) ? 'upstream_error' : 'rejected'
    return {
      status: error.status,
      headers: { 'content-type': 'text/plain; charset=utf-8', ...spekeHeaders(req.route, req.spekeVersion, deps.userAgent) },
      body: message,
      record,
      returnedKeys: []
    }
  }
}

async function callProvider (deps: PipelineDeps, req: KeyRequest, caller: Caller, record: KeyRequestRecord): Promise<ProviderReply> {
  const signal = AbortSignal.timeout(deps.kmsTimeoutMs)
  try {
    const reply = await deps.provider.getKeys({
      route: req.route,
      token: caller.upstreamToken,
      spekeVersion: req.spekeVersion,
      keyRotation: req.keyRotation,
      anevia: req.anevia,
      body: req.body,
      contentType: req.contentType
    }, signal)
    record.upstreamStatus = reply.status
    record.upstreamMs = Math.round(reply.latencyMs)
    return reply
  } catch (err) {
    record.outcome = 'upstream_error'
    throw err
  }
}

/** Every secret the KMS might quote back: both tokens and the access key inside them. */
function secretsOf (caller: Caller, credential: string): string[] {
  const tokens = [caller.upstreamToken, credential]
  return [...tokens, ...tokens.map(t => decodeEncToken(t)?.accessKey ?? '')]
}

export function spekeHeaders (route: KeyRoute | string, spekeVersion: string | undefined, userAgent: string): Record<string, string> {
  if (route !== 'speke') return {}
  if (spekeVersion === undefined) return { 'speke-user-agent': userAgent }
  return { 'x-speke-version': spekeVersion, 'x-speke-user-agent': userAgent }
}
