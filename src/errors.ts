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
