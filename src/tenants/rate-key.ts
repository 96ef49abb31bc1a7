// The tenant a request counts against for rate limiting, read from its enc-token position without trusting raw input as a label.

import { queryToken } from '../redact.js'
import { resolveCaller } from './registry.js'
import type { TenantRegistry } from './registry.js'

const PATH_TOKEN = [/\/cpix\/pallycon\/getKey\/([^?#]+)/, /\/cpix\/anevia\/[^/]+\/(.+)\/[^/?#]*/]

export function tokenInUrl (url: string): string | undefined {
  const fromQuery = queryToken(url)
  if (fromQuery !== undefined) return fromQuery
  for (const pattern of PATH_TOKEN) {
    const m = pattern.exec(url)
    if (m !== null) {
      try {
        return decodeURIComponent(m[1])
      } catch {
        return m[1]
      }
    }
  }
  return undefined
}

export function rateLimitKey (url: string, ip: string, registry: TenantRegistry): string {
  try {
    return `tenant:${resolveCaller(tokenInUrl(url), registry).tenant}`
  } catch {
    return `ip:${ip}`
  }
}
