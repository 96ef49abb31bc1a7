// Repairs a verified KMS reply into what SPEKE v2 encryptors require, touching only what is certain; reports whether anything changed.

import { firstBy } from './first-by.js'
import { encodeBase64 } from './base64.js'
import { cencPsshFragment, hlsKeyTagPair, playReadyFragment } from './hls.js'
import type { HlsAttributes } from './hls.js'
import { CPIX_NS, SPEKE_NS } from './model.js'
import type { CpixDocument, DrmSystem } from './model.js'
import { CPIX_LIST_ORDER, DRM_SYSTEM_ORDER, sortChildren } from './order.js'
import { signallingReader } from './signalling-reader.js'
import type { SignallingReader } from './signalling-reader.js'
import { PLAYREADY } from './systems.js'
import { childElements, firstChild, makeElement, prefixOf, qualified, removeChild, setText } from './xml.js'
import type { XmlElement, XmlNode } from './xml.js'
import { systemKey } from './verify-reply.js'

export interface RepairResult {
  changed: boolean
  /** What was repaired, for the log (never values). */
  repairs: string[]
}

/** Bring a reply to the SPEKE v2 profile in place. `kidMap` maps request kids to reply kids. */
export function repairForSpekeV2 (
  request: CpixDocument, reply: CpixDocument, kidMap: Map<string, string>, reader: SignallingReader = signallingReader()
): RepairResult {
  const repairs: string[] = []
  const note = (what: string): void => { if (!repairs.includes(what)) repairs.push(what) }
  const cpix = prefixOf(reply.root)

  for (const attr of ['version', 'contentId'] as const) {
    const wanted = request.root.attrs[attr]
    if (wanted !== undefined && reply.root.attrs[attr] !== wanted) { reply.root.attrs[attr] = wanted; note(`CPIX@${attr} restored`) }
  }
  const replyKeys = firstBy(reply.contentKeys, key => key.kid)
  for (const asked of request.contentKeys) {
    const key = replyKeys.get(kidMap.get(asked.kid) ?? asked.kid)
    const wanted = asked.commonEncryptionScheme
    if (key !== undefined && wanted !== undefined && key.element.attrs.commonEncryptionScheme !== wanted) {
      key.element.attrs.commonEncryptionScheme = wanted
      note('commonEncryptionScheme restored')
    }
  }

  const askedSystems = firstBy(request.drmSystems, system => systemKey(system.systemId))
  for (const system of reply.drmSystems) {
    const asked = askedSystems.get(systemKey(system.systemId))
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
    if (rewriteContentProtectionData(system, asked, cpix, reader)) note('ContentProtectionData rebuilt from PSSH')
    // Pair what the caller asked for, and what the KMS sent unasked (SPEKE v2 encryptors refuse a lone playlist either way).
    const hls = (asked?.hlsSignaling.length ?? 0) > 0 || system.hlsSignaling.length > 0
    if (hls && pairHlsSignaling(system, cpix, masterPlaylist(request, asked), reader)) note('HLSSignalingData for media and master')
    if (sortChildren(system.element, DRM_SYSTEM_ORDER)) note('DRMSystem children in schema order')
  }
  for (const stray of childElements(reply.root, SPEKE_NS)) { removeChild(reply.root, stray); note('SPEKE v1 items removed') }

  if (echoList(request, reply, 'ContentKeyPeriodList', kidMap, cpix)) note('ContentKeyPeriodList echoed')
  if (echoList(request, reply, 'ContentKeyUsageRuleList', kidMap, cpix)) note('ContentKeyUsageRuleList echoed')
  if (sortChildren(reply.root, CPIX_LIST_ORDER)) note('lists in schema order')
  return { changed: repairs.length > 0, repairs }
}

/** ContentProtectionData must be the MPD fragment whose cenc:pssh is the PSSH; PallyCon sometimes sends the bare payload. */
function rewriteContentProtectionData (system: DrmSystem, asked: DrmSystem | undefined, cpix: string, reader: SignallingReader): boolean {
  const pssh = system.pssh?.replace(/\s+/g, '')
  if (pssh === undefined || pssh === '') return false
  const element = firstChild(system.element, CPIX_NS, 'ContentProtectionData')
  if (element === undefined && asked?.contentProtectionData === undefined) return false
  const box = reader.bytes(system.element, 'PSSH', pssh)
  if (box === undefined) return false
  // The PlayReady Object is the payload of the PlayReady box (verification already found one in this PSSH).
  const pro = reader.psshBoxes(system.element, pssh).find(b => b.systemId === PLAYREADY)?.data
  const data = system.contentProtectionData
  const current = data === undefined ? undefined : reader.text(system.element, 'ContentProtectionData', data)
  if (data !== undefined && current !== undefined && current.trimStart().startsWith('<') && safeExtract(system.element, data, reader) === pssh) return false
  const wanted = system.systemId.toLowerCase() === PLAYREADY && pro !== undefined ? playReadyFragment(box, pro) : cencPsshFragment(box)
  const encoded = encodeBase64(wanted)
  // Both fragments open with the cenc:pssh element holding the box: that is what extractCencPssh finds in them.
  reader.wrote(system.element, 'ContentProtectionData', { base64: encoded, text: wanted, cencPssh: box.toString('base64') })
  if (element === undefined) {
    system.element.children.push(makeElement(qualified(cpix, 'ContentProtectionData'), CPIX_NS, {}, [{ kind: 'text', text: encoded }]))
  } else {
    setText(element, encoded)
  }
  return true
}

function safeExtract (element: XmlElement, data: string, reader: SignallingReader): string | undefined {
  try {
    return reader.cencPssh(element, data)
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
function pairHlsSignaling (system: DrmSystem, cpix: string, masterName: string, reader: SignallingReader): boolean {
  const existing = childElements(system.element, CPIX_NS, 'HLSSignalingData')
  let attrs: HlsAttributes | undefined
  for (const h of existing) {
    try {
      attrs = Object.entries(reader.hlsTag(h, h.children.map(textOf).join('').trim()).attributes)
      if (h.attrs.playlist === undefined || h.attrs.playlist === 'media') break
    } catch { /* try the next one */ }
  }
  if (attrs === undefined) return false
  const tags = hlsKeyTagPair(attrs)
  const media = encodeBase64(tags.media)
  const master = encodeBase64(tags.master)
  const current = existing.map(h => [h.attrs.playlist, h.children.map(textOf).join('').trim()])
  if (current.length === 2 && current.some(([p, v]) => p === 'media' && v === media) && current.some(([p, v]) => p === masterName && v === master)) return false
  const name = existing[0]?.name ?? qualified(cpix, 'HLSSignalingData')
  const at = existing.length === 0 ? system.element.children.length : system.element.children.indexOf(existing[0])
  for (const h of existing) removeChild(system.element, h)
  const mediaElement = makeElement(name, CPIX_NS, { playlist: 'media' }, [{ kind: 'text', text: media }])
  const masterElement = makeElement(name, CPIX_NS, { playlist: masterName }, [{ kind: 'text', text: master }])
  // hlsKeyTagPair writes only what parseHlsTag reads back as written (it refuses the rest): these are the two tags read.
  const attributes = Object.fromEntries(attrs)
  reader.wrote(mediaElement, 'HLSSignalingData', { base64: media, text: tags.media, tag: { tag: 'EXT-X-KEY', attributes } })
  reader.wrote(masterElement, 'HLSSignalingData', { base64: master, text: tags.master, tag: { tag: 'EXT-X-SESSION-KEY', attributes } })
  system.element.children.splice(Math.min(at, system.element.children.length), 0, mediaElement, masterElement)
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
  if (got !== undefined && (sameShape(got, copy) || fingerprint(got) === fingerprint(copy))) return false
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

/** Same namespace, name, attributes but xmlns (in any order) and element children: then their fingerprints are equal too. */
function sameShape (a: XmlElement, b: XmlElement): boolean {
  if (a.ns !== b.ns || a.local !== b.local || !sameAttributes(a.attrs, b.attrs)) return false
  const aChildren = childElements(a)
  const bChildren = childElements(b)
  return aChildren.length === bChildren.length && aChildren.every((child, i) => sameShape(child, bChildren[i]))
}

function sameAttributes (a: Record<string, string>, b: Record<string, string>): boolean {
  let unmatched = 0
  for (const [name, value] of Object.entries(a)) {
    if (name.startsWith('xmlns')) continue
    if (!Object.prototype.hasOwnProperty.call(b, name) || b[name] !== value) return false
    unmatched++
  }
  for (const name of Object.keys(b)) if (!name.startsWith('xmlns')) unmatched--
  return unmatched === 0
}

/** What echoList compares when the shapes differ (a cheap sameShape settles the usual case). */
function fingerprint (el: XmlElement): string {
  const attrs = Object.entries(el.attrs).filter(([k]) => !k.startsWith('xmlns')).sort()
  return `${el.ns}|${el.local}|${JSON.stringify(attrs)}[${childElements(el).map(fingerprint).join(',')}]`
}
