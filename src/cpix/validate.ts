// Request rules for CPIX documents (speke-cpix-rules.md §1–§4), with AWS's exact strings for SPEKE v2 callers.

import { ProxyError, badRequest, unprocessable } from '../errors.js'
import { decodeBase64 } from './base64.js'
import { MAX_CONTENT_ID_LENGTH, MAX_TRACK_TYPE_LENGTH, blank, contentIdOf } from './model.js'
import type { ContentKey, CpixDocument, UsageRule } from './model.js'
import { HLS_METHOD_SCHEMES, PROTECTION_SCHEMES, drmSystem, isProtectionScheme } from './systems.js'
import { isUuid } from './uuid.js'
import { isSpekeV2 } from '../protocol.js'
import type { Dialect } from '../protocol.js'

const CPIX_VERSIONS: Record<'speke-v2.0' | 'speke-v2.1', readonly string[]> = {
  'speke-v2.0': ['2.3'],
  'speke-v2.1': ['2.4', '2.3']
}

const VIDEO_TRACKS = new Set(['VIDEO', 'SD', 'HD', 'HD1', 'HD2', 'UHD', 'UHD1', 'UHD2'])
const AUDIO_TRACKS = new Set(['AUDIO', 'STEREO_AUDIO', 'MULTICHANNEL_AUDIO', 'MULTICHANNEL_AUDIO_3_6', 'MULTICHANNEL_AUDIO_7'])

/** SPEKE v2 errors carry AWS's verbatim strings (speke-cpix-rules.md §3). */
const aws = (message: string): ProxyError => new ProxyError('SPEKE_V2_PROFILE', message)

/** Throws a ProxyError (4xx) naming the first rule the request breaks; returns when the request may be forwarded. */
export function validateRequest (doc: CpixDocument, dialect: Dialect): void {
  validateListSizes(doc)
  if (isSpekeV2(dialect)) validateSpekeV2Header(doc, dialect)
  validateContentId(doc)
  validateContentKeys(doc, dialect)
  validateDrmSystems(doc, dialect)
  validatePeriods(doc, dialect)
  validateUsageRules(doc, dialect)
  if (isSpekeV2(dialect)) validateSpekeV2Contract(doc)
}

/**
 * Real requests carry a handful of keys (AWS's suite at most 8): these caps bound the work one request can ask of
 * the validation, the key provider and the reply checks, whose cost grows with the number of entries.
 */
export const MAX_LIST_ENTRIES = { ContentKey: 100, DRMSystem: 400, ContentKeyPeriod: 100, ContentKeyUsageRule: 100 } as const

function validateListSizes (doc: CpixDocument): void {
  const counts: Record<keyof typeof MAX_LIST_ENTRIES, number> = {
    ContentKey: doc.contentKeys.length,
    DRMSystem: doc.drmSystems.length,
    ContentKeyPeriod: doc.periods.length,
    ContentKeyUsageRule: doc.usageRules.length
  }
  for (const [name, max] of Object.entries(MAX_LIST_ENTRIES) as Array<[keyof typeof MAX_LIST_ENTRIES, number]>) {
    if (counts[name] > max) throw badRequest(`The request has ${counts[name]} ${name} elements; speke-proxy accepts at most ${max} per request: split it`, 'TOO_MANY_ENTRIES')
  }
}

function validateSpekeV2Header (doc: CpixDocument, dialect: 'speke-v2.0' | 'speke-v2.1'): void {
  if (blank(doc.contentId)) throw aws('Missing CPIX@contentId')
  if (blank(doc.version)) throw aws('Missing CPIX@version')
  if (!CPIX_VERSIONS[dialect].includes((doc.version ?? '').trim())) throw aws('Unsupported CPIX@version')
  if (!doc.lists.contentKeys || !doc.lists.drmSystems) throw aws('Malformed encryption contract')
  if (!doc.lists.usageRules) throw aws('Missing CPIX encryption contract')
  if (doc.drmSystems.length === 0 || doc.contentKeys.length === 0) throw aws('Malformed encryption contract')
  for (const key of doc.contentKeys) {
    if (blank(key.commonEncryptionScheme)) throw aws(`Missing ContentKey@commonEncryptionScheme for KID ${key.kid}`)
  }
  const schemes = new Set(doc.contentKeys.map(k => (k.commonEncryptionScheme ?? '').trim()))
  if (schemes.size > 1) throw aws('Non compliant ContentKey@commonEncryptionScheme combination')
}

function validateContentId (doc: CpixDocument): void {
  const contentId = contentIdOf(doc)
  if (contentId === undefined) {
    throw badRequest('Missing content id: set CPIX@contentId (SPEKE v2) or CPIX@id (SPEKE v1, PallyCon API)', 'MISSING_CONTENT_ID')
  }
  const tooLong = contentIdTooLong(contentId)
  if (tooLong !== undefined) throw tooLong
  // The content id goes into HLS key tags (skd:// and key URIs inside "…") and Widevine data: a quote or a control character would break them.
  // eslint-disable-next-line no-control-regex -- the point: find the control characters that would break an HLS key tag
  if (/["\u0000-\u001f\u007f]/.test(contentId)) {
    throw unprocessable('Content id contains a double quote or a control character, which cannot travel in HLS key tags: use letters, digits and punctuation other than "', 'CONTENT_ID_INVALID')
  }
}

/** The refusal of a content id longer than PallyCon accepts, from any URL family; undefined when it fits. */
export function contentIdTooLong (contentId: string): ProxyError | undefined {
  if (contentId.length <= MAX_CONTENT_ID_LENGTH) return undefined
  return unprocessable(`Content id is ${contentId.length} characters long; PallyCon accepts at most ${MAX_CONTENT_ID_LENGTH}`, 'CONTENT_ID_TOO_LONG')
}

function validateContentKeys (doc: CpixDocument, dialect: Dialect): void {
  if (doc.contentKeys.length === 0) {
    throw unprocessable('The request has no ContentKey: add a ContentKeyList with at least one ContentKey', 'NO_CONTENT_KEY')
  }
  const seen = new Set<string>()
  for (const key of doc.contentKeys) {
    requireUuid(key.kid, 'ContentKey@kid')
    if (seen.has(key.kid)) throw unprocessable(`ContentKey@kid ${key.kid} appears twice in ContentKeyList`, 'DUPLICATE_KID')
    seen.add(key.kid)
    checkBase64Length(key.explicitIV, [16], `ContentKey@explicitIV of KID ${key.kid}`)
    checkBase64Length(key.plainValue, [16, 32], `PlainValue of KID ${key.kid}`)
    checkScheme(key, doc, dialect)
  }
  for (const key of doc.contentKeys) {
    if (key.dependsOnKey !== undefined && !seen.has(key.dependsOnKey.trim().toLowerCase())) {
      throw unprocessable(`ContentKey ${key.kid} dependsOnKey ${key.dependsOnKey}, which is not a ContentKey@kid of this document`, 'DANGLING_REFERENCE')
    }
  }
}

function checkScheme (key: ContentKey, doc: CpixDocument, dialect: Dialect): void {
  const scheme = key.commonEncryptionScheme?.trim()
  if (scheme === undefined || scheme === '') return
  const hlsMethodsAllowed = doc.version === '2.4' || doc.version === '2.3.1' || !isSpekeV2(dialect)
  if (isProtectionScheme(scheme) || (hlsMethodsAllowed && HLS_METHOD_SCHEMES.includes(scheme))) return
  throw unprocessable(`ContentKey@commonEncryptionScheme "${scheme}" of KID ${key.kid} is not one of ${PROTECTION_SCHEMES.join(', ')}`, 'UNKNOWN_SCHEME')
}

function validateDrmSystems (doc: CpixDocument, dialect: Dialect): void {
  const keys = new Map(doc.contentKeys.map(k => [k.kid, k]))
  const pairs = new Set<string>()
  for (const system of doc.drmSystems) {
    if (system.systemId === '') throw badRequest('DRMSystem without a systemId attribute', 'MISSING_SYSTEM_ID')
    const info = drmSystem(system.systemId)
    if (info === undefined) {
      throw unprocessable(`Unknown DRM systemId ${system.systemId}: speke-proxy knows Widevine, PlayReady, FairPlay, WisePlay, NCG and the HLS AES-128/SAMPLE-AES ids`, 'UNKNOWN_DRM_SYSTEM')
    }
    requireUuid(system.kid, `DRMSystem@kid (systemId ${system.systemId})`)
    // PallyCon's KMS assigns its own kid to a single-key request, and PallyCon's documented requests
    // pair DRMSystems with a kid that is not the ContentKey's: tolerated there, and only there.
    const soleKey = dialect === 'pallycon' && doc.contentKeys.length === 1 ? doc.contentKeys[0] : undefined
    const key = keys.get(system.kid) ?? soleKey
    if (key === undefined) {
      throw unprocessable(`DRMSystem ${system.systemId} refers to kid ${system.kid}, which is not a ContentKey@kid of this document`, 'DANGLING_REFERENCE')
    }
    const pair = `${info.id}/${key.kid}`
    if (pairs.has(pair)) throw unprocessable(`DRMSystem ${system.systemId} appears twice for kid ${system.kid}`, 'DUPLICATE_DRM_SYSTEM')
    pairs.add(pair)

    // The DRM/scheme matrix binds SPEKE callers. PallyCon's own client sends FairPlay with cenc on
    // rotating requests and PallyCon's KMS serves it, so on PallyCon's API the KMS decides.
    const scheme = key.commonEncryptionScheme?.trim()
    if (dialect !== 'pallycon' && scheme !== undefined && isProtectionScheme(scheme) && !info.schemes.includes(scheme)) {
      const message = `ContentKey@commonEncryptionScheme non compatible with DRMSystem ${system.systemId}`
      throw isSpekeV2(dialect) ? aws(message) : unprocessable(`${message}: ${info.name} cannot be used with ${scheme}`, 'SCHEME_NOT_COMPATIBLE')
    }

    // SPEKE v2 encryptors need both playlists' key tags back; HLS has none for WisePlay, NCG (DASH) or W3C common PSSH.
    if (isSpekeV2(dialect) && system.hlsSignaling.length > 0 && !info.hls) {
      throw unprocessable(`DRMSystem ${system.systemId} (${info.name}, kid ${system.kid}) asks for HLSSignalingData, but HLS has no key tag for ${info.name}: leave HLSSignalingData out for it`, 'HLS_NOT_AVAILABLE')
    }

    // HLS has a method for cbcs (SAMPLE-AES) and cenc (SAMPLE-AES-CTR) only: HLS signalling of a cens/cbc1 key cannot be answered.
    if (system.hlsSignaling.length > 0 && info.hlsOnly !== true && (scheme === 'cens' || scheme === 'cbc1')) {
      if (isSpekeV2(dialect)) throw aws(`ContentKey@commonEncryptionScheme non compatible with DRMSystem ${system.systemId}`)
      throw unprocessable(`DRMSystem ${system.systemId} (kid ${system.kid}) asks for HLSSignalingData, but HLS has no encryption method for ${scheme}: use cbcs or cenc, or leave HLSSignalingData out`, 'SCHEME_NOT_COMPATIBLE')
    }

    const where = `DRMSystem ${system.systemId} (kid ${system.kid})`
    checkBase64(system.pssh, `PSSH of ${where}`)
    checkBase64(system.contentProtectionData, `ContentProtectionData of ${where}`)
    checkBase64(system.uriExtXKey, `URIExtXKey of ${where}`)
    checkBase64(system.smoothStreaming, `SmoothStreamingProtectionHeaderData of ${where}`)
    for (const [name, value] of Object.entries(system.speke)) checkBase64(value, `speke:${name} of ${where}`)
    const playlists = new Set<string>()
    for (const hls of system.hlsSignaling) {
      checkBase64(hls.value, `HLSSignalingData of ${where}`)
      const playlist = hls.playlist ?? ''
      if (playlist !== '' && !['media', 'master', 'multiVariant'].includes(playlist)) {
        throw badRequest(`HLSSignalingData@playlist "${playlist}" of ${where} must be media or master (multiVariant in CPIX 2.4)`, 'BAD_PLAYLIST')
      }
      if (isSpekeV2(dialect)) checkPlaylistForVersion(playlist, (doc.version ?? '').trim())
      if (playlists.has(playlist)) throw unprocessable(`HLSSignalingData for playlist "${playlist || '(none)'}" appears twice in ${where}`, 'DUPLICATE_HLS_SIGNALING')
      playlists.add(playlist)
    }
  }
}

/**
 * CPIX 2.4 renamed the master playlist multiVariant; its schema knows only media and multiVariant, CPIX 2.3's only
 * media and master. SPEKE v2 echoes the request's HLSSignalingData, so the wrong name would go out in a reply that
 * fails its own CPIX version's schema: refused, in the style of AWS's strings.
 */
function checkPlaylistForVersion (playlist: string, version: string): void {
  const wrong = version === '2.4' ? 'master' : version === '2.3' ? 'multiVariant' : undefined
  if (playlist === wrong) {
    throw new ProxyError('PLAYLIST_NOT_IN_CPIX_VERSION', `Non compliant HLSSignalingData@playlist ${playlist} for CPIX@version ${version}: use ${wrong === 'master' ? 'multiVariant' : 'master'}`)
  }
}

function validatePeriods (doc: CpixDocument, dialect: Dialect): void {
  const ids = new Set<string>()
  for (const period of doc.periods) {
    const name = period.id ?? '(no id)'
    if (period.id !== undefined) {
      if (ids.has(period.id)) throw unprocessable(`ContentKeyPeriod id ${period.id} appears twice`, 'DUPLICATE_PERIOD')
      ids.add(period.id)
    }
    const hasIndex = period.index !== undefined
    const hasStart = period.start !== undefined
    const hasEnd = period.end !== undefined
    // SPEKE v2.1 sends index together with start/end (AWS's own 2.1 examples and suite); elsewhere they exclude each other.
    if (hasIndex && (hasStart || hasEnd) && dialect !== 'speke-v2.1') {
      throw isSpekeV2(dialect) ? aws('Malformed encryption contract') : badRequest(`ContentKeyPeriod ${name} has both index and start/end; use one or the other`, 'BAD_PERIOD')
    }
    if (hasStart !== hasEnd) throw badRequest(`ContentKeyPeriod ${name} needs both start and end`, 'BAD_PERIOD')
    if (hasIndex && (!/^\d{1,10}$/.test((period.index ?? '').trim()) || Number(period.index) > 0xffffffff)) {
      throw isSpekeV2(dialect) ? aws('Malformed encryption contract') : badRequest(`ContentKeyPeriod ${name} has index "${period.index}"; it must be an integer from 0 to 4294967295`, 'BAD_PERIOD')
    }
    if (hasStart) {
      const start = Date.parse(period.start ?? '')
      const end = Date.parse(period.end ?? '')
      if (Number.isNaN(start) || Number.isNaN(end)) throw badRequest(`ContentKeyPeriod ${name} start/end are not xs:dateTime values`, 'BAD_PERIOD')
      if (end <= start) throw unprocessable(`ContentKeyPeriod ${name} ends before it starts`, 'PERIOD_ENDS_BEFORE_START')
      if (dialect === 'speke-v2.0') throw aws('Malformed encryption contract')
    }
  }
}

function validateUsageRules (doc: CpixDocument, dialect: Dialect): void {
  for (const rule of doc.usageRules) {
    const length = rule.intendedTrackType?.length ?? 0
    if (length > MAX_TRACK_TYPE_LENGTH) {
      throw unprocessable(`A ContentKeyUsageRule@intendedTrackType is ${length} characters long; speke-proxy accepts at most ${MAX_TRACK_TYPE_LENGTH}`, 'TRACK_TYPE_TOO_LONG')
    }
  }
  try {
    checkUsageRuleReferences(doc)
  } catch (err) {
    // Usage rules are SPEKE v2's encryption contract: v2 callers get AWS's string for a broken one.
    if (isSpekeV2(dialect) && err instanceof ProxyError && err.code === 'DANGLING_REFERENCE') throw aws('Malformed encryption contract')
    throw err
  }
}

function checkUsageRuleReferences (doc: CpixDocument): void {
  const kids = new Set(doc.contentKeys.map(k => k.kid))
  const periodIds = new Set(doc.periods.map(p => p.id).filter((id): id is string => id !== undefined))
  for (const rule of doc.usageRules) {
    requireUuid(rule.kid, 'ContentKeyUsageRule@kid')
    if (!kids.has(rule.kid)) {
      throw unprocessable(`ContentKeyUsageRule refers to kid ${rule.kid}, which is not a ContentKey@kid of this document`, 'DANGLING_REFERENCE')
    }
    for (const filter of rule.filters) {
      // AWS's own SPEKE v2 VOD requests carry a KeyPeriodFilter with no ContentKeyPeriodList at all: no rotation, tolerated.
      if (filter.type === 'KeyPeriodFilter' && doc.lists.periods && (filter.periodId === undefined || !periodIds.has(filter.periodId))) {
        throw unprocessable(`KeyPeriodFilter of the rule for kid ${rule.kid} refers to period "${filter.periodId ?? ''}", which is not a ContentKeyPeriod@id`, 'DANGLING_REFERENCE')
      }
    }
  }
}

/** The encryption contract: usage rules as SPEKE v2 defines them (§3). */
function validateSpekeV2Contract (doc: CpixDocument): void {
  const rules = doc.usageRules
  const withMediaFilter = rules.filter(r => mediaFilters(r).length > 0)
  if (withMediaFilter.length === 0) throw aws('Missing CPIX encryption contract')
  const trackTypes = new Set<string>()
  for (const rule of rules) {
    const track = (rule.intendedTrackType ?? '').trim()
    if (track === '' || rule.kid === '') throw aws('Malformed encryption contract')
    if (trackTypes.has(track)) throw aws('Malformed encryption contract')
    trackTypes.add(track)
    checkTrackFilters(rule, track, rules.length)
  }
}

function checkTrackFilters (rule: UsageRule, track: string, ruleCount: number): void {
  const filters = mediaFilters(rule)
  const video = filters.filter(f => f.type === 'VideoFilter').length
  const audio = filters.filter(f => f.type === 'AudioFilter').length
  if (filters.length === 0) throw aws('Malformed encryption contract')
  if (track === 'ALL') {
    const bare = filters.every(f => Object.keys(f.attrs).length === 0)
    if (ruleCount !== 1 || video !== 1 || audio !== 1 || !bare) throw aws('Malformed encryption contract')
    return
  }
  // A compound name (SD+HD1) names one track per part; AWS's suite sends SD+HD1 with a single VideoFilter
  // spanning both, so the filters may be fewer than the parts but never more, and of the parts' kinds.
  const parts = track.split('+')
  const wantVideo = parts.filter(p => VIDEO_TRACKS.has(p)).length
  const wantAudio = parts.filter(p => AUDIO_TRACKS.has(p)).length
  if (wantVideo + wantAudio !== parts.length) throw aws('Requested CPIX encryption contract not supported')
  if (filters.length > parts.length) throw aws('Malformed encryption contract')
  if ((video > 0 && wantVideo === 0) || (audio > 0 && wantAudio === 0)) throw aws('Malformed encryption contract')
}

function mediaFilters (rule: UsageRule): Array<{ type: 'VideoFilter' | 'AudioFilter', attrs: Record<string, string> }> {
  const out: Array<{ type: 'VideoFilter' | 'AudioFilter', attrs: Record<string, string> }> = []
  for (const f of rule.filters) if (f.type === 'VideoFilter' || f.type === 'AudioFilter') out.push(f)
  return out
}

function requireUuid (value: string, what: string): void {
  if (!isUuid(value)) {
    throw badRequest(`${what} "${value}" is not a UUID (8-4-4-4-12 hexadecimal digits)`, 'BAD_KID')
  }
}

function checkBase64 (value: string | undefined, what: string): Buffer | undefined {
  if (value === undefined || value === '') return undefined
  const bytes = decodeBase64(value)
  if (bytes === undefined) throw badRequest(`${what} is not valid base64`, 'BAD_BASE64')
  return bytes
}

function checkBase64Length (value: string | undefined, lengths: number[], what: string): void {
  const bytes = checkBase64(value, what)
  if (bytes !== undefined && !lengths.includes(bytes.length)) {
    throw badRequest(`${what} decodes to ${bytes.length} bytes; it must be ${lengths.join(' or ')} bytes`, 'BAD_LENGTH')
  }
}
