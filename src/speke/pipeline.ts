// One key request, start to finish: SPEKE version → tenant → CPIX validation → key provider → reply checks → audit → reply.

import { ProxyError, badRequest, isProxyError } from '../errors.js'
import { decodeXmlBytes } from '../cpix/decode.js'
import type { CpixDocument } from '../cpix/model.js'
import { parseCpix } from '../cpix/parse.js'
import { summarizeRequest } from '../cpix/summary.js'
import type { RequestSummary } from '../cpix/summary.js'
import { validateRequest } from '../cpix/validate.js'
import type { Dialect } from '../cpix/validate.js'
import type { KeyProvider, KeyRoute, ProviderReply } from '../kms/provider.js'
import { decodeEncToken } from '../tenants/enc-token.js'
import { resolveCaller } from '../tenants/registry.js'
import type { Caller, TenantRegistry } from '../tenants/registry.js'
import { checkCpixContentType } from './content-type.js'
import { dialectFor } from './dialect.js'
import { keysInReply, rejectNonCpix } from './kms-reply.js'

export interface KeyRequest {
  route: KeyRoute
  /** The URL family for logs and audit when it differs from the KMS route (the JSON key API). */
  label?: string
  /** What the caller put in the enc-token position (query or path). */
  credential?: string
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
  spekeVersion?: string
  request?: RequestSummary
  upstreamStatus?: number
  upstreamMs?: number
  outcome: Outcome
  status: number
  error?: string
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
  tenants: TenantRegistry
  kmsTimeoutMs: number
  userAgent: string
  checkReply?: ReplyCheck
  /** Told about errors that are bugs (not ProxyErrors), for the log; the caller only sees a 500. */
  onInternalError?: (err: unknown) => void
}

export async function handleKeyRequest (deps: PipelineDeps, req: KeyRequest): Promise<KeyResponse> {
  const record: KeyRequestRecord = { route: req.label ?? req.route, outcome: 'rejected', status: 500, keysReturned: 0, spekeVersion: req.spekeVersion }
  let caller: Caller | undefined
  try {
    if (req.body !== undefined) checkCpixContentType(req.contentType)
    const dialect = dialectFor(req.route, req.spekeVersion)
    record.dialect = dialect
    caller = resolveCaller(req.credential, deps.tenants)
    record.tenant = caller.tenant

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
    record.status = error.status
    record.error = error.message
    if (record.outcome !== 'upstream_error' || !isProxyError(err)) record.outcome = error.status >= 500 && isProxyError(err) ? 'upstream_error' : 'rejected'
    return {
      status: error.status,
      headers: { 'content-type': 'text/plain; charset=utf-8', ...spekeHeaders(req.route, req.spekeVersion, deps.userAgent) },
      body: error.message,
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
function secretsOf (caller: Caller, credential: string | undefined): string[] {
  const tokens = [caller.upstreamToken, credential ?? '']
  return [...tokens, ...tokens.map(t => decodeEncToken(t)?.accessKey ?? '')]
}

export function spekeHeaders (route: KeyRoute | string, spekeVersion: string | undefined, userAgent: string): Record<string, string> {
  if (route !== 'speke') return {}
  if (spekeVersion === undefined) return { 'speke-user-agent': userAgent }
  return { 'x-speke-version': spekeVersion, 'x-speke-user-agent': userAgent }
}
