// buildApp: the Fastify instance with its parsers, error handling, logging without secrets, and every route.

import Fastify, { LogController } from 'fastify'
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify'
import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import type { Config } from './config.js'
import { MAX_MESSAGE_CHARS, ProxyError, clip, isProxyError } from './errors.js'
import type { Metrics } from './metrics.js'
import { loadedCertificateNotAfter, readTlsFiles } from './tls.js'
import type { KeyProvider } from './kms/provider.js'
import { redactUrl } from './redact.js'
import { aneviaRoutes } from './routes/anevia.js'
import { consoleRoutes } from './routes/console.js'
import { healthRoutes, isReady } from './routes/health.js'
import { metricsRoutes } from './routes/metrics.js'
import { addJsonParser } from './http/json-body.js'
import { addressBucket, keyGuard, tenantBucket } from './http/key-guard.js'
import type { Limiter } from './http/key-guard.js'
import { refuseKeyRequest } from './http/key-reply.js'
import type { AuditHook, KeyObserver, KeyRouteOptions } from './http/key-reply.js'
import { keyRouteOf } from './http/key-route.js'
import { keysRoutes } from './routes/keys.js'
import { openapiRoutes } from './routes/openapi.js'
import { pallyconRoutes } from './routes/pallycon.js'
import { parseQueryString } from './http/query-string.js'
import { spekeRoutes } from './routes/speke.js'
import type { PipelineDeps, ReplyCheck } from './pipeline/key-request.js'
import type { TenantRegistry } from './tenants/registry.js'
import { USER_AGENT } from './version.js'

export interface AppDeps {
  config: Config
  provider: KeyProvider
  tenants: TenantRegistry
  audit?: AuditHook
  checkReply?: ReplyCheck
  /** Extra readiness checks (audit sink, upstream). */
  readiness?: () => Record<string, boolean | string>
  logger: FastifyBaseLogger
  metrics?: Metrics
  observe?: KeyObserver
  /** Extra routes (admin) registered after the key routes. */
  plugins?: Array<(app: FastifyInstance) => Promise<void>>
}

/** A URL the router cannot decode may hold a token: answer without echoing it. */
function refuseUnroutable (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  void reply.code(400).type('text/plain; charset=utf-8').send(error.code === 'FST_ERR_BAD_URL' ? 'Malformed URL: check the percent-encoding of the enc-token and path' : 'Bad request')
}

type SchemaCompilers = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>
type BuildValidator = NonNullable<SchemaCompilers['buildValidator']>
type BuildSerializer = NonNullable<SchemaCompilers['buildSerializer']>

/**
 * Fastify's own schema compilers (Ajv, fast-json-stringify), required from where Fastify would require them, but only when a
 * route with a JSON schema asks for one: no route has a schema, and building them up front was a good part of every start.
 */
const fromFastify = createRequire(import.meta.resolve('fastify'))
let validatorFactory: BuildValidator | undefined
let serializerFactory: BuildSerializer | undefined
const lazySchemaCompilers: SchemaCompilers = {
  buildValidator: ((externalSchemas: unknown, options: unknown) => {
    validatorFactory ??= (fromFastify('@fastify/ajv-compiler') as () => BuildValidator)()
    return (validatorFactory as (externalSchemas: unknown, options: unknown) => unknown)(externalSchemas, options)
  }) as BuildValidator,
  buildSerializer: (externalSchemas, options) => {
    serializerFactory ??= (fromFastify('@fastify/fast-json-stringify-compiler') as () => BuildSerializer)()
    return serializerFactory(externalSchemas, options)
  }
}

/** How often Node checks request and header deadlines (Node's 30 s would let a trickled body outlive REQUEST_TIMEOUT_MS by as much). */
const DEADLINE_CHECK_MS = 1000

export async function buildApp (deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps
  const { requestMs, headersMs, keepAliveMs } = config.timeouts
  // Node's own HTTP(S) server deadlines: a body or header block trickled in is cut off (408),
  // idle keep-alive sockets outlive AWS load balancers' 60 s.
  const serverTimeouts = {
    requestTimeout: requestMs,
    headersTimeout: headersMs,
    keepAliveTimeout: keepAliveMs,
    connectionsCheckingInterval: DEADLINE_CHECK_MS
  }
  const app = Fastify({
    bodyLimit: config.bodyLimit,
    logController: new LogController({ disableRequestLogging: true }),
    // '+' stays a '+' in query values: it is a base64 character of enc-tokens, not a space.
    routerOptions: { maxParamLength: 1000, querystringParser: parseQueryString },
    requestTimeout: requestMs,
    keepAliveTimeout: keepAliveMs,
    // A socket silent for longer than any request can take (the KMS and audit budget is under 29 s) or than keep-alive allows is dead.
    connectionTimeout: Math.max(2 * requestMs, keepAliveMs + 5000),
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    trustProxy: config.trustProxy,
    // HEAD would run a key request without showing it; key routes are POST/GET only.
    exposeHeadRoutes: false,
    frameworkErrors: refuseUnroutable,
    loggerInstance: deps.logger,
    schemaController: { compilersFactory: lazySchemaCompilers },
    http: serverTimeouts,
    ...(config.tls === undefined ? {} : { https: { ...readTlsFiles(config.tls), ...serverTimeouts, handshakeTimeout: headersMs } })
  })

  // CPIX arrives as bytes: with an XML Content-Type, with none at all (PallyCon's Python client),
  // or with a wrong one that the pipeline refuses.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => { done(null, body) })

  const pipeline: PipelineDeps = {
    provider: deps.provider,
    kmsTimeoutMs: config.kmsTimeoutMs,
    deliveryMinRsaBits: config.deliveryMinRsaBits,
    userAgent: USER_AGENT,
    checkReply: deps.checkReply,
    onInternalError: (err) => {
      const e = err instanceof Error ? err : new Error(String(err))
      deps.logger.error({ err: { type: e.name, message: redactUrl(e.message), stack: e.stack } }, 'internal error in a key request')
    }
  }
  const keyRoutes: KeyRouteOptions = { pipeline, audit: deps.audit, observe: deps.observe }
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const refusal = isProxyError(error)
      ? error
      : error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? new ProxyError('BODY_TOO_LARGE', `Request body is larger than ${config.bodyLimit} bytes (BODY_LIMIT)`) : undefined
    if (refusal !== undefined) {
      if (keyRouteOf(request) !== undefined) return refuseKeyRequest(request, reply, refusal, keyRoutes)
      return reply.code(refusal.status).type('text/plain; charset=utf-8').send(clip(refusal.message, MAX_MESSAGE_CHARS))
    }
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500
    if (status === 500) request.log.error({ err: error }, 'internal error')
    return reply.code(status).type('text/plain; charset=utf-8').send(status === 500 ? 'Internal error in speke-proxy' : clip(error.message, MAX_MESSAGE_CHARS))
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
  // Each plugin is loaded only when its setting is on: MAX_EVENT_LOOP_DELAY_MS=0 leaves under-pressure with no threshold (never
  // under pressure), rate limits of 0 leave @fastify/rate-limit unused, and loading and registering them was a good part of a start.
  const shedding = config.maxEventLoopDelayMs > 0
  if (shedding) {
    const { default: underPressure } = await import('@fastify/under-pressure')
    await app.register(underPressure, { maxEventLoopDelay: config.maxEventLoopDelayMs, pressureHandler: () => {} })
  }
  // Two fixed-window counters from @fastify/rate-limit, applied by the key guard only (the matched route says what is a key request).
  if (config.rateLimitPerIpPerMinute > 0 || config.rateLimitPerMinute > 0) {
    const { default: rateLimit } = await import('@fastify/rate-limit')
    await app.register(rateLimit, { global: false })
  }
  const limiter = (max: number, keyGenerator: (request: FastifyRequest) => string): Limiter | undefined =>
    max > 0 ? app.createRateLimit({ max, timeWindow: 60_000, keyGenerator }) : undefined
  app.addHook('onRequest', keyGuard({
    tenants: deps.tenants,
    routes: keyRoutes,
    overloaded: shedding ? () => app.isUnderPressure() : () => false,
    perAddress: limiter(config.rateLimitPerIpPerMinute, addressBucket),
    perTenant: limiter(config.rateLimitPerMinute, tenantBucket)
  }))

  await app.register(spekeRoutes, keyRoutes)
  await app.register(pallyconRoutes, keyRoutes)
  await app.register(aneviaRoutes, keyRoutes)
  await app.register(keysRoutes, keyRoutes)
  const readinessChecks = deps.readiness ?? (() => ({}))
  if (deps.metrics !== undefined) {
    const tls = config.tls
    deps.metrics.watch({
      ready: () => isReady(readinessChecks()),
      certificateNotAfter: tls === undefined ? undefined : () => loadedCertificateNotAfter(tls.certFile)
    })
    await app.register(metricsRoutes, { registry: deps.metrics.registry, token: config.metricsToken })
  }
  await app.register(openapiRoutes)
  await app.register(healthRoutes, {
    readiness: { provider: deps.provider.name, checks: readinessChecks }
  })
  for (const plugin of deps.plugins ?? []) await app.register(async (child) => { addJsonParser(child); await plugin(child) })
  // The operator console (static files) goes with the admin API: ADMIN_TOKEN set and the audit on.
  if (config.adminToken !== undefined && config.audit.enabled) await app.register(consoleRoutes)
  return app
}
