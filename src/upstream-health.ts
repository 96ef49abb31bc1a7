// Whether the key provider is known to be failing: several transport failures in a row, cleared by the next success.

import type { KeyRequestRecord } from './speke/pipeline.js'

export interface UpstreamHealth {
  note: (record: KeyRequestRecord) => void
  healthy: () => boolean
}

export function createUpstreamHealth (failuresToTrip = 3): UpstreamHealth {
  let consecutive = 0
  return {
    note (record) {
      if (record.upstreamStatus !== undefined && record.upstreamStatus < 500) consecutive = 0
      else if (record.status === 502 || record.status === 504) consecutive++
    },
    healthy: () => consecutive < failuresToTrip
  }
}
