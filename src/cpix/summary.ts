// What a CPIX request asks for, in a form fit for logs and audit: ids and names only, never key material.

import { contentIdOf } from './model.js'
import type { CpixDocument } from './model.js'
import { drmSystemName } from './systems.js'

export interface RequestSummary {
  contentId?: string
  kids: string[]
  drmSystems: string[]
  trackTypes: string[]
  keyPeriods: string[]
}

export function summarizeRequest (doc: CpixDocument): RequestSummary {
  return {
    contentId: contentIdOf(doc),
    kids: doc.contentKeys.map(k => k.kid),
    drmSystems: unique(doc.drmSystems.map(s => drmSystemName(s.systemId))),
    trackTypes: unique(doc.usageRules.map(r => r.intendedTrackType).filter((t): t is string => t !== undefined && t !== '')),
    keyPeriods: doc.periods.map(p => p.index ?? p.id ?? `${p.start ?? ''}/${p.end ?? ''}`)
  }
}

function unique (values: string[]): string[] {
  return [...new Set(values)]
}
