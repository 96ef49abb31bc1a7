// Typed errors: every failure the proxy reports carries a declared code (error-codes.ts), its status and a message a person can act on.

import { ERROR_CODES } from './error-codes.js'
import type { CodeWithStatus, ErrorCode } from './error-codes.js'

/** Codes whose status the table fixes, and codes that pass on another party's 4xx (the caller names it). */
type FixedCode = Exclude<ErrorCode, PassedOnCode>
type PassedOnCode = CodeWithStatus<'4xx'>

export class ProxyError extends Error {
  readonly status: number
  readonly code: ErrorCode

  constructor (code: FixedCode, message: string)
  constructor (code: PassedOnCode, message: string, status: number)
  constructor (code: ErrorCode, message: string, status?: number) {
    super(message)
    this.name = 'ProxyError'
    this.code = code
    const declared = ERROR_CODES[code].status
    this.status = declared === '4xx' ? passedOn(code, status) : declared
  }
}

function passedOn (code: ErrorCode, status: number | undefined): number {
  if (status === undefined || status < 400 || status > 499) throw new RangeError(`${code} passes on a 4xx status, got ${String(status)}`)
  return status
}

export const badRequest = (message: string, code: CodeWithStatus<400>): ProxyError => new ProxyError(code, message)
export const unprocessable = (message: string, code: CodeWithStatus<422>): ProxyError => new ProxyError(code, message)

export function isProxyError (value: unknown): value is ProxyError {
  return value instanceof ProxyError
}

/** Longest stretch of caller input quoted back in a message, header or record. */
const MAX_REFLECTED_CHARS = 200

/** Caller input cut for quoting: at most `max` characters (with "..." when cut), never half a surrogate pair. */
export function clip (value: string, max = MAX_REFLECTED_CHARS): string {
  if (value.length <= max) return value
  let end = max - 3
  const last = value.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end--
  return `${value.slice(0, end)}...`
}

/** Longest error message sent or recorded: a net under any message that quotes more than it should. */
export const MAX_MESSAGE_CHARS = 1000
