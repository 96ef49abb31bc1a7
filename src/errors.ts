// Typed errors: every failure the proxy can report carries an HTTP status and a message a person can act on.

export class ProxyError extends Error {
  readonly status: number
  readonly code: string

  constructor (status: number, code: string, message: string) {
    super(message)
    this.name = 'ProxyError'
    this.status = status
    this.code = code
  }
}

export const badRequest = (message: string, code = 'BAD_REQUEST'): ProxyError => new ProxyError(400, code, message)
export const unprocessable = (message: string, code = 'UNPROCESSABLE'): ProxyError => new ProxyError(422, code, message)
export const badGateway = (message: string, code = 'BAD_GATEWAY'): ProxyError => new ProxyError(502, code, message)

export function isProxyError (value: unknown): value is ProxyError {
  return value instanceof ProxyError
}

/** Longest stretch of caller input quoted back in a message, header or record. */
export const MAX_REFLECTED_CHARS = 200

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
