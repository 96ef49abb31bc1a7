// What SPEKE v2 encryptors demand of a reply (speke-cpix-rules.md §3), as a list of problems: empty means MediaPackage will take it.

import { firstBy } from './first-by.js'
import { decodeBase64 } from './base64.js'
import { CPIX_NS, SPEKE_NS, blank } from './model.js'
import type { CpixDocument, DrmSystem, HlsSignaling } from './model.js'
import { CPIX_LIST_ORDER, DRM_SYSTEM_ORDER } from './order.js'
import { signallingReader } from './signalling-reader.js'
import type { SignallingReader } from './signalling-reader.js'
import { childElements } from './xml.js'
import type { XmlElement } from './xml.js'

export function spekeV2Problems (
  request: CpixDocument, reply: CpixDocument, kidMap: Map<string, string>, reader: SignallingReader = signallingReader()
): string[] {
  const problems: string[] = []
  if (reply.contentId !== request.contentId) problems.push(`CPIX@contentId is "${reply.contentId ?? ''}", the request had "${request.contentId ?? ''}"`)
  if (reply.version !== request.version) problems.push(`CPIX@version is "${reply.version ?? ''}", the request had "${request.version ?? ''}"`)
  if (!childrenInOrder(reply.root, CPIX_LIST_ORDER)) problems.push('top-level lists are not in CPIX schema order')
  if (hasSpekeElements(reply.root)) problems.push('SPEKE v1 speke:* elements are present')

  const replyKeys = firstBy(reply.contentKeys, key => key.kid)
  for (const asked of request.contentKeys) {
    const key = replyKeys.get(kidMap.get(asked.kid) ?? asked.kid)
    if (key === undefined) { problems.push(`no ContentKey for kid ${asked.kid}`); continue }
    if (key.commonEncryptionScheme !== asked.commonEncryptionScheme) problems.push(`commonEncryptionScheme of kid ${key.kid} changed from ${asked.commonEncryptionScheme ?? '(none)'} to ${key.commonEncryptionScheme ?? '(none)'}`)
    if (decodeBase64(key.plainValue ?? '')?.length !== 16 && !key.encrypted) problems.push(`ContentKey ${key.kid} has no 16-byte key`)
  }

  const answers = new Map<string, Map<string, DrmSystem>>()
  for (const system of reply.drmSystems) {
    let bySystem = answers.get(system.kid)
    if (bySystem === undefined) answers.set(system.kid, bySystem = new Map())
    const key = system.systemId.toLowerCase()
    if (!bySystem.has(key)) bySystem.set(key, system)
  }
  for (const asked of request.drmSystems) {
    if (asked.contentProtectionData === undefined) continue
    const answer = answers.get(kidMap.get(asked.kid) ?? asked.kid)?.get(asked.systemId.toLowerCase())
    if (answer !== undefined && !blank(answer.pssh) && blank(answer.contentProtectionData)) problems.push(`DRMSystem ${answer.systemId} (kid ${answer.kid}): ContentProtectionData was requested and is missing`)
  }

  const askedSystems = firstBy(request.drmSystems, asked => asked.systemId.toLowerCase())
  for (const system of reply.drmSystems) {
    const where = `DRMSystem ${system.systemId} (kid ${system.kid})`
    const asked = askedSystems.get(system.systemId.toLowerCase())
    if (asked !== undefined && asked.systemId !== system.systemId) problems.push(`${where}: systemId is not in the caller's case (${asked.systemId})`)
    if (system.uriExtXKey !== undefined) problems.push(`${where}: URIExtXKey is SPEKE v1 only`)
    if (!childrenInOrder(system.element, DRM_SYSTEM_ORDER)) problems.push(`${where}: children are not in CPIX schema order`)
    if (system.contentProtectionData !== undefined && system.contentProtectionData !== '') {
      const data = system.contentProtectionData
      const text = reader.text(system.element, 'ContentProtectionData', data) ?? ''
      if (!text.trimStart().startsWith('<')) problems.push(`${where}: ContentProtectionData is not an MPD XML fragment`)
      else if (system.pssh !== undefined && safeExtract(system.element, data, reader) !== system.pssh.replace(/\s+/g, '')) problems.push(`${where}: the cenc:pssh in ContentProtectionData differs from PSSH`)
    }
    if (system.hlsSignaling.length > 0) {
      const media = system.hlsSignaling.find(h => h.playlist === 'media')
      const master = system.hlsSignaling.find(h => h.playlist === 'master' || h.playlist === 'multiVariant')
      if (media === undefined || master === undefined || system.hlsSignaling.length !== 2) problems.push(`${where}: HLSSignalingData must be given once for media and once for master`)
      else if (!sameTagAttributes(media, master, reader)) problems.push(`${where}: media and master HLSSignalingData differ in their attributes`)
    }
  }

  if (!sameElements(request.usageRules.map(r => r.element), reply.usageRules.map(r => r.element), kidMap)) problems.push('ContentKeyUsageRuleList is not echoed as the request had it')
  if (!sameElements(request.periods.map(p => p.element), reply.periods.map(p => p.element), kidMap)) problems.push('ContentKeyPeriodList is not echoed as the request had it')
  return problems
}

/** Whether the element's CPIX children that `order` names come in that order. */
function childrenInOrder (el: XmlElement, order: readonly string[]): boolean {
  let last = -1
  for (const child of el.children) {
    if (child.kind !== 'element' || child.ns !== CPIX_NS) continue
    const at = order.indexOf(child.local)
    if (at === -1) continue
    if (at < last) return false
    last = at
  }
  return true
}

function hasSpekeElements (el: XmlElement): boolean {
  return el.children.some(c => c.kind === 'element' && (c.ns === SPEKE_NS || hasSpekeElements(c)))
}

function safeExtract (element: XmlElement, data: string, reader: SignallingReader): string | undefined {
  try {
    return reader.cencPssh(element, data)
  } catch {
    return undefined
  }
}

function sameTagAttributes (media: HlsSignaling, master: HlsSignaling, reader: SignallingReader): boolean {
  try {
    const a = reader.hlsTag(media.element, media.value)
    const b = reader.hlsTag(master.element, master.value)
    return a.tag === 'EXT-X-KEY' && b.tag === 'EXT-X-SESSION-KEY' && sameInOrder(a.attributes, b.attributes)
  } catch {
    return false
  }
}

/** The same names in the same order with the same values (what comparing their JSON gives, without writing it). */
function sameInOrder (a: Record<string, string>, b: Record<string, string>): boolean {
  const names = Object.keys(a)
  const others = Object.keys(b)
  if (names.length !== others.length) return false
  return names.every((name, i) => name === others[i] && a[name] === b[name])
}

/** Same elements, attributes and children, with kids compared through the override map and prefixes ignored. */
function sameElements (a: XmlElement[], b: XmlElement[], kidMap: Map<string, string>): boolean {
  if (a.length !== b.length) return false
  return a.every((el, i) => sameElement(el, b[i], kidMap))
}

function sameElement (a: XmlElement, b: XmlElement, kidMap: Map<string, string>): boolean {
  if (a.ns !== b.ns || a.local !== b.local) return false
  if (!sameAttributes(a.attrs, b.attrs, kidMap)) return false
  return sameElements(childElements(a), childElements(b), kidMap)
}

/** The same attributes but xmlns declarations, with kids in lower case and the request's (`a`) mapped through the override map. */
function sameAttributes (a: Record<string, string>, b: Record<string, string>, kidMap: Map<string, string>): boolean {
  let unmatched = 0
  for (const [name, value] of Object.entries(a)) {
    if (name.startsWith('xmlns')) continue
    if (!Object.prototype.hasOwnProperty.call(b, name)) return false
    const wanted = name === 'kid' ? (kidMap.get(value.toLowerCase()) ?? value.toLowerCase()) : value
    const got = name === 'kid' ? b[name].toLowerCase() : b[name]
    if (wanted !== got) return false
    unmatched++
  }
  for (const name of Object.keys(b)) if (!name.startsWith('xmlns')) unmatched--
  return unmatched === 0
}
