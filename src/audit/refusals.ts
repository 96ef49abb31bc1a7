// Refusal summary: counts refusals of requests without a valid credential per window, bounded however many keys an attacker varies.

import { cleanText, MAX_REFLECTED, type RefusalCount, type RefusalSummary } from './record.js'

/** Distinct (route, status, reason, client IP) keys counted per window; refusals past this go to `other`. */
const MAX_COUNTED_KEYS = 1000
/** Keys itemised in the summary record, the most refused first; the rest are added to `other`. */
const SUMMARY_TOP = 50

interface Refusal { route: string, status: number, reason: string, callerIp?: string }

export interface RefusalCounter {
  /** Counts one refusal into the window that holds `now`. Returns the summary of the previous window when `now` left it. */
  add (refusal: Refusal, now: Date): RefusalSummary | undefined
  /** The summary of the current window when its end is at or before `now` (or always when `force`), emptying the counter. */
  take (now: Date, force?: boolean): RefusalSummary | undefined
  /** When the current window ends (undefined when nothing is counted). */
  windowEnd (): Date | undefined
}

export function createRefusalCounter (windowMs = 60_000, top = SUMMARY_TOP, maxKeys = MAX_COUNTED_KEYS): RefusalCounter {
  let start: number | undefined
  let counts = new Map<string, RefusalCount>()
  let total = 0
  let other = 0

  function summarise (): RefusalSummary | undefined {
    if (start === undefined) return undefined
    const sorted = [...counts.values()].sort((a, b) => b.count - a.count)
    const shown = sorted.slice(0, top)
    const hidden = sorted.slice(top).reduce((sum, c) => sum + c.count, 0)
    const summary: RefusalSummary = {
      window_start: new Date(start).toISOString(),
      window_end: new Date(start + windowMs).toISOString(),
      total,
      top: shown,
      other: other + hidden
    }
    start = undefined
    counts = new Map()
    total = 0
    other = 0
    return summary
  }

  return {
    add (refusal, now) {
      const windowStart = Math.floor(now.getTime() / windowMs) * windowMs
      const previous = start !== undefined && start !== windowStart ? summarise() : undefined
      start = windowStart
      total++
      const entry: RefusalCount = {
        route: cleanText(refusal.route, MAX_REFLECTED),
        status: refusal.status,
        reason: cleanText(refusal.reason, MAX_REFLECTED),
        caller_ip: refusal.callerIp === undefined ? null : cleanText(refusal.callerIp, MAX_REFLECTED),
        count: 0
      }
      const key = JSON.stringify([entry.route, entry.status, entry.reason, entry.caller_ip])
      const known = counts.get(key)
      if (known !== undefined) known.count++
      else if (counts.size < maxKeys) counts.set(key, { ...entry, count: 1 })
      else other++
      return previous
    },
    take (now, force = false) {
      if (start === undefined) return undefined
      if (!force && now.getTime() < start + windowMs) return undefined
      return summarise()
    },
    windowEnd: () => start === undefined ? undefined : new Date(start + windowMs)
  }
}
