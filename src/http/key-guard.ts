// The gate before every key route, on the URL alone, before any body byte: shed load, limit per address, identify caller, limit per tenant.

import type { FastifyReply, FastifyRequest } from 'fastify'
import { ProxyError, isProxyError } from '../errors.js'
import { clientAddressKey, rateLimitKey } from '../tenants/rate-key.js'
import type { TenantRegistry } from '../tenants/registry.js'
import { callerOf, identifyCaller, keyRouteOf } from './key-route.js'
import { refuseKeyRequest } from './key-reply.js'
import type { KeyRouteOptions } from './key-reply.js'

/** A fixed-window counter (e.g. @fastify/rate-limit's createRateLimit): whether this request is over the limit, and for how long. */
export type Limiter = (request: FastifyRequest) => Promise<
  { isAllowed: true } | { isAllowed: false, isExceeded: boolean, max: number, ttlInSeconds: number }
>

export interface KeyGuard {
  tenants: TenantRegistry
  routes: KeyRouteOptions
  /** True while the event loop lags: key requests are shed, health and metrics keep answering. */
  overloaded: () => boolean
  /** Counts every key request by client address (request.ip, so TRUST_PROXY applies); none when disabled. */
  perAddress?: Limiter
  /** Counts identified callers by tenant (managed) or token (pass-through); none when disabled. */
  perTenant?: Limiter
}

/** The onRequest hook: Fastify has routed the request, so the matched route's config says if it is a key route, however it is spelt. */
export function keyGuard (guard: KeyGuard): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  return async (request, reply) => {
    const route = keyRouteOf(request)
    if (route === undefined) return undefined
    if (guard.overloaded()) {
      return await refuseKeyRequest(request, reply, new ProxyError('OVERLOADED', 'speke-proxy is overloaded (event loop delay): retry shortly'), guard.routes, { 'retry-after': '5' })
    }
    const byAddress = await over(guard.perAddress, request)
    if (byAddress !== undefined) {
      return await refuseKeyRequest(request, reply, new ProxyError('RATE_LIMITED_ADDRESS', `Rate limit of ${byAddress.max} key requests per minute from this client address exceeded: retry in ${byAddress.ttlInSeconds} s`), guard.routes, limitHeaders(byAddress))
    }
    try {
      identifyCaller(request, route, guard.tenants)
    } catch (err) {
      if (!isProxyError(err)) throw err
      return await refuseKeyRequest(request, reply, err, guard.routes)
    }
    const byTenant = await over(guard.perTenant, request)
    if (byTenant !== undefined) {
      return await refuseKeyRequest(request, reply, new ProxyError('RATE_LIMITED', `Rate limit of ${byTenant.max} key requests per minute for this tenant exceeded: retry in ${byTenant.ttlInSeconds} s`), guard.routes, limitHeaders(byTenant))
    }
    return undefined
  }
}

function limitHeaders (limit: { max: number, ttlInSeconds: number }): Record<string, string> {
  const reset = String(limit.ttlInSeconds)
  return { 'retry-after': reset, 'x-ratelimit-limit': String(limit.max), 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset }
}

async function over (limiter: Limiter | undefined, request: FastifyRequest): Promise<{ max: number, ttlInSeconds: number } | undefined> {
  if (limiter === undefined) return undefined
  const result = await limiter(request)
  return !result.isAllowed && result.isExceeded ? { max: result.max, ttlInSeconds: result.ttlInSeconds } : undefined
}

/** The per-address bucket of a request, for the limiter's keyGenerator. */
export function addressBucket (request: FastifyRequest): string {
  return clientAddressKey(request.ip)
}

/** The per-tenant bucket of an identified request, for the limiter's keyGenerator (the guard only asks after identifying). */
export function tenantBucket (request: FastifyRequest): string {
  const identified = callerOf(request)
  return identified === undefined ? addressBucket(request) : rateLimitKey(identified.caller, identified.token)
}
