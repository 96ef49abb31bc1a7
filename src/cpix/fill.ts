// Fills a CPIX request with keys and DRM signalling: the response a key server gives, in the dialect of its caller.

import { firstBy } from './first-by.js'
import { badRequest, unprocessable } from '../errors.js'
import { encodeBase64 } from './base64.js'
import { CPIX_NS, PSKC_NS, SPEKE_NS, blank, contentIdOf } from './model.js'
import type { ContentKey, CpixDocument, DrmSystem } from './model.js'
import { CPIX_LIST_ORDER, DRM_SYSTEM_ORDER, sortChildren } from './order.js'
import { buildSignalling } from './signal.js'
import type { SignalOptions, Signalling } from './signal.js'
import { drmSystem, isProtectionScheme } from './systems.js'
import type { ProtectionScheme } from './systems.js'
import type { Dialect } from '../protocol.js'
import { isSpekeV2 } from '../protocol.js'
import { childElements, firstChild, makeElement, prefixOf, qualified, removeChild, setText, writeXml } from './xml.js'
import type { XmlElement, XmlNode } from './xml.js'

interface KeyContext {
  /** The kid the request asked for. */
  kid: string
  contentId: string
  trackType?: string
  periodIndex?: number
}

interface KeyMaterial {
  /** The kid of the answer: the request's (SPEKE) or one the key server assigns (PallyCon API). */
  kid: string
  key: Buffer
  iv: Buffer
}

export interface FillOptions extends Omit<SignalOptions, 'pallyconStyle'> {
  dialect: Dialect
  keyFor: (context: KeyContext) => KeyMaterial
}

/** Answer a validated request: returns the response document's XML text. Mutates the request's tree. */
export function fillResponse (doc: CpixDocument, options: FillOptions): string {
  const contentId = contentIdOf(doc)
  if (contentId === undefined) throw badRequest('Missing content id', 'MISSING_CONTENT_ID')
  const pallycon = options.dialect === 'pallycon'
  const cpix = prefixOf(doc.root)
  const pskc = ensureNamespace(doc.root, 'pskc', PSKC_NS)
  const periodIndexById = new Map(doc.periods.filter(p => p.id !== undefined && p.index !== undefined).map(p => [p.id ?? '', Number(p.index)]))

  // The same for every key and DRM system of the request.
  const signalOptions: SignalOptions = {
    playReadyLaUrl: options.playReadyLaUrl,
    widevineProvider: options.widevineProvider,
    hlsKeyUrlBase: options.hlsKeyUrlBase,
    pallyconStyle: pallycon
  }

  const answered = new Map<string, { material: KeyMaterial, scheme: ProtectionScheme, periodIndex?: number, trackType?: string }>()
  const ruleByKid = firstBy(doc.usageRules, rule => rule.kid)
  const onlyPeriod = doc.periods.length === 1 ? doc.periods[0].index : undefined
  for (const key of doc.contentKeys) {
    const rule = ruleByKid.get(key.kid)
    const periodFilter = rule?.filters.find(f => f.type === 'KeyPeriodFilter')
    let periodIndex = periodFilter?.type === 'KeyPeriodFilter' ? periodIndexById.get(periodFilter.periodId ?? '') : undefined
    if (periodIndex === undefined && onlyPeriod !== undefined) periodIndex = Number(onlyPeriod)
    const trackType = rule?.intendedTrackType
    const derived = options.keyFor({ kid: key.kid, contentId, trackType, periodIndex })
    const material: KeyMaterial = { kid: derived.kid, key: derived.key, iv: ivOf(key, derived) }
    answered.set(key.kid, { material, scheme: schemeOf(key, doc), periodIndex, trackType })
    writeContentKey(key, material, cpix, pskc)
  }

  for (const system of doc.drmSystems) {
    const entry = answered.get(system.kid) ?? (pallycon && doc.contentKeys.length === 1 ? answered.get(doc.contentKeys[0].kid) : undefined)
    if (entry === undefined) throw unprocessable(`DRMSystem ${system.systemId} refers to kid ${system.kid}, which is not a ContentKey@kid of this document`, 'DANGLING_REFERENCE')
    const { material, periodIndex, trackType } = entry
    const scheme = drmSystem(system.systemId)?.hlsOnly === true && entry.scheme === 'cenc' && pallycon ? 'cbcs' : entry.scheme
    const { kid, key, iv } = material
    const input = { systemId: system.systemId, kid, key, iv, scheme, contentId, periodIndex, trackType }
    const signalling = buildSignalling(input, signalOptions)
    system.element.attrs.kid = material.kid
    if (pallycon) addPallyConChildren(system, signalling, cpix, doc.root)
    writeDrmSystem(system, signalling, options.dialect, doc.version)
    sortChildren(system.element, DRM_SYSTEM_ORDER)
  }

  for (const rule of doc.usageRules) {
    const entry = answered.get(rule.kid)
    if (entry !== undefined) rule.element.attrs.kid = entry.material.kid
  }
  if (pallycon && !doc.lists.usageRules) addUsageRules(doc, answered, cpix)
  sortChildren(doc.root, CPIX_LIST_ORDER)
  return writeXml(doc.root)
}

function schemeOf (key: ContentKey, doc: CpixDocument): ProtectionScheme {
  const scheme = key.commonEncryptionScheme?.trim()
  if (scheme !== undefined && isProtectionScheme(scheme)) return scheme
  if (scheme === 'SAMPLE-AES' || scheme === 'AES-128') return 'cbcs'
  if (scheme === 'SAMPLE-AES-CTR') return 'cenc'
  // No scheme (SPEKE v1): FairPlay and HLS-only keys are cbcs, everything else cenc.
  const systems = doc.drmSystems.filter(s => s.kid === key.kid)
  return systems.length > 0 && systems.every(s => drmSystem(s.systemId)?.hlsOnly === true) ? 'cbcs' : 'cenc'
}

function ensureNamespace (root: XmlElement, preferred: string, ns: string): string {
  for (const [name, value] of Object.entries(root.attrs)) {
    if (value === ns && name.startsWith('xmlns:')) return name.slice(6)
  }
  let prefix = preferred
  for (let i = 2; root.attrs[`xmlns:${prefix}`] !== undefined; i++) prefix = `${preferred}${i}`
  root.attrs[`xmlns:${prefix}`] = ns
  return prefix
}

function writeContentKey (key: ContentKey, material: KeyMaterial, cpix: string, pskc: string): void {
  const el = key.element
  el.attrs.kid = material.kid
  if (blank(key.explicitIV)) el.attrs.explicitIV = material.iv.toString('base64')
  for (const data of childElements(el, CPIX_NS, 'Data')) removeChild(el, data)
  const plain = makeElement(qualified(pskc, 'PlainValue'), PSKC_NS)
  setText(plain, material.key.toString('base64'))
  const secret = makeElement(qualified(pskc, 'Secret'), PSKC_NS, {}, [plain])
  el.children.unshift(makeElement(qualified(cpix, 'Data'), CPIX_NS, {}, [secret]))
}

/** The explicit IV a response states for a key: the request's when it gave one. */
function ivOf (key: ContentKey, material: KeyMaterial): Buffer {
  return key.explicitIV === undefined || blank(key.explicitIV) ? material.iv : Buffer.from(key.explicitIV, 'base64')
}

/**
 * Writes a DRMSystem's children in one pass: each signalling element gets its value or goes when the system has none
 * (SPEKE v1 elements always go in SPEKE v2); a SPEKE v2 answer gets both HLS playlists.
 */
function writeDrmSystem (system: DrmSystem, s: Signalling, dialect: Dialect, version: string | undefined): void {
  const el = system.element
  const v2 = isSpekeV2(dialect)
  let hls: { media: string, master: string } | undefined
  const kept: XmlNode[] = []
  const existingHls: XmlElement[] = []
  let lastHlsAt = -1
  for (const child of el.children) {
    if (child.kind !== 'element') {
      kept.push(child)
      continue
    }
    let value: string | undefined
    if (child.ns === SPEKE_NS) {
      value = v2 ? undefined : spekeValue(child.local, s)
    } else if (child.ns !== CPIX_NS) {
      kept.push(child)
      continue
    } else if (child.local === 'HLSSignalingData') {
      existingHls.push(child)
      hls ??= hlsValues(s)
      value = hls?.[hlsPlaylistOf(child)]
      if (value !== undefined) lastHlsAt = kept.length
    } else if (CPIX_SIGNALLING.has(child.local)) {
      value = cpixValue(child.local, s, dialect, v2)
    } else {
      kept.push(child)
      continue
    }
    if (value === undefined) continue
    setText(child, value)
    kept.push(child)
  }
  if (v2 && hls !== undefined && existingHls.length > 0) {
    // SPEKE v2 encryptors need both playlists: add the one the request left out, right after the others.
    const has = (p: string): boolean => existingHls.some(c => (c.attrs.playlist ?? 'media') === p || (p === 'master' && c.attrs.playlist === 'multiVariant'))
    const twins: XmlElement[] = []
    for (const playlist of ['master', 'media'] as const) {
      if (has(playlist)) continue
      // CPIX 2.4 renamed the master playlist multiVariant.
      const name = playlist === 'master' && version === '2.4' ? 'multiVariant' : playlist
      twins.push(makeElement(existingHls[0].name, CPIX_NS, { playlist: name }, [{ kind: 'text', text: hls[playlist] }]))
    }
    kept.splice(lastHlsAt + 1, 0, ...twins)
  }
  el.children = kept
}

/** The CPIX signalling elements other than HLSSignalingData that writeDrmSystem fills or removes. */
const CPIX_SIGNALLING = new Set(['PSSH', 'ContentProtectionData', 'URIExtXKey', 'SmoothStreamingProtectionHeaderData'])

function cpixValue (local: string, s: Signalling, dialect: Dialect, v2: boolean): string | undefined {
  if (local === 'PSSH') return s.psshBase64 ?? s.pssh?.toString('base64')
  if (local === 'ContentProtectionData') return contentProtectionValue(s, dialect)
  if (local === 'URIExtXKey') return v2 || s.keyUri === undefined ? undefined : encodeBase64(s.keyUri)
  return s.playReadyObjectBase64 ?? s.playReadyObject?.toString('base64')
}

function contentProtectionValue (s: Signalling, dialect: Dialect): string | undefined {
  if (s.contentProtectionData === undefined || s.pssh === undefined) return undefined
  // PallyCon's shape: the bare pssh payload (Widevine protobuf or PlayReady Object), which its clients read as pssh_payload_only.
  if (dialect === 'pallycon') return s.playReadyObjectBase64 ?? (s.playReadyObject ?? s.pssh.subarray(32)).toString('base64')
  return encodeBase64(s.contentProtectionData)
}

/** Which tag an HLSSignalingData asks for: master (or CPIX 2.4's multiVariant), else media. */
function hlsPlaylistOf (el: XmlElement): 'media' | 'master' {
  return el.attrs.playlist === 'master' || el.attrs.playlist === 'multiVariant' ? 'master' : 'media'
}

/** The two HLS tags as HLSSignalingData carries them (base64), each encoded once however many elements carry it. */
function hlsValues (s: Signalling): { media: string, master: string } | undefined {
  return s.hls === undefined ? undefined : { media: encodeBase64(s.hls.media), master: encodeBase64(s.hls.master) }
}

function spekeValue (local: string, s: Signalling): string | undefined {
  if (local === 'ProtectionHeader') return s.playReadyObjectBase64 ?? s.playReadyObject?.toString('base64')
  if (local === 'KeyFormat') return s.keyFormat === undefined ? undefined : encodeBase64(s.keyFormat)
  if (local === 'KeyFormatVersions') return s.keyFormatVersions === undefined ? undefined : encodeBase64(s.keyFormatVersions)
  return undefined
}

/** PallyCon's API requests carry bare DRMSystems; its KMS answers with every signalling element the DRM has. */
function addPallyConChildren (system: DrmSystem, s: Signalling, cpix: string, root: XmlElement): void {
  const el = system.element
  const has = (local: string): boolean => firstChild(el, CPIX_NS, local) !== undefined
  const add = (local: string, attrs: Record<string, string> = {}): void => {
    el.children.push(makeElement(qualified(cpix, local), CPIX_NS, attrs, [{ kind: 'text', text: '' }]))
  }
  if (s.pssh !== undefined && !has('PSSH')) add('PSSH')
  if (s.contentProtectionData !== undefined && !has('ContentProtectionData')) add('ContentProtectionData')
  if (s.keyUri !== undefined && !has('URIExtXKey')) add('URIExtXKey')
  if (s.hls !== undefined && !has('HLSSignalingData')) {
    add('HLSSignalingData', { playlist: 'media' })
    add('HLSSignalingData', { playlist: 'master' })
  }
  if (s.playReadyObject !== undefined && childElements(el, SPEKE_NS, 'ProtectionHeader').length === 0) {
    const speke = ensureNamespace(root, 'speke', SPEKE_NS)
    el.children.push(makeElement(qualified(speke, 'ProtectionHeader'), SPEKE_NS, {}, [{ kind: 'text', text: '' }]))
  }
}

function addUsageRules (doc: CpixDocument, answered: Map<string, { material: KeyMaterial, trackType?: string }>, cpix: string): void {
  const rules = [...answered.values()].map(a => makeElement(qualified(cpix, 'ContentKeyUsageRule'), CPIX_NS, { kid: a.material.kid, intendedTrackType: a.trackType ?? 'ALL' }))
  doc.root.children.push(makeElement(qualified(cpix, 'ContentKeyUsageRuleList'), CPIX_NS, {}, rules))
}
