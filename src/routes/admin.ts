// Admin routes: GET /admin/audit (query the trail), POST /admin/audit/hash (HMAC a value), behind a bearer ADMIN_TOKEN, limited per IP.

import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { hmacValue, queryAudit, type AuditFilter, type AuditSource } from '../audit/index.js'
import { isProxyError, ProxyError } from '../errors.js'

export interface AdminRoutesOptions {
  /** Where audit queries read from (trail.source: PostgreSQL when configured, else the files). */
  source: AuditSource
  hmacKey: Buffer
  /** ADMIN_TOKEN; when undefined no /admin route is registered. */
  adminToken?: string
  /** Admin requests per client IP per minute, default ADMIN_RATE_LIMIT_PER_MINUTE (beyond: 429). */
  perMinute?: number
}

/** An admin token is worth guessing: each client IP gets this many admin requests a minute, right or wrong. */
const ADMIN_RATE_LIMIT_PER_MINUTE = 30
/** Client IPs tracked at once; past this the oldest window is dropped. */
const MAX_TRACKED_IPS = 10_000

/** A fixed one-minute window per client IP. Returns the seconds to wait when over the limit, else undefined. */
function createIpLimiter (perMinute: number, now: () => number = Date.now): (ip: string) => number | undefined {
  const windows = new Map<string, { start: number, count: number }>()
  return (ip) => {
    const t = now()
    let w = windows.get(ip)
    if (w === undefined || t - w.start >= 60_000) {
      if (w !== undefined) windows.delete(ip)
      // Windows are kept in the order they started, so the first is the oldest.
      if (windows.size >= MAX_TRACKED_IPS) windows.delete(windows.keys().next().value as string)
      w = { start: t, count: 0 }
      windows.set(ip, w)
    }
    w.count++
    return w.count > perMinute ? Math.max(1, Math.ceil((w.start + 60_000 - t) / 1000)) : undefined
  }
}

const MAX_HASH_INPUT = 4096
const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/** Constant-time comparison of the presented bearer token with the configured one (both hashed to equal length first). */
export function bearerMatches (header: string | undefined, token: string): boolean {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '')
  const presented = m === null ? '' : m[1]
  return timingSafeEqual(digest(presented), digest(token)) && m !== null
}

/** Route error handler: every failure answers JSON {"error", "code"}; ProxyError and Fastify's own 4xx keep their status. */
function sendError (err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  if (isProxyError(err)) {
    void reply.code(err.status).send({ error: err.message, code: err.code })
    return
  }
  const status = (err as { statusCode?: unknown }).statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) {
    void reply.code(status).send({ error: err instanceof Error ? err.message : 'bad request', code: 'BAD_ADMIN_REQUEST' })
    return
  }
  request.log.error({ err }, 'admin request failed')
  void reply.code(500).send({ error: 'internal error', code: 'INTERNAL' })
}

const bad = (message: string): ProxyError => new ProxyError('BAD_ADMIN_REQUEST', message, 400)

function oneString (query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw bad(`${name} may be given once`)
  return value
}

function filterFrom (query: Record<string, unknown>): AuditFilter {
  const limit = oneString(query, 'limit')
  if (limit !== undefined && !/^\d{1,6}$/.test(limit)) throw bad('limit must be a positive integer')
  return {
    tenant: oneString(query, 'tenant'),
    contentId: oneString(query, 'content_id'),
    kid: oneString(query, 'kid'),
    fingerprint: oneString(query, 'fingerprint'),
    outcome: oneString(query, 'outcome'),
    since: oneString(query, 'since'),
    until: oneString(query, 'until'),
    limit: limit === undefined ? undefined : Number(limit),
    cursor: oneString(query, 'cursor')
  }
}

function valueBytes (body: unknown): string | Buffer {
  if (typeof body !== 'object' || body === null) throw bad('body must be JSON {"value": "..."}')
  const { value, encoding } = body as { value?: unknown, encoding?: unknown }
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_HASH_INPUT) throw bad(`value must be a string of 1 to ${MAX_HASH_INPUT} characters`)
  if (encoding === undefined || encoding === 'utf8') return value
  if (encoding === 'hex') {
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(value)) throw bad('value is not hex')
    return Buffer.from(value, 'hex')
  }
  if (encoding === 'base64') {
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) throw bad('value is not base64')
    return Buffer.from(value, /[-_]/.test(value) ? 'base64url' : 'base64')
  }
  throw bad('encoding must be utf8, hex or base64')
}

/** Registers the admin routes (nothing when adminToken is undefined). Hooks are per route, so it is safe with or without register(). */
export async function adminRoutes (app: FastifyInstance, opts: AdminRoutesOptions): Promise<void> {
  const token = opts.adminToken
  if (token === undefined) return
  if (token.length === 0) throw new Error('ADMIN_TOKEN must not be empty')
  const limit = opts.perMinute ?? ADMIN_RATE_LIMIT_PER_MINUTE
  const overLimit = createIpLimiter(limit)

  const authorize = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    reply.header('cache-control', 'no-store')
    const wait = overLimit(request.ip)
    if (wait !== undefined) {
      await reply.code(429).header('retry-after', String(wait)).send({ error: `more than ${limit} admin requests a minute from this address: retry in ${wait} s`, code: 'RATE_LIMITED' })
      return
    }
    if (!bearerMatches(request.headers.authorization, token)) {
      // Who tried and where, never what they presented.
      request.log.warn({ ip: request.ip, method: request.method, route: request.routeOptions.url, authorization: request.headers.authorization === undefined ? 'missing' : 'wrong' }, 'admin request with a missing or wrong ADMIN_TOKEN refused')
      await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'a valid admin bearer token is required' })
    }
  }

  app.get('/admin/audit', { onRequest: authorize, errorHandler: sendError }, async (request) => {
    return await queryAudit(opts.source, filterFrom(request.query as Record<string, unknown>))
  })

  app.post('/admin/audit/hash', { onRequest: authorize, errorHandler: sendError, bodyLimit: 16 * 1024 }, async (request) => {
    return { hmac: hmacValue(opts.hmacKey, valueBytes(request.body)) }
  })
}
