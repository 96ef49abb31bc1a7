// Whether the key provider is known to be failing: several transport failures in a row, cleared by a success or by time.

import type { KeyRequestRecord } from './request-record.js'

export interface UpstreamHealth {
  note: (record: KeyRequestRecord) => void
  healthy: () => boolean
}

/**
 * Trips after `failuresToTrip` consecutive 502/504s from the provider. An instance taken out of rotation gets no
 * traffic to prove itself with, so the verdict also lapses `coolDownMs` after the last failure.
 */
export function createUpstreamHealth (failuresToTrip = 3, coolDownMs = 30_000, now: () => number = Date.now): UpstreamHealth {
  let consecutive = 0
  let lastFailure = 0
  return {
    note (record) {
      // The KMS answered (whatever its reply was worth): it is reachable. No answer, or a 5xx, is a failure.
      if (record.upstreamStatus !== undefined && record.upstreamStatus < 500) {
        consecutive = 0
      } else if (record.outcome === 'upstream_error' && (record.status === 502 || record.status === 504)) {
        consecutive++
        lastFailure = now()
      }
    },
    healthy: () => consecutive < failuresToTrip || now() - lastFailure > coolDownMs
  }
}
