// The buckets a key request counts against for rate limiting: its identified caller, and its client address.

import { createHash } from 'node:crypto'
import { isIPv6 } from 'node:net'
import type { Caller } from './registry.js'

/**
 * Managed tenants count by tenant id. A pass-through token counts by its own hash: the site id inside it is
 * unverified, so forging it must neither drain another tenant's budget nor escape the limit (rotating
 * tokens is what the per-address limit is for).
 */
export function rateLimitKey (caller: Caller, token: string): string {
  return caller.managed ? `managed:${caller.tenant}` : `token:${createHash('sha256').update(token).digest('hex')}`
}

/**
 * The client address bucket: an IPv4 address (also when IPv4-mapped), or the /64 prefix of an IPv6 address,
 * since one IPv6 host usually holds a whole /64 and could rotate through it.
 */
export function clientAddressKey (ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped !== null) return `ip:${mapped[1]}`
  if (!isIPv6(ip)) return `ip:${ip}`
  return `ip6:${ipv6Groups(ip).slice(0, 4).join(':')}::/64`
}

/** The eight 16-bit groups of an IPv6 address, '::' expanded and without a zone id. */
function ipv6Groups (ip: string): string[] {
  const address = ip.split('%')[0].toLowerCase()
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined]
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const width = (groups: string[]): number => groups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0)
  const missing = tail === undefined ? 0 : 8 - width(left) - width(right)
  return [...left, ...Array<string>(Math.max(0, missing)).fill('0'), ...right].map(g => g.includes('.') ? g : parseInt(g, 16).toString(16))
}
