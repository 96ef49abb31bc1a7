// buildApp: the Fastify instance with its parsers, error handling, logging without secrets, and every route.

import Fastify, { LogController } from 'fastify'
import type { FastifyBaseLogger, FastifyError, FastifyInstance } from 'fastify'
import { randomUUID } from 'node:crypto'
import type { Config } from './config.js'
import rateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import { ProxyError, isProxyError } from './errors.js'
import type { Metrics } from './metrics.js'
import { rateLimitKey } from './tenants/rate-key.js'
import { readTlsFiles } from './tls.js'
import type { KeyProvider } from './kms/provider.js'
import { redactUrl } from './redact.js'
import { aneviaRoutes } from './routes/anevia.js'
import { healthRoutes } from './routes/health.js'
import { addJsonParser } from './routes/json-body.js'
import { refuseKeyRequest } from './routes/key-reply.js'
import type { AuditHook, KeyObserver, KeyRouteOptions } from './routes/key-reply.js'
import { keysRoutes } from './routes/keys.js'
import { openapiRoutes } from './routes/openapi.js'
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
  metrics?: Metrics
  observe?: KeyObserver
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
    trustProxy: config.trustProxy,
    // HEAD would run a key request without showing it; key routes are POST/GET only.
    exposeHeadRoutes: false,
    // A URL the router cannot decode may hold a token: answer without echoing it.
    frameworkErrors: (error, _request, reply) => {
      const raw = reply as unknown as { code: (status: number) => { type: (t: string) => { send: (body: string) => void } } }
      raw.code(400).type('text/plain; charset=utf-8').send(error.code === 'FST_ERR_BAD_URL' ? 'Malformed URL: check the percent-encoding of the enc-token and path' : 'Bad request')
    },
    loggerInstance: deps.logger,
    ...(config.tls === undefined ? {} : { https: readTlsFiles(config.tls) })
  }) as unknown as FastifyInstance

  // CPIX arrives as bytes: with an XML Content-Type, with none at all (PallyCon's Python client), or with a wrong one that the pipeline refuses.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => { done(null, body) })

  const pipeline: PipelineDeps = {
    provider: deps.provider,
    tenants: deps.tenants,
    kmsTimeoutMs: config.kmsTimeoutMs,
    userAgent: USER_AGENT,
    checkReply: deps.checkReply,
    onInternalError: (err) => {
      const e = err instanceof Error ? err : new Error(String(err))
      deps.logger.error({ err: { type: e.name, message: redactUrl(e.message), stack: e.stack } }, 'internal error in a key request')
    }
  }
  const keyRoutes: KeyRouteOptions = { pipeline, audit: deps.audit, observe: deps.observe }
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isProxyError(error)) {
      if (isKeyRoute(request.url)) return refuseKeyRequest(request, reply, error, keyRoutes, retryAfter(reply))
      return reply.code(error.status).type('text/plain; charset=utf-8').send(error.message)
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return refuseKeyRequest(request, reply, new ProxyError(413, 'BODY_TOO_LARGE', `Request body is larger than ${config.bodyLimit} bytes (BODY_LIMIT)`), keyRoutes)
    }
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500
    if (status === 500) request.log.error({ err: error }, 'internal error')
    return reply.code(status).type('text/plain; charset=utf-8').send(status === 500 ? 'Internal error in speke-proxy' : error.message)
  })
  app.setNotFoundHandler((request, reply) => {
    // The path is not echoed: a mistyped key URL still holds the enc-token.
    return reply.code(404).type('text/plain; charset=utf-8').send(`No route for ${request.method} to this path: the key URLs are /cpix/getKey, /v1|v2/cpix/pallycon/getKey/{token}, /cpix/anevia/{dash|hls}/{token}/{cid} and /v2/keys (see /openapi.yaml)`)
  })

  // While draining for shutdown, every response tells keep-alive clients to go, so no idle socket holds close() open.
  let closing = false
  app.addHook('preClose', async () => { closing = true })
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) void reply.header('connection', 'close')
    return payload
  })

  // under-pressure measures the event loop; only key requests are shed, so health, readiness and metrics keep answering.
  await app.register(underPressure, { maxEventLoopDelay: config.maxEventLoopDelayMs, pressureHandler: () => {} })
  app.addHook('onRequest', async (request, reply) => {
    if (isKeyRoute(request.url) && app.isUnderPressure()) {
      return await refuseKeyRequest(request, reply, new ProxyError(503, 'OVERLOADED', 'speke-proxy is overloaded (event loop delay): retry shortly'), keyRoutes, { 'retry-after': '5' })
    }
  })
  if (config.rateLimitPerMinute > 0) {
    await app.register(rateLimit, {
      max: config.rateLimitPerMinute,
      timeWindow: 60_000,
      keyGenerator: (request) => rateLimitKey(request.url, request.ip, deps.tenants),
      allowList: (request) => !isKeyRoute(request.url),
      errorResponseBuilder: (_request, context) => new ProxyError(429, 'RATE_LIMITED', `Rate limit of ${context.max} key requests per minute for this tenant exceeded: retry in ${Math.ceil(context.ttl / 1000)} s`)
    })
  }

  await app.register(spekeRoutes, keyRoutes)
  await app.register(pallyconRoutes, keyRoutes)
  await app.register(aneviaRoutes, keyRoutes)
  await app.register(keysRoutes, keyRoutes)
  if (deps.metrics !== undefined) {
    const registry = deps.metrics.registry
    app.get('/metrics', async (_request, reply) => await reply.type(registry.contentType).send(await registry.metrics()))
  }
  await app.register(openapiRoutes)
  await app.register(healthRoutes, {
    readiness: { provider: deps.provider.name, checks: deps.readiness ?? (() => ({})) }
  })
  for (const plugin of deps.plugins ?? []) await app.register(async (child) => { addJsonParser(child); await plugin(child) })
  return app
}

const KEY_ROUTE = /^\/(cpix\/getKey(\?|$)|v[12]\/cpix\/pallycon\/getKey\/|cpix\/anevia\/|v2\/keys(\?|$))/

export function isKeyRoute (url: string): boolean {
  return KEY_ROUTE.test(url)
}

function retryAfter (reply: { getHeader: (name: string) => unknown }): Record<string, string> {
  const value = reply.getHeader('retry-after')
  return value === undefined ? {} : { 'retry-after': String(value) }
}
