// buildApp: the Fastify instance with its parsers, error handling, logging without secrets, and every route.

import Fastify, { LogController } from 'fastify'
import type { FastifyBaseLogger, FastifyError, FastifyInstance } from 'fastify'
import { randomUUID } from 'node:crypto'
import type { Config } from './config.js'
import { isProxyError } from './errors.js'
import type { KeyProvider } from './kms/provider.js'
import { redactUrl } from './redact.js'
import { aneviaRoutes } from './routes/anevia.js'
import { healthRoutes } from './routes/health.js'
import type { AuditHook, KeyRouteOptions } from './routes/key-reply.js'
import { keysRoutes } from './routes/keys.js'
import { pallyconRoutes } from './routes/pallycon.js'
import { spekeRoutes } from './routes/speke.js'
import type { PipelineDeps, ReplyCheck } from './speke/pipeline.js'
import type { TenantRegistry } from './tenants/registry.js'
import { USER_AGENT } from './version.js'

export interface AppDeps {
  config: Config
  provider: KeyProvider
  tenants: TenantRegistry
  audit?: AuditHook
  checkReply?: ReplyCheck
  /** Extra readiness checks (audit sink, upstream). */
  readiness?: () => Record<string, boolean>
  logger: FastifyBaseLogger
  /** Extra routes (admin) registered after the key routes. */
  plugins?: Array<(app: FastifyInstance) => Promise<void>>
}

export async function buildApp (deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps
  const app = Fastify({
    bodyLimit: config.bodyLimit,
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: 1000 },
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    trustProxy: false,
    loggerInstance: deps.logger
  })

  // CPIX arrives as bytes: with an XML Content-Type, with none at all (PallyCon's Python client), or with a wrong one that the pipeline refuses.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => { done(null, body) })

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isProxyError(error)) {
      return reply.code(error.status).type('text/plain; charset=utf-8').send(error.message)
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      request.log.info({ url: redactUrl(request.url), status: 413, outcome: 'rejected' }, 'key request')
      return reply.code(413).type('text/plain; charset=utf-8').send(`Request body is larger than ${config.bodyLimit} bytes (BODY_LIMIT)`)
    }
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500
    if (status === 500) request.log.error({ err: { type: error.name, code: error.code } }, 'internal error')
    return reply.code(status).type('text/plain; charset=utf-8').send(status === 500 ? 'Internal error in speke-proxy' : error.message)
  })
  app.setNotFoundHandler((request, reply) => {
    return reply.code(404).type('text/plain; charset=utf-8').send(`No route for ${request.method} ${redactUrl(request.url).split('?')[0]}`)
  })

  const pipeline: PipelineDeps = {
    provider: deps.provider,
    tenants: deps.tenants,
    kmsTimeoutMs: config.kmsTimeoutMs,
    userAgent: USER_AGENT,
    checkReply: deps.checkReply
  }
  const keyRoutes: KeyRouteOptions = { pipeline, audit: deps.audit }
  await app.register(spekeRoutes, keyRoutes)
  await app.register(pallyconRoutes, keyRoutes)
  await app.register(aneviaRoutes, keyRoutes)
  await app.register(keysRoutes, keyRoutes)
  await app.register(healthRoutes, {
    readiness: { provider: deps.provider.name, checks: deps.readiness ?? (() => ({})) }
  })
  for (const plugin of deps.plugins ?? []) await plugin(app)
  return app
}
