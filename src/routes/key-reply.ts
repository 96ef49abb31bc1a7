// Finishes a key request over HTTP: the audit record (before any key leaves), the one log line, then the reply.

import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ProxyError } from '../errors.js'
import { spekeHeaders } from '../speke/pipeline.js'
import type { KeyRequestRecord, KeyResponse, PipelineDeps } from '../speke/pipeline.js'
import { USER_AGENT } from '../version.js'

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

/** A key request refused before the pipeline (body too large, rate limit, overload, bad path): audited and logged all the same. */
export async function refuseKeyRequest (request: FastifyRequest, reply: FastifyReply, error: ProxyError, opts: KeyRouteOptions, headers: Record<string, string> = {}): Promise<FastifyReply> {
  const route = routeOf(request.url)
  const version = request.headers['x-speke-version']
  const spekeVersion = Array.isArray(version) ? version[0] : version
  return await sendKeyResponse(request, reply, {
    status: error.status,
    headers: { 'content-type': 'text/plain; charset=utf-8', ...spekeHeaders(route === 'speke' ? 'speke' : 'anevia', spekeVersion, USER_AGENT), ...headers },
    body: error.message,
    record: { route, spekeVersion, outcome: 'rejected', status: error.status, error: error.message, keysReturned: 0 },
    returnedKeys: []
  }, opts)
}

function routeOf (url: string): string {
  if (url.startsWith('/cpix/getKey')) return 'speke'
  if (url.startsWith('/v1/cpix/pallycon/')) return 'pallycon-v1'
  if (url.startsWith('/v2/cpix/pallycon/')) return 'pallycon-v2'
  if (url.startsWith('/cpix/anevia/')) return 'anevia'
  if (url.startsWith('/v2/keys')) return 'keys-json'
  return 'unknown'
}
