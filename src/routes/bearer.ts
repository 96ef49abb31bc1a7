// Bearer-token check shared by /metrics (METRICS_TOKEN) and the admin API (ADMIN_TOKEN), in constant time.

import { createHash, timingSafeEqual } from 'node:crypto'

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/** Constant-time comparison of the presented bearer token with the configured one (both hashed to equal length first). */
export function bearerMatches (header: string | undefined, token: string): boolean {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '')
  const presented = m === null ? '' : m[1]
  return timingSafeEqual(digest(presented), digest(token)) && m !== null
}
