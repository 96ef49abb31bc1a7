// Repairs a verified KMS reply into what SPEKE v2 encryptors require, touching only what is certain; reports whether anything changed.

import { decodeBase64, encodeBase64 } from './base64.js'
import { cencPsshFragment, extractCencPssh, hlsKeyTag, parseHlsTag, playReadyFragment } from './hls.js'
import type { HlsAttributes } from './hls.js'
import { CPIX_NS, SPEKE_NS } from './model.js'
import type { CpixDocument, DrmSystem } from './model.js'
import { CPIX_LIST_ORDER, DRM_SYSTEM_ORDER, sortChildren } from './order.js'
import { parsePsshBoxes } from './pssh.js'
import { PLAYREADY } from './systems.js'
import { childElements, firstChild, makeElement, prefixOf, qualified, removeChild, setText } from './xml.js'
import type { XmlElement, XmlNode } from './xml.js'
import { sameSystem } from './verify-reply.js'

export interface RepairResult {
  changed: boolean
  /** What was repaired, for the log (never values). */
  repairs: string[]
}

/** Bring a reply to the SPEKE v2 profile in place. `kidMap` maps request kids to reply kids. */
export function repairForSpekeV2 (request: CpixDocument, reply: CpixDocument, kidMap: Map<string, string>): RepairResult {
  const repairs: string[] = []
  const note = (what: string): void => { if (!repairs.includes(what)) repairs.push(what) }
  const cpix = prefixOf(reply.root)

  for (const attr of ['version', 'contentId'] as const) {
    const wanted = request.root.attrs[attr]
    if (wanted !== undefined && reply.root.attrs[attr] !== wanted) { reply.root.attrs[attr] = wanted; note(`CPIX@${attr} restored`) }
  }
  for (const asked of request.contentKeys) {
    const key = reply.contentKeys.find(k => k.kid === (kidMap.get(asked.kid) ?? asked.kid))
    const wanted = asked.commonEncryptionScheme
    if (key !== undefined && wanted !== undefined && key.element.attrs.commonEncryptionScheme !== wanted) {
      key.element.attrs.commonEncryptionScheme = wanted
      note('commonEncryptionScheme restored')
    }
  }

  for (const system of reply.drmSystems) {
    const asked = request.drmSystems.find(s => sameSystem(s.systemId, system.systemId))
    if (asked !== undefined && system.element.attrs.systemId !== asked.systemId) {
      system.element.attrs.systemId = asked.systemId
      note('systemId case')
    }
    for (const child of childElements(system.element)) {
      if (child.ns === SPEKE_NS || (child.ns === CPIX_NS && child.local === 'URIExtXKey')) {
        removeChild(system.element, child)
        note('SPEKE v1 items removed')
      }
    }
    if (rewriteContentProtectionData(system, asked, cpix)) note('ContentProtectionData rebuilt from PSSH')
    // Pair what the caller asked for, and what the KMS sent unasked (SPEKE v2 encryptors refuse a lone playlist either way).
    const hls = (asked?.hlsSignaling.length ?? 0) > 0 || system.hlsSignaling.length > 0
    if (hls && pairHlsSignaling(system, cpix, masterPlaylist(request, asked))) note('HLSSignalingData for media and master')
    if (sortChildren(system.element, DRM_SYSTEM_ORDER)) note('DRMSystem children in schema order')
  }
  for (const stray of childElements(reply.root, SPEKE_NS)) { removeChild(reply.root, stray); note('SPEKE v1 items removed') }

  if (echoList(request, reply, 'ContentKeyPeriodList', kidMap, cpix)) note('ContentKeyPeriodList echoed')
  if (echoList(request, reply, 'ContentKeyUsageRuleList', kidMap, cpix)) note('ContentKeyUsageRuleList echoed')
  if (sortChildren(reply.root, CPIX_LIST_ORDER)) note('lists in schema order')
  return { changed: repairs.length > 0, repairs }
}

/** ContentProtectionData must be the MPD fragment whose cenc:pssh is the PSSH; PallyCon sometimes sends the bare payload. */
function rewriteContentProtectionData (system: DrmSystem, asked: DrmSystem | undefined, cpix: string): boolean {
  const pssh = system.pssh?.replace(/\s+/g, '')
  if (pssh === undefined || pssh === '') return false
  const element = firstChild(system.element, CPIX_NS, 'ContentProtectionData')
  if (element === undefined && asked?.contentProtectionData === undefined) return false
  const box = decodeBase64(pssh)
  if (box === undefined) return false
  // The PlayReady Object is the payload of the PlayReady box (verification already found one in this PSSH).
  const pro = parsePsshBoxes(box).find(b => b.systemId === PLAYREADY)?.data
  const wanted = system.systemId.toLowerCase() === PLAYREADY && pro !== undefined ? playReadyFragment(box, pro) : cencPsshFragment(box)
  const current = system.contentProtectionData === undefined ? undefined : decodeBase64(system.contentProtectionData)?.toString('utf8')
  if (current !== undefined && current.trimStart().startsWith('<') && safeExtract(current) === pssh) return false
  if (element === undefined) {
    system.element.children.push(makeElement(qualified(cpix, 'ContentProtectionData'), CPIX_NS, {}, [{ kind: 'text', text: encodeBase64(wanted) }]))
  } else {
    setText(element, encodeBase64(wanted))
  }
  return true
}

function safeExtract (text: string): string | undefined {
  try {
    return extractCencPssh(text)
  } catch {
    return undefined
  }
}

/** What the caller calls the master playlist: its own word, else CPIX 2.4's multiVariant or earlier versions' master. */
function masterPlaylist (request: CpixDocument, asked: DrmSystem | undefined): string {
  const named = asked?.hlsSignaling.find(h => h.playlist === 'master' || h.playlist === 'multiVariant')?.playlist
  return named ?? (request.version === '2.4' ? 'multiVariant' : 'master')
}

/** Exactly one media (#EXT-X-KEY) and one master (#EXT-X-SESSION-KEY) signalling, with identical attributes. */
function pairHlsSignaling (system: DrmSystem, cpix: string, masterName: string): boolean {
  const existing = childElements(system.element, CPIX_NS, 'HLSSignalingData')
  let attrs: HlsAttributes | undefined
  for (const h of existing) {
    try {
      attrs = Object.entries(parseHlsTag(decodeBase64(h.children.map(textOf).join('').trim())?.toString('utf8') ?? '').attributes)
      if (h.attrs.playlist === undefined || h.attrs.playlist === 'media') break
    } catch { /* try the next one */ }
  }
  if (attrs === undefined) return false
  const media = encodeBase64(hlsKeyTag('media', attrs))
  const master = encodeBase64(hlsKeyTag('master', attrs))
  const current = existing.map(h => [h.attrs.playlist, h.children.map(textOf).join('').trim()])
  if (current.length === 2 && current.some(([p, v]) => p === 'media' && v === media) && current.some(([p, v]) => p === masterName && v === master)) return false
  const name = existing[0]?.name ?? qualified(cpix, 'HLSSignalingData')
  const at = existing.length === 0 ? system.element.children.length : system.element.children.indexOf(existing[0])
  for (const h of existing) removeChild(system.element, h)
  system.element.children.splice(Math.min(at, system.element.children.length), 0,
    makeElement(name, CPIX_NS, { playlist: 'media' }, [{ kind: 'text', text: media }]),
    makeElement(name, CPIX_NS, { playlist: masterName }, [{ kind: 'text', text: master }]))
  return true
}

function textOf (node: XmlNode): string {
  return node.kind === 'text' ? node.text : ''
}

/** Replace a reply list by the request's, kids mapped, CPIX prefix the reply's. Returns whether it differed. */
function echoList (request: CpixDocument, reply: CpixDocument, local: string, kidMap: Map<string, string>, cpix: string): boolean {
  const wanted = firstChild(request.root, CPIX_NS, local)
  const got = firstChild(reply.root, CPIX_NS, local)
  if (wanted === undefined) return false
  const copy = cloneInto(wanted, kidMap, cpix)
  if (got !== undefined && fingerprint(got) === fingerprint(copy)) return false
  if (got === undefined) reply.root.children.push(copy)
  else reply.root.children[reply.root.children.indexOf(got)] = copy
  return true
}

function cloneInto (el: XmlElement, kidMap: Map<string, string>, cpix: string): XmlElement {
  const attrs: Record<string, string> = {}
  for (const [k, v] of Object.entries(el.attrs)) {
    if (k.startsWith('xmlns')) continue
    attrs[k] = k === 'kid' ? (kidMap.get(v.trim().toLowerCase()) ?? v) : v
  }
  const name = el.ns === CPIX_NS ? qualified(cpix, el.local) : el.name
  const children = el.children.map((c): XmlNode => c.kind === 'element' ? cloneInto(c, kidMap, cpix) : { ...c })
  return makeElement(name, el.ns, attrs, children)
}

function fingerprint (el: XmlElement): string {
  const attrs = Object.entries(el.attrs).filter(([k]) => !k.startsWith('xmlns')).sort()
  return `${el.ns}|${el.local}|${JSON.stringify(attrs)}[${childElements(el).map(fingerprint).join(',')}]`
}
