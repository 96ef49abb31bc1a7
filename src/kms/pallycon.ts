// The PallyCon KMS over HTTP with undici: one keep-alive pool, strict timeouts, one retry within the deadline.

import { createRequire } from 'node:module'
import type { Dispatcher, Pool as PoolClass, errors as UndiciErrors } from 'undici'
import { ProxyError } from '../errors.js'
import type { KeyProvider, ProviderReply, ProviderRequest } from './provider.js'

export interface PallyConOptions {
  baseUrl: URL
  timeoutMs: number
  userAgent: string
  /** Largest reply body accepted, bytes. */
  maxReplyBytes?: number
  connections?: number
}

const RETRYABLE_STATUS = new Set([502, 503, 504])

/**
 * Only the parts of undici this client uses (its Pool, the request API and the error classes), not undici's index, which
 * also loads fetch, WebSocket, the mocks, caches and interceptors: that took about 35 of its 60 ms at every start. The index
 * puts the request API on Dispatcher.prototype; here it is called on the pool. test/kms/undici-parts.test.ts checks these
 * are undici's own.
 */
const fromUndici = createRequire(import.meta.resolve('undici'))
const Pool = fromUndici('./lib/dispatcher/pool.js') as typeof PoolClass
const poolRequest = fromUndici('./lib/api/api-request.js') as (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>
const undiciErrors = fromUndici('./lib/core/errors.js') as typeof UndiciErrors

/** The upstream path for a request: the same URL family the caller used, with the upstream enc-token. */
export function upstreamPath (basePath: string, request: ProviderRequest): { method: 'GET' | 'POST', path: string } {
  const base = basePath.replace(/\/$/, '')
  switch (request.route) {
    case 'speke':
      return { method: 'POST', path: `${base}/cpix/getKey?enc-token=${encodeQueryToken(request.token)}` }
    case 'pallycon-v1':
    case 'pallycon-v2': {
      const version = request.route === 'pallycon-v1' ? 'v1' : 'v2'
      const query = request.keyRotation === true ? '?key-rotation=true' : ''
      return { method: 'POST', path: `${base}/${version}/cpix/pallycon/getKey/${request.token}${query}` }
    }
    case 'anevia': {
      if (request.anevia === undefined) throw new TypeError('anevia request without format and content id')
      return { method: 'GET', path: `${base}/cpix/anevia/${request.anevia.format}/${request.token}/${encodeURIComponent(request.anevia.contentId)}` }
    }
  }
}

/** Keep base64 characters readable ('/' and '=' are safe in a query) but never let '+' turn into a space. */
function encodeQueryToken (token: string): string {
  return token.replace(/[^A-Za-z0-9/=_.~-]/g, c => encodeURIComponent(c))
}

export function createPallyConProvider (options: PallyConOptions): KeyProvider {
  const maxReplyBytes = options.maxReplyBytes ?? 4 * 1024 * 1024
  const pool = new Pool(options.baseUrl.origin, {
    connections: options.connections ?? 64,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    connect: { timeout: Math.min(options.timeoutMs, 5000), rejectUnauthorized: true }
  })

  async function attempt (request: ProviderRequest, signal: AbortSignal): Promise<ProviderReply> {
    const started = performance.now()
    const { method, path } = upstreamPath(options.baseUrl.pathname, request)
    const headers: Record<string, string> = { 'user-agent': options.userAgent, accept: 'application/xml, text/xml, */*' }
    if (request.body !== undefined) headers['content-type'] = request.contentType ?? 'application/xml'
    if (request.spekeVersion !== undefined) headers['x-speke-version'] = request.spekeVersion
    const response = await poolRequest.call(pool, { method, path, headers, body: request.body, signal })
    const body = await readLimited(response.body, maxReplyBytes)
    const contentType = response.headers['content-type']
    return {
      status: response.statusCode,
      contentType: Array.isArray(contentType) ? contentType[0] : contentType,
      body,
      latencyMs: performance.now() - started
    }
  }

  return {
    name: 'pallycon',
    async getKeys (request, signal) {
      const started = performance.now()
      // Every pass returns, throws, or (once) retries.
      for (let tries = 0; ; tries++) {
        try {
          const reply = await attempt(request, signal)
          if (RETRYABLE_STATUS.has(reply.status) && mayRetry(tries, started, options.timeoutMs)) continue
          return { ...reply, latencyMs: performance.now() - started }
        } catch (err) {
          if (signal.aborted || isTimeout(err)) throw kmsTimeout(options.timeoutMs)
          if (isReplyTooLarge(err)) throw err
          if (isConnectionError(err) && mayRetry(tries, started, options.timeoutMs)) continue
          throw kmsUnreachable(err)
        }
      }
    },
    async close () {
      await pool.close()
    }
  }
}

/** A first attempt may be repeated while more than half the deadline is left. */
function mayRetry (tries: number, started: number, timeoutMs: number): boolean {
  return tries === 0 && timeoutMs - (performance.now() - started) > timeoutMs / 2
}

async function readLimited (body: Dispatcher.ResponseData['body'], limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > limit) {
      body.destroy()
      throw new ProxyError('KMS_REPLY_TOO_LARGE', `KMS reply is larger than ${limit} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

function isReplyTooLarge (err: unknown): boolean {
  return err instanceof ProxyError && err.code === 'KMS_REPLY_TOO_LARGE'
}

function isTimeout (err: unknown): boolean {
  return err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError ||
    err instanceof undiciErrors.ConnectTimeoutError ||
    (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError'))
}

function isConnectionError (err: unknown): boolean {
  if (err instanceof undiciErrors.SocketError) return true
  const code = errorCode(err)
  return code !== undefined && ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'].includes(code)
}

/** The code of a Node or undici error (ECONNREFUSED, UND_ERR_SOCKET…), when it has one. */
function errorCode (err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined
}

function kmsTimeout (timeoutMs: number): ProxyError {
  return new ProxyError('KMS_TIMEOUT', `KMS did not answer within ${timeoutMs} ms (KMS_TIMEOUT_MS)`)
}

function kmsUnreachable (err: unknown): ProxyError {
  const code = errorCode(err)
  return new ProxyError('KMS_UNREACHABLE', `KMS connection failed${code !== undefined ? ` (${code})` : ''}`)
}
