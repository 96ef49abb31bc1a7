// Liveness and readiness: /healthz answers while the process does; /readyz names the provider and says whether keys can be served.

import type { FastifyInstance } from 'fastify'

/** A readiness check: true passes; false fails; a string fails and says why (shown under `reasons`). */
type CheckResult = boolean | string

export interface Readiness {
  provider: string
  checks: () => Record<string, CheckResult>
}

/** Ready when every check passes: what /readyz answers, and the speke_proxy_ready gauge. */
export function isReady (checks: Record<string, CheckResult>): boolean {
  return Object.values(checks).every(result => result === true)
}

export async function healthRoutes (app: FastifyInstance, opts: { readiness: Readiness }): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const verdicts = opts.readiness.checks()
    const results = Object.entries(verdicts)
    const checks = Object.fromEntries(results.map(([name, result]) => [name, result === true]))
    const failing = results.filter((entry): entry is [string, string] => typeof entry[1] === 'string')
    const ready = isReady(verdicts)
    return await reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not ready',
      provider: opts.readiness.provider,
      checks,
      ...(failing.length === 0 ? {} : { reasons: Object.fromEntries(failing) })
    })
  })
}
