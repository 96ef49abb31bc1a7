// Finishes a key request over HTTP: the audit record (before any key leaves), the one log line, then the reply.

import type { FastifyReply, FastifyRequest } from 'fastify'
import type { KeyResponse } from '../speke/pipeline.js'

/** Writes the durable record of a key request; rejects (ProxyError 503) when no audit sink confirmed it. */
export type AuditHook = (request: FastifyRequest, response: KeyResponse) => Promise<void>

export async function sendKeyResponse (request: FastifyRequest, reply: FastifyReply, response: KeyResponse, audit?: AuditHook): Promise<FastifyReply> {
  let final = response
  if (audit !== undefined) {
    try {
      await audit(request, response)
    } catch (err) {
      const message = err instanceof Error ? err.message : 'audit trail unavailable'
      final = {
        status: 503,
        headers: { ...response.headers, 'content-type': 'text/plain; charset=utf-8' },
        body: `Key request refused: ${message}`,
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
  return await reply.code(final.status).headers(final.headers).send(final.body)
}

export interface KeyRouteOptions {
  pipeline: import('../speke/pipeline.js').PipelineDeps
  audit?: AuditHook
}
