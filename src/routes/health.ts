// Liveness and readiness: /healthz answers while the process does; /readyz names the provider and says whether keys can be served.

import type { FastifyInstance } from 'fastify'

export interface Readiness {
  provider: string
  checks: () => Record<string, boolean>
}

export async function healthRoutes (app: FastifyInstance, opts: { readiness: Readiness }): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const checks = opts.readiness.checks()
    const ready = Object.values(checks).every(Boolean)
    return await reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', provider: opts.readiness.provider, checks })
  })
}
