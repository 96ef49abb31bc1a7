// Finishes a key request over HTTP: the audit record (before any key leaves), the one log line, then the reply.

import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AuditEvent } from '../audit/record.js'
import { clip } from '../errors.js'
import type { ProxyError } from '../errors.js'
import type { PipelineDeps } from '../pipeline/key-request.js'
import { refusal, spekeHeaders } from '../pipeline/response.js'
import type { KeyResponse } from '../pipeline/response.js'
import { logFields } from '../request-record.js'
import type { KeyRequestRecord } from '../request-record.js'
import { USER_AGENT } from '../version.js'
import { callerOf, keyRouteOf, spekeVersionOf } from './key-route.js'

/** Names the error code (docs/errors.md) of every failed key request; the body stays as its protocol wants (AWS's strings for SPEKE v2). */
const ERROR_CODE_HEADER = 'x-speke-proxy-error'

/** Writes the durable record of a key request; rejects (ProxyError 503) when no audit sink confirmed it. */
export type AuditHook = (event: AuditEvent) => Promise<void>

export async function sendKeyResponse (
  request: FastifyRequest, reply: FastifyReply, response: KeyResponse, opts: KeyRouteOptions
): Promise<FastifyReply> {
  let final = response
  let auditSeconds: number | undefined
  if (opts.audit !== undefined) {
    const started = performance.now()
    try {
      await opts.audit(auditEventOf(request, response))
      auditSeconds = (performance.now() - started) / 1000
    } catch (err) {
      const message = err instanceof Error ? err.message : 'audit trail unavailable'
      request.log.error({ audit: message }, 'audit trail could not record a key request; refusing it')
      final = {
        status: 503,
        headers: { ...response.headers, 'content-type': 'text/plain; charset=utf-8' },
        // Sink details (paths, database hosts) stay in the log.
        body: 'Key request refused: audit trail unavailable, so no key can be served (retry later)',
        record: { ...response.record, status: 503, outcome: 'upstream_error', error: message, errorCode: 'AUDIT_UNAVAILABLE' },
        returnedKeys: []
      }
    }
  }
  const r = final.record
  request.log.info(logFields(r), 'key request')
  opts.observe?.(r, { total: reply.elapsedTime / 1000, audit: auditSeconds })
  const headers = r.errorCode === undefined ? final.headers : { ...final.headers, [ERROR_CODE_HEADER]: r.errorCode }
  return await reply.code(final.status).headers(headers).send(final.body)
}

export interface KeyRouteOptions {
  pipeline: PipelineDeps
  audit?: AuditHook
  /** Told about every finished key request (metrics, upstream health). */
  observe?: KeyObserver
}

export type KeyObserver = (record: KeyRequestRecord, seconds: { total: number, audit?: number }) => void

/**
 * A key request refused outside the pipeline (overload, rate limit, no valid credential, bad path, body too large):
 * audited and logged all the same. Its record says whether the caller had been identified by then.
 */
export async function refuseKeyRequest (
  request: FastifyRequest, reply: FastifyReply, error: ProxyError, opts: KeyRouteOptions, headers: Record<string, string> = {}
): Promise<FastifyReply> {
  const route = keyRouteOf(request) ?? 'unknown'
  const spekeVersion = spekeVersionOf(request)
  const identified = callerOf(request)
  const record = { route, tenant: identified?.caller.tenant, authenticated: identified !== undefined, spekeVersion, outcome: 'rejected' as const }
  const refused = refusal(error, record, { ...spekeHeaders(route, spekeVersion, USER_AGENT), ...headers })
  return await sendKeyResponse(request, reply, refused, opts)
}

/** The key request's record with what only the HTTP exchange knows: request id, client, user agent, bodies, keys. */
function auditEventOf (request: FastifyRequest, response: KeyResponse): AuditEvent {
  const userAgent = request.headers['user-agent']
  return {
    ...response.record,
    requestId: request.id,
    callerIp: request.ip,
    userAgent: userAgent === undefined ? undefined : clip(userAgent),
    returnedKeys: response.returnedKeys,
    requestBody: Buffer.isBuffer(request.body) ? request.body : undefined,
    responseBody: typeof response.body === 'string' ? Buffer.from(response.body) : response.body
  }
}
