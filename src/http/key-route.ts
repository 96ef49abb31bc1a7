// A key request as parsed: its key route (the matched route's config, never the raw URL), enc-token, caller, SPEKE version and body.

import type { FastifyRequest } from 'fastify'
import { ProxyError, badRequest, clip } from '../errors.js'
import { resolveCaller } from '../tenants/registry.js'
import type { KeyRouteName } from '../protocol.js'
import type { Caller, TenantRegistry } from '../tenants/registry.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    keyRoute?: KeyRouteName
  }
}

/** The key route Fastify's router matched, whatever spelling of the path the caller used; undefined for every other route. */
export function keyRouteOf (request: FastifyRequest): KeyRouteName | undefined {
  return request.routeOptions.config?.keyRoute
}

export interface AneviaPath { format: 'dash' | 'hls', token: string, contentId: string }

/** `/cpix/anevia/{dash|hls}/{token}/{cid}`: the token may contain '/', the content id is the last segment. */
export function aneviaPath (params: unknown): AneviaPath {
  const p = params as { format?: string, '*'?: string }
  const format = p.format ?? ''
  if (format !== 'dash' && format !== 'hls') {
    throw new ProxyError('UNKNOWN_FORMAT', /^[a-z0-9]{1,12}$/i.test(format) ? `Unknown Anevia streaming format "${format}": use dash or hls` : 'Unknown Anevia streaming format: use /cpix/anevia/{dash|hls}/{enc-token}/{content-id}')
  }
  const rest = p['*'] ?? ''
  const slash = rest.lastIndexOf('/')
  const token = slash === -1 ? '' : rest.slice(0, slash)
  const contentId = slash === -1 ? rest : rest.slice(slash + 1)
  if (contentId === '' || token === '') throw new ProxyError('BAD_ANEVIA_PATH', 'Anevia URLs have the form /cpix/anevia/{dash|hls}/{enc-token}/{content-id}')
  return { format, token, contentId }
}

/** What the caller put in the enc-token position, read from the router's parsed query or path (never a regex over the raw URL). */
function presentedToken (request: FastifyRequest, route: KeyRouteName): string | undefined {
  if (route === 'speke' || route === 'keys-json') {
    const value = (request.query as Record<string, string | string[] | undefined>)['enc-token']
    if (Array.isArray(value)) throw badRequest('enc-token is given more than once in the URL: give it once', 'REPEATED_TOKEN')
    return value
  }
  if (route === 'anevia') return aneviaPath(request.params).token
  return (request.params as { '*'?: string })['*']
}

const callers = new WeakMap<FastifyRequest, { caller: Caller, token: string }>()

/** Identify the caller of a key request from its URL alone (before any body byte is read); refuses with 400/401/403/404. */
export function identifyCaller (request: FastifyRequest, route: KeyRouteName, registry: TenantRegistry): { caller: Caller, token: string } {
  const token = presentedToken(request, route)
  const caller = resolveCaller(token, registry)
  const identified = { caller, token: token ?? '' }
  callers.set(request, identified)
  return identified
}

/** The caller identified for this request, if its credential was accepted. */
export function callerOf (request: FastifyRequest): { caller: Caller, token: string } | undefined {
  return callers.get(request)
}

/** The identified caller; a key route's handler never runs without one (the guard refuses first). */
export function requireCaller (request: FastifyRequest): { caller: Caller, token: string } {
  const identified = callers.get(request)
  if (identified === undefined) throw new ProxyError('MISSING_TOKEN', 'Missing enc-token: put your PallyCon KMS token or proxy credential in the URL')
  return identified
}

/** The CPIX request body as bytes (every key route parses bodies as a Buffer); empty when there is none. */
export function bodyOf (request: FastifyRequest): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)
}

/** The X-Speke-Version header as sent (first value), cut for quoting back in headers, logs and audit. */
export function spekeVersionOf (request: FastifyRequest): string | undefined {
  const value = request.headers['x-speke-version']
  const first = Array.isArray(value) ? value[0] : value
  return first === undefined ? undefined : clip(first)
}
