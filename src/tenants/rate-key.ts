// The tenant a request counts against for rate limiting, read from its enc-token position without trusting raw input as a label.

import { createHash } from 'node:crypto'
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

/**
 * Managed tenants count by tenant id. A pass-through token counts by its own hash: the site id inside it is
 * unverified, so forging it must neither drain another tenant's budget nor escape the limit.
 */
export function rateLimitKey (url: string, ip: string, registry: TenantRegistry): string {
  const token = tokenInUrl(url)
  try {
    const caller = resolveCaller(token, registry)
    return caller.managed ? `managed:${caller.tenant}` : `token:${createHash('sha256').update(token ?? '').digest('hex')}`
  } catch {
    return `ip:${ip}`
  }
}
