// Finishes a key request over HTTP: the audit record (before any key leaves), the one log line, then the reply.

import type { FastifyReply, FastifyRequest } from 'fastify'
import { MAX_MESSAGE_CHARS, clip } from '../errors.js'
import type { ProxyError } from '../errors.js'
import { spekeHeaders } from '../speke/pipeline.js'
import type { KeyRequestRecord, KeyResponse, PipelineDeps } from '../speke/pipeline.js'
import { USER_AGENT } from '../version.js'
import { callerOf, keyRouteOf, spekeVersionOf } from './key-route.js'

/** Writes the durable record of a key request; rejects (ProxyError 503) when no audit sink confirmed it. */
export type AuditHook = (request: FastifyRequest, response: KeyResponse) => Promise<void>

export async function sendKeyResponse (request: FastifyRequest, reply: FastifyReply, response: KeyResponse, opts: KeyRouteOptions): Promise<FastifyReply> {
  let final = response
  let auditSeconds: number | undefined
  if (opts.audit !== undefined) {
    const started = performance.now()
    try {
      await opts.audit(request, response)
      auditSeconds = (performance.now() - started) / 1000
    } catch (err) {
      const message = err instanceof Error ? err.message : 'audit trail unavailable'
      request.log.error({ audit: message }, 'audit trail could not record a key request; refusing it')
      final = {
        status: 503,
        headers: { ...response.headers, 'content-type': 'text/plain; charset=utf-8' },
        // Sink details (paths, database hosts) stay in the log.
        body: 'Key request refused: audit trail unavailable, so no key can be served (retry later)',
        record: { ...response.record, status: 503, outcome: 'upstream_error', error: message },
        returnedKeys: []
      }
    }
  }
  const r = final.record
  request.log.info({
    route: r.route,
    tenant: r.tenant,
    authenticated: r.authenticated,
    spekeVersion: r.spekeVersion ?? (r.dialect === 'speke-v1' ? '1.0' : undefined),
    contentId: r.request?.contentId,
    keys: r.request?.kids.length,
    drmSystems: r.request?.drmSystems,
    trackTypes: r.request?.trackTypes,
    keysReturned: r.keysReturned,
    repairs: r.repairs,
    upstreamStatus: r.upstreamStatus,
    upstreamMs: r.upstreamMs,
    outcome: r.outcome,
    status: r.status,
    error: r.error
  }, 'key request')
  opts.observe?.(r, { total: reply.elapsedTime / 1000, audit: auditSeconds })
  return await reply.code(final.status).headers(final.headers).send(final.body)
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
export async function refuseKeyRequest (request: FastifyRequest, reply: FastifyReply, error: ProxyError, opts: KeyRouteOptions, headers: Record<string, string> = {}): Promise<FastifyReply> {
  const route = keyRouteOf(request) ?? 'unknown'
  const spekeVersion = spekeVersionOf(request)
  const message = clip(error.message, MAX_MESSAGE_CHARS)
  const identified = callerOf(request)
  const json = route === 'keys-json'
  return await sendKeyResponse(request, reply, {
    status: error.status,
    headers: {
      'content-type': json ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8',
      ...spekeHeaders(route === 'speke' ? 'speke' : 'anevia', spekeVersion, USER_AGENT),
      ...headers
    },
    body: json ? JSON.stringify({ error: message }) : message,
    record: {
      route,
      tenant: identified?.caller.tenant,
      authenticated: identified !== undefined,
      spekeVersion,
      outcome: 'rejected',
      status: error.status,
      error: message,
      errorCode: error.code,
      keysReturned: 0
    },
    returnedKeys: []
  }, opts)
}
