// Typed view of a CPIX document: the lists SPEKE uses, with each item's element kept for builders and repairs.

import type { XmlElement } from './xml.js'

export const CPIX_NS = 'urn:dashif:org:cpix'
export const PSKC_NS = 'urn:ietf:params:xml:ns:keyprov:pskc'
export const SPEKE_NS = 'urn:aws:amazon:com:speke'

export interface CpixDocument {
  root: XmlElement
  id?: string
  contentId?: string
  version?: string
  /** Which top-level lists the document carries (present even when empty). */
  lists: {
    delivery: boolean
    contentKeys: boolean
    drmSystems: boolean
    periods: boolean
    usageRules: boolean
  }
  contentKeys: ContentKey[]
  drmSystems: DrmSystem[]
  periods: KeyPeriod[]
  usageRules: UsageRule[]
}

export interface ContentKey {
  element: XmlElement
  /** Lower-case kid (as written when it is not a UUID, so validation can name it). */
  kid: string
  explicitIV?: string
  commonEncryptionScheme?: string
  dependsOnKey?: string
  /** base64 text of Data/Secret/PlainValue; '' when the element is an empty placeholder. */
  plainValue?: string
  encrypted: boolean
}

export interface HlsSignaling {
  element: XmlElement
  playlist?: string
  value: string
}

export interface DrmSystem {
  element: XmlElement
  /** As written (case preserved: PallyCon's clients compare it literally). */
  systemId: string
  kid: string
  pssh?: string
  contentProtectionData?: string
  uriExtXKey?: string
  smoothStreaming?: string
  hlsSignaling: HlsSignaling[]
  /** SPEKE v1 custom children by local name (ProtectionHeader, KeyFormat, KeyFormatVersions…). */
  speke: Record<string, string>
}

export interface KeyPeriod {
  element: XmlElement
  id?: string
  index?: string
  start?: string
  end?: string
}

export type UsageFilter =
  | { type: 'KeyPeriodFilter', periodId?: string }
  | { type: 'VideoFilter', attrs: Record<string, string> }
  | { type: 'AudioFilter', attrs: Record<string, string> }
  | { type: 'LabelFilter', label?: string }
  | { type: 'BitrateFilter', attrs: Record<string, string> }
  | { type: 'other', name: string }

export interface UsageRule {
  element: XmlElement
  kid: string
  intendedTrackType?: string
  filters: UsageFilter[]
}

/** Longest content id PallyCon accepts, in characters, whichever URL family or field carries it. */
export const MAX_CONTENT_ID_LENGTH = 200

/**
 * Longest track type (ContentKeyUsageRule@intendedTrackType, or a JSON key request's track type), in characters. The names
 * PallyCon and SPEKE v2 use (SD, UHD1, SD+HD1, MULTICHANNEL_AUDIO_3_6) are far shorter; the embedded provider derives kids
 * from it, with the content id, in an HKDF info of at most 1024 bytes.
 */
export const MAX_TRACK_TYPE_LENGTH = 64

/** The content id a request names: CPIX@contentId (CPIX 2.2+) or, for SPEKE v1 and PallyCon, CPIX@id. */
export function contentIdOf (doc: CpixDocument): string | undefined {
  return nonEmpty(doc.contentId) ?? nonEmpty(doc.id)
}

/** An attribute or text that is absent, empty or only white space. */
export function blank (value: string | undefined): boolean {
  return value === undefined || value.trim() === ''
}

function nonEmpty (value: string | undefined): string | undefined {
  return blank(value) ? undefined : value
}
