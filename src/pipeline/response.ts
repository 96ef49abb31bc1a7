// What a key request answers: status, headers, body and the record it leaves; the same shape for every refusal.

import { MAX_MESSAGE_CHARS, ProxyError, clip, isProxyError } from '../errors.js'
import type { CpixDocument } from '../cpix/model.js'
import type { KeyRequestRecord, ReturnedKey } from '../request-record.js'

export interface KeyResponse {
  status: number
  headers: Record<string, string>
  body: Buffer | string
  record: KeyRequestRecord
  /** Keys in the reply, for the audit's HMAC fingerprints only; never logged. */
  returnedKeys: ReturnedKey[]
  /** The CPIX document `body` carries, as the pipeline read it (a 2xx reply that reads as CPIX), for routes that answer in another form. */
  document?: CpixDocument
}

/** The SPEKE response headers: only the SPEKE route has them, in the spelling of the caller's SPEKE version. */
export function spekeHeaders (route: string, spekeVersion: string | undefined, userAgent: string): Record<string, string> {
  if (route !== 'speke') return {}
  if (spekeVersion === undefined) return { 'speke-user-agent': userAgent }
  return { 'x-speke-version': spekeVersion, 'x-speke-user-agent': userAgent }
}

/** The ProxyError a caller sees for any failure: the error itself, or INTERNAL (500) for a bug, which `onInternalError` hears of. */
export function asProxyError (err: unknown, onInternalError?: (err: unknown) => void): ProxyError {
  if (isProxyError(err)) return err
  onInternalError?.(err)
  return new ProxyError('INTERNAL', 'Internal error in speke-proxy')
}

/**
 * The answer to a refused key request, wherever it was refused (key guard, route, pipeline): the message as plain
 * text, or as `{"error": …}` on the JSON key API. `record` is what was known of the request by then, its outcome set.
 */
export function refusal (error: ProxyError, record: Omit<KeyRequestRecord, 'status' | 'error' | 'errorCode' | 'keysReturned'>, headers: Record<string, string> = {}): KeyResponse {
  const message = clip(error.message, MAX_MESSAGE_CHARS)
  const json = record.route === 'keys-json'
  return {
    status: error.status,
    headers: { 'content-type': json ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8', ...headers },
    body: json ? JSON.stringify({ error: message }) : message,
    record: { ...record, status: error.status, error: message, errorCode: error.code, keysReturned: 0 },
    returnedKeys: []
  }
}
