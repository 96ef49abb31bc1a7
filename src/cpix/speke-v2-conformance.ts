// What SPEKE v2 encryptors demand of a reply (speke-cpix-rules.md §3), as a list of problems: empty means MediaPackage will take it.

import { decodeBase64 } from './base64.js'
import { extractCencPssh, parseHlsTag } from './hls.js'
import { CPIX_NS, SPEKE_NS, blank } from './model.js'
import type { CpixDocument } from './model.js'
import { CPIX_LIST_ORDER, DRM_SYSTEM_ORDER } from './order.js'
import { childElements } from './xml.js'
import type { XmlElement } from './xml.js'

export function spekeV2Problems (request: CpixDocument, reply: CpixDocument, kidMap: Map<string, string>): string[] {
  const problems: string[] = []
  if (reply.contentId !== request.contentId) problems.push(`CPIX@contentId is "${reply.contentId ?? ''}", the request had "${request.contentId ?? ''}"`)
  if (reply.version !== request.version) problems.push(`CPIX@version is "${reply.version ?? ''}", the request had "${request.version ?? ''}"`)
  if (!inOrder(childElements(reply.root, CPIX_NS).map(e => e.local), CPIX_LIST_ORDER)) problems.push('top-level lists are not in CPIX schema order')
  if (hasSpekeElements(reply.root)) problems.push('SPEKE v1 speke:* elements are present')

  for (const asked of request.contentKeys) {
    const key = reply.contentKeys.find(k => k.kid === (kidMap.get(asked.kid) ?? asked.kid))
    if (key === undefined) { problems.push(`no ContentKey for kid ${asked.kid}`); continue }
    if (key.commonEncryptionScheme !== asked.commonEncryptionScheme) problems.push(`commonEncryptionScheme of kid ${key.kid} changed from ${asked.commonEncryptionScheme ?? '(none)'} to ${key.commonEncryptionScheme ?? '(none)'}`)
    if (decodeBase64(key.plainValue ?? '')?.length !== 16 && !key.encrypted) problems.push(`ContentKey ${key.kid} has no 16-byte key`)
  }

  for (const asked of request.drmSystems) {
    if (asked.contentProtectionData === undefined) continue
    const kid = kidMap.get(asked.kid) ?? asked.kid
    const answer = reply.drmSystems.find(s => s.kid === kid && s.systemId.toLowerCase() === asked.systemId.toLowerCase())
    if (answer !== undefined && !blank(answer.pssh) && blank(answer.contentProtectionData)) problems.push(`DRMSystem ${answer.systemId} (kid ${answer.kid}): ContentProtectionData was requested and is missing`)
  }

  for (const system of reply.drmSystems) {
    const where = `DRMSystem ${system.systemId} (kid ${system.kid})`
    const asked = request.drmSystems.find(s => s.systemId.toLowerCase() === system.systemId.toLowerCase())
    if (asked !== undefined && asked.systemId !== system.systemId) problems.push(`${where}: systemId is not in the caller's case (${asked.systemId})`)
    if (system.uriExtXKey !== undefined) problems.push(`${where}: URIExtXKey is SPEKE v1 only`)
    if (!inOrder(childElements(system.element, CPIX_NS).map(e => e.local), DRM_SYSTEM_ORDER)) problems.push(`${where}: children are not in CPIX schema order`)
    if (system.contentProtectionData !== undefined && system.contentProtectionData !== '') {
      const text = decodeBase64(system.contentProtectionData)?.toString('utf8') ?? ''
      if (!text.trimStart().startsWith('<')) problems.push(`${where}: ContentProtectionData is not an MPD XML fragment`)
      else if (system.pssh !== undefined && safeExtract(text) !== system.pssh.replace(/\s+/g, '')) problems.push(`${where}: the cenc:pssh in ContentProtectionData differs from PSSH`)
    }
    if (system.hlsSignaling.length > 0) {
      const media = system.hlsSignaling.find(h => h.playlist === 'media')
      const master = system.hlsSignaling.find(h => h.playlist === 'master' || h.playlist === 'multiVariant')
      if (media === undefined || master === undefined || system.hlsSignaling.length !== 2) problems.push(`${where}: HLSSignalingData must be given once for media and once for master`)
      else if (!sameTagAttributes(media.value, master.value)) problems.push(`${where}: media and master HLSSignalingData differ in their attributes`)
    }
  }

  if (!sameElements(request.usageRules.map(r => r.element), reply.usageRules.map(r => r.element), kidMap)) problems.push('ContentKeyUsageRuleList is not echoed as the request had it')
  if (!sameElements(request.periods.map(p => p.element), reply.periods.map(p => p.element), kidMap)) problems.push('ContentKeyPeriodList is not echoed as the request had it')
  return problems
}

function inOrder (names: string[], order: readonly string[]): boolean {
  let last = -1
  for (const name of names) {
    const at = order.indexOf(name)
    if (at === -1) continue
    if (at < last) return false
    last = at
  }
  return true
}

function hasSpekeElements (el: XmlElement): boolean {
  return el.children.some(c => c.kind === 'element' && (c.ns === SPEKE_NS || hasSpekeElements(c)))
}

function safeExtract (text: string): string | undefined {
  try {
    return extractCencPssh(text)
  } catch {
    return undefined
  }
}

function sameTagAttributes (media: string, master: string): boolean {
  try {
    const a = parseHlsTag(decodeBase64(media)?.toString('utf8') ?? '')
    const b = parseHlsTag(decodeBase64(master)?.toString('utf8') ?? '')
    return a.tag === 'EXT-X-KEY' && b.tag === 'EXT-X-SESSION-KEY' && JSON.stringify(a.attributes) === JSON.stringify(b.attributes)
  } catch {
    return false
  }
}

/** Same elements, attributes and children, with kids compared through the override map and prefixes ignored. */
function sameElements (a: XmlElement[], b: XmlElement[], kidMap: Map<string, string>): boolean {
  if (a.length !== b.length) return false
  return a.every((el, i) => sameElement(el, b[i], kidMap))
}

function sameElement (a: XmlElement, b: XmlElement, kidMap: Map<string, string>): boolean {
  if (a.ns !== b.ns || a.local !== b.local) return false
  const attrs = (el: XmlElement, map: boolean): string => JSON.stringify(Object.entries(el.attrs)
    .filter(([k]) => !k.startsWith('xmlns'))
    .map(([k, v]) => [k, map && k === 'kid' ? (kidMap.get(v.toLowerCase()) ?? v.toLowerCase()) : (k === 'kid' ? v.toLowerCase() : v)])
    .sort())
  if (attrs(a, true) !== attrs(b, false)) return false
  return sameElements(childElements(a), childElements(b), kidMap)
}
