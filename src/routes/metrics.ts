// GET /metrics: the Prometheus text, behind `Authorization: Bearer $METRICS_TOKEN` when that is set.

import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import { bearerMatches } from './bearer.js'

export interface MetricsRoutesOptions {
  registry: Registry
  /** METRICS_TOKEN; when undefined /metrics is open (keep the port private then). */
  token?: string
}

export async function metricsRoutes (app: FastifyInstance, opts: MetricsRoutesOptions): Promise<void> {
  const { registry, token } = opts
  app.get('/metrics', async (request, reply) => {
    if (token !== undefined && !bearerMatches(request.headers.authorization, token)) {
      request.log.warn({ ip: request.ip, route: '/metrics' }, 'metrics request without a valid METRICS_TOKEN refused')
      return await reply.code(401).header('www-authenticate', 'Bearer').type('text/plain; charset=utf-8').send('a valid metrics bearer token (METRICS_TOKEN) is required')
    }
    return await reply.header('cache-control', 'no-store').type(registry.contentType).send(await registry.metrics())
  })
}
