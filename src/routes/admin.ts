// Admin routes behind a bearer ADMIN_TOKEN: audit search, key lookup, activity, audit state, HMAC of a value; limited per IP.

import type { KeyObject } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { hmacValue } from '../audit/record.js'
import { auditActivity } from '../audit/activity.js'
import { lookupKeys } from '../audit/key-lookup.js'
import { bad as badQuery, queryAudit, type AuditSource } from '../audit/query.js'
import { createStateReader } from '../audit/state.js'
import { clip, isProxyError, ProxyError } from '../errors.js'
import { bearerMatches } from './bearer.js'

export interface AdminRoutesOptions {
  /** Where audit queries read from (trail.source: PostgreSQL when configured, else the files). */
  source: AuditSource
  hmacKey: Buffer
  /** ADMIN_TOKEN; when undefined no /admin route is registered. */
  adminToken?: string
  /** Missing or wrong tokens per client IP per minute, default ADMIN_FAILED_PER_MINUTE; beyond, every admin request from it gets 429. */
  failedPerMinute?: number
  /** Requests with the right token per client IP per minute, default ADMIN_RATE_LIMIT_PER_MINUTE (beyond: 429). */
  perMinute?: number
  /** The audit signing key's public key: GET /admin/audit/state then checks checkpoint signatures, not only hash links. */
  publicKey?: KeyObject
}

/** An admin token is worth guessing: each client IP gets this many missing or wrong tokens a minute, then waits. */
const ADMIN_FAILED_PER_MINUTE = 30
/** Authorised admin requests per client IP per minute: room for a console refreshing a few panels. */
const ADMIN_RATE_LIMIT_PER_MINUTE = 600
/** Client IPs tracked at once; past this the oldest window is dropped. */
const MAX_TRACKED_IPS = 10_000

interface IpLimiter {
  /** Counts one request; the seconds to wait when that goes over the limit, else undefined. */
  hit: (ip: string) => number | undefined
  /** The seconds to wait when the limit is already used up, else undefined (counts nothing). */
  held: (ip: string) => number | undefined
}

/** A fixed one-minute window per client IP. */
function createIpLimiter (perMinute: number, now: () => number = Date.now): IpLimiter {
  const windows = new Map<string, { start: number, count: number }>()
  const current = (ip: string, t: number): { start: number, count: number } | undefined => {
    const w = windows.get(ip)
    if (w === undefined || t - w.start < 60_000) return w
    windows.delete(ip)
    return undefined
  }
  const wait = (w: { start: number }, t: number): number => Math.max(1, Math.ceil((w.start + 60_000 - t) / 1000))
  return {
    hit (ip) {
      const t = now()
      let w = current(ip, t)
      if (w === undefined) {
        // Windows are kept in the order they started, so the first is the oldest.
        if (windows.size >= MAX_TRACKED_IPS) windows.delete(windows.keys().next().value as string)
        w = { start: t, count: 0 }
        windows.set(ip, w)
      }
      w.count++
      return w.count > perMinute ? wait(w, t) : undefined
    },
    held (ip) {
      const t = now()
      const w = current(ip, t)
      return w !== undefined && w.count >= perMinute ? wait(w, t) : undefined
    }
  }
}

const MAX_HASH_INPUT = 4096
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

/** The query parameters each admin GET takes; any other is a 400 naming it (a typo must not widen a search silently). */
const AUDIT_PARAMS = ['tenant', 'content_id', 'route', 'kid', 'fingerprint', 'outcome', 'since', 'until', 'limit', 'cursor'] as const
const KEYS_PARAMS = ['content_id', 'tenant', 'kid', 'limit', 'cursor'] as const
const ACTIVITY_PARAMS = ['minutes'] as const
const STATE_PARAMS = [] as const

/** The query as single strings by name; an unknown or repeated parameter is BAD_AUDIT_QUERY. */
function readQuery<N extends string> (request: FastifyRequest, names: readonly N[]): Partial<Record<N, string>> {
  const query = (request.query ?? {}) as Record<string, unknown>
  const out: Partial<Record<N, string>> = {}
  for (const [name, value] of Object.entries(query)) {
    if (!(names as readonly string[]).includes(name)) {
      const takes = names.length === 0 ? 'this path takes no query parameters' : `this path takes ${names.join(', ')}`
      throw badQuery(`unknown query parameter ${JSON.stringify(clip(name, 60))}: ${takes}`)
    }
    if (typeof value !== 'string') throw badQuery(`${name} may be given once`)
    out[name as N] = value
  }
  return out
}

/** A whole number parameter (digits only), or undefined when absent. */
function integer (value: string | undefined, name: string, range: string): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d{1,6}$/.test(value)) throw badQuery(`${name} must be an integer ${range}`)
  return Number(value)
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
  const failedLimit = opts.failedPerMinute ?? ADMIN_FAILED_PER_MINUTE
  const limit = opts.perMinute ?? ADMIN_RATE_LIMIT_PER_MINUTE
  const failures = createIpLimiter(failedLimit)
  const authorised = createIpLimiter(limit)
  const readState = createStateReader(opts.source, { publicKey: opts.publicKey })

  const tooMany = async (reply: FastifyReply, wait: number, error: string): Promise<void> => {
    await reply.code(429).header('retry-after', String(wait)).send({ error: `${error}: retry in ${wait} s`, code: 'RATE_LIMITED' })
  }

  const authorize = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    reply.header('cache-control', 'no-store')
    // An address that used up its failed attempts waits, right token or not: guessing cannot outrun the limit.
    const held = failures.held(request.ip)
    if (held !== undefined) {
      await tooMany(reply, held, `more than ${failedLimit} admin requests with a missing or wrong token a minute from this address`)
      return
    }
    if (!bearerMatches(request.headers.authorization, token)) {
      failures.hit(request.ip)
      // Who tried and where, never what they presented.
      request.log.warn({ ip: request.ip, method: request.method, route: request.routeOptions.url, authorization: request.headers.authorization === undefined ? 'missing' : 'wrong' }, 'admin request with a missing or wrong ADMIN_TOKEN refused')
      await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'a valid admin bearer token is required' })
      return
    }
    const wait = authorised.hit(request.ip)
    if (wait !== undefined) await tooMany(reply, wait, `more than ${limit} admin requests a minute from this address`)
  }

  const guarded = { onRequest: authorize, errorHandler: sendError }

  app.get('/admin/audit', guarded, async (request) => {
    const q = readQuery(request, AUDIT_PARAMS)
    return await queryAudit(opts.source, {
      tenant: q.tenant,
      contentId: q.content_id,
      route: q.route,
      kid: q.kid,
      fingerprint: q.fingerprint,
      outcome: q.outcome,
      since: q.since,
      until: q.until,
      limit: integer(q.limit, 'limit', 'from 1 to 1000'),
      cursor: q.cursor
    })
  })

  app.get('/admin/keys', guarded, async (request) => {
    const q = readQuery(request, KEYS_PARAMS)
    return await lookupKeys(opts.source, { contentId: q.content_id, tenant: q.tenant, kid: q.kid, limit: integer(q.limit, 'limit', 'from 1 to 1000'), cursor: q.cursor })
  })

  app.get('/admin/activity', guarded, async (request) => {
    const q = readQuery(request, ACTIVITY_PARAMS)
    return await auditActivity(opts.source, integer(q.minutes, 'minutes', 'from 1 to 1440'))
  })

  app.get('/admin/audit/state', guarded, async (request) => {
    readQuery(request, STATE_PARAMS)
    return await readState()
  })

  app.post('/admin/audit/hash', { ...guarded, bodyLimit: 16 * 1024 }, async (request) => {
    return { hmac: hmacValue(opts.hmacKey, valueBytes(request.body)) }
  })
}
