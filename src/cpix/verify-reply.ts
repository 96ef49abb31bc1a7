// Checks a CPIX reply against the request it answers: keys, kids, DRM systems, pssh boxes, PlayReady checksums, HLS tags.

import { ProxyError } from '../errors.js'
import { decodeBase64 } from './base64.js'
import { blank, contentIdOf } from './model.js'
import type { ContentKey, CpixDocument, DrmSystem } from './model.js'
import { parsePlayReadyObject, verifyPlayReadyChecksum } from './playready.js'
import { signallingReader } from './signalling-reader.js'
import type { SignallingReader } from './signalling-reader.js'
import { PLAYREADY, WIDEVINE, drmSystem } from './systems.js'
import { decodeWidevinePsshData } from './widevine.js'

interface VerifiedKey { kid: string, key: Buffer }

export interface VerifiedReply {
  /** Reply kid for each request kid (identical unless the KMS overrode kids). */
  kidMap: Map<string, string>
  keys: VerifiedKey[]
}

const problem = (message: string): ProxyError => new ProxyError('KMS_REPLY_INVALID', `KMS reply: ${message}`)

/** Throws a 502 naming the first problem; returns the answered keys when the reply is sound. */
export function verifyReply (request: CpixDocument, reply: CpixDocument, reader: SignallingReader = signallingReader()): VerifiedReply {
  const wanted = contentIdOf(request)
  const got = contentIdOf(reply)
  if (wanted !== undefined && got !== wanted) throw problem(`content id is "${got ?? ''}", the request asked for "${wanted}"`)

  const kidMap = mapKids(request, reply)
  const replyKeys = new Map(reply.contentKeys.map(k => [k.kid, k]))
  const keys: VerifiedKey[] = []
  for (const [asked, answered] of kidMap) {
    const key = replyKeys.get(answered)
    if (key === undefined) throw problem(`no ContentKey for kid ${asked}`)
    keys.push({ kid: answered, key: checkKey(key) })
  }
  const keyByKid = new Map(keys.map(k => [k.kid, k.key]))

  for (const system of reply.drmSystems) {
    if (!replyKeys.has(system.kid)) throw problem(`DRMSystem ${system.systemId} refers to kid ${system.kid}, which has no ContentKey`)
  }
  for (const rule of reply.usageRules) {
    if (!replyKeys.has(rule.kid)) throw problem(`ContentKeyUsageRule refers to kid ${rule.kid}, which has no ContentKey`)
  }

  checkPeriods(request, reply)

  const onlyKid = kidMap.size === 1 ? [...kidMap.values()][0] : undefined
  const answers = drmSystemsByKid(reply.drmSystems)
  for (const asked of request.drmSystems) {
    const kid = kidMap.get(asked.kid) ?? onlyKid ?? asked.kid
    const answer = answers.get(kid)?.get(systemKey(asked.systemId))
    if (answer === undefined) throw problem(`DRM system ${asked.systemId} for kid ${kid} is missing`)
    checkRequestedChildren(asked, answer)
    checkSignalling(answer, keyByKid.get(kid), reader)
  }
  return { kidMap, keys }
}

export function sameSystem (a: string, b: string): boolean {
  return systemKey(a) === systemKey(b)
}

/** What sameSystem compares: the system id trimmed and in lower case. */
export function systemKey (systemId: string): string {
  return systemId.trim().toLowerCase()
}

/** Kid → system key → the first DRM system of the list for them (what a find in document order gives). */
function drmSystemsByKid (systems: DrmSystem[]): Map<string, Map<string, DrmSystem>> {
  const byKid = new Map<string, Map<string, DrmSystem>>()
  for (const system of systems) {
    let bySystem = byKid.get(system.kid)
    if (bySystem === undefined) byKid.set(system.kid, bySystem = new Map())
    const key = systemKey(system.systemId)
    if (!bySystem.has(key)) bySystem.set(key, system)
  }
  return byKid
}

/** Request kid → reply kid. A KMS may override kids (PallyCon does): then kids pair up in document order. */
function mapKids (request: CpixDocument, reply: CpixDocument): Map<string, string> {
  const replyKids = reply.contentKeys.map(k => k.kid)
  const map = new Map<string, string>()
  const requestKids = request.contentKeys.map(k => k.kid)
  if (requestKids.every(k => replyKids.includes(k))) {
    for (const k of requestKids) map.set(k, k)
    return map
  }
  if (replyKids.length !== requestKids.length) {
    throw problem(`${replyKids.length} ContentKey(s) for the ${requestKids.length} requested`)
  }
  requestKids.forEach((k, i) => map.set(k, replyKids[i]))
  return map
}

/** A period the reply echoes under the request's id must be the requested one: its keys and signalling were made for it. */
function checkPeriods (request: CpixDocument, reply: CpixDocument): void {
  for (const asked of request.periods) {
    const answered = asked.id === undefined ? undefined : reply.periods.find(p => p.id === asked.id)
    if (answered === undefined) continue
    if (asked.index !== undefined && answered.index !== undefined && Number(asked.index) !== Number(answered.index)) {
      throw problem(`ContentKeyPeriod ${asked.id ?? ''} has index ${answered.index}, the request asked for ${asked.index}`)
    }
    for (const edge of ['start', 'end'] as const) {
      const want = asked[edge]
      const got = answered[edge]
      if (want !== undefined && got !== undefined && want !== got && Date.parse(want) !== Date.parse(got)) {
        throw problem(`ContentKeyPeriod ${asked.id ?? ''} has ${edge} ${got}, the request asked for ${want}`)
      }
    }
  }
}

function checkKey (key: ContentKey): Buffer {
  if (key.encrypted) return Buffer.alloc(0)
  if (key.plainValue === undefined || key.plainValue === '') throw problem(`ContentKey ${key.kid} carries no key (Data/Secret/PlainValue)`)
  const bytes = decodeBase64(key.plainValue)
  if (bytes === undefined) throw problem(`the key for kid ${key.kid} is not base64`)
  if (bytes.length !== 16) throw problem(`the key for kid ${key.kid} has ${bytes.length} bytes, not 16`)
  if (key.explicitIV !== undefined && key.explicitIV !== '') {
    const iv = decodeBase64(key.explicitIV)
    if (iv?.length !== 16) throw problem(`explicitIV for kid ${key.kid} is not 16 bytes of base64`)
  }
  return bytes
}

function checkRequestedChildren (asked: DrmSystem, answer: DrmSystem): void {
  const hlsOnly = drmSystem(asked.systemId)?.hlsOnly === true
  const where = `DRM system ${asked.systemId} for kid ${answer.kid}`
  // HLS-only systems have no pssh: AWS's own suite asks FairPlay for one and expects none back.
  if (asked.pssh !== undefined && !hlsOnly && blank(answer.pssh)) throw problem(`${where} has no PSSH`)
  // ContentProtectionData is derived from the PSSH (PallyCon often leaves it out; SPEKE v2 repair writes it): fatal only without a PSSH.
  if (asked.contentProtectionData !== undefined && !hlsOnly && blank(answer.contentProtectionData) && blank(answer.pssh)) throw problem(`${where} has no ContentProtectionData`)
  // HLS has no key tag for some systems (WisePlay, NCG, W3C common): no answer can carry one (SPEKE v2 refuses such asks up front).
  const hlsPossible = drmSystem(asked.systemId)?.hls !== false
  if (hlsPossible && asked.hlsSignaling.length > 0 && answer.hlsSignaling.every(h => blank(h.value))) throw problem(`${where} has no HLSSignalingData`)
  if (asked.smoothStreaming !== undefined && blank(answer.smoothStreaming)) throw problem(`${where} has no SmoothStreamingProtectionHeaderData`)
}

function checkSignalling (system: DrmSystem, key: Buffer | undefined, reader: SignallingReader): void {
  const where = `DRM system ${system.systemId} for kid ${system.kid}`
  if (!blank(system.pssh)) {
    const pssh = system.pssh ?? ''
    if (reader.bytes(system.element, 'PSSH', pssh) === undefined) throw problem(`PSSH of ${where} is not base64`)
    checkPssh(pssh, system, key, where, reader)
  }
  if (!blank(system.contentProtectionData)) {
    const data = system.contentProtectionData ?? ''
    const text = reader.text(system.element, 'ContentProtectionData', data)
    if (text === undefined) throw problem(`ContentProtectionData of ${where} is not base64`)
    if (text.trimStart().startsWith('<') && !blank(system.pssh)) {
      let inner: string | undefined
      try {
        inner = reader.cencPssh(system.element, data)
      } catch (err) {
        throw problem(`ContentProtectionData of ${where}: ${(err as Error).message}`)
      }
      if (inner !== undefined && inner !== (system.pssh ?? '').replace(/\s+/g, '')) throw problem(`the pssh inside ContentProtectionData of ${where} differs from its PSSH`)
    }
  }
  for (const hls of system.hlsSignaling) {
    if (blank(hls.value)) continue
    if (reader.text(hls.element, 'HLSSignalingData', hls.value) === undefined) throw problem(`HLSSignalingData of ${where} is not base64`)
    let tag: string
    try {
      tag = reader.hlsTag(hls.element, hls.value).tag
    } catch (err) {
      throw problem(`HLSSignalingData of ${where}: ${(err as Error).message}`)
    }
    const expected = hls.playlist === 'master' || hls.playlist === 'multiVariant' ? 'EXT-X-SESSION-KEY' : 'EXT-X-KEY'
    if (hls.playlist !== undefined && tag !== expected) throw problem(`HLSSignalingData (${hls.playlist}) of ${where} is #${tag}, expected #${expected}`)
  }
  if (!blank(system.uriExtXKey) && reader.bytes(system.element, 'URIExtXKey', system.uriExtXKey ?? '') === undefined) throw problem(`URIExtXKey of ${where} is not base64`)
}

function checkPssh (pssh: string, system: DrmSystem, key: Buffer | undefined, where: string, reader: SignallingReader): void {
  let boxes
  try {
    boxes = reader.psshBoxes(system.element, pssh)
  } catch (err) {
    throw problem(`PSSH of ${where}: ${(err as Error).message}`)
  }
  const box = boxes.find(b => sameSystem(b.systemId, system.systemId))
  if (box === undefined) throw problem(`PSSH of ${where} carries system id ${boxes.map(b => b.systemId).join(', ')}, not ${system.systemId.toLowerCase()}`)
  const kids = [...box.kids]
  const id = system.systemId.toLowerCase()
  if (id === WIDEVINE) {
    try {
      kids.push(...decodeWidevinePsshData(box.data).kids)
    } catch (err) {
      throw problem(`Widevine data in the PSSH of ${where}: ${(err as Error).message}`)
    }
  }
  if (id === PLAYREADY) {
    let header
    try {
      header = reader.wrmHeader(parsePlayReadyObject(box.data).wrmHeader)
    } catch (err) {
      throw problem(`PlayReady header in the PSSH of ${where}: ${(err as Error).message}`)
    }
    for (const k of header.kids) {
      kids.push(k.kid)
      const checked = k.kid === system.kid && key?.length === 16 ? k.checksum : undefined
      if (key !== undefined && checked !== undefined && !verifyPlayReadyChecksum(k.kid, key, checked)) {
        throw problem(`PlayReady CHECKSUM does not match the key for kid ${k.kid}`)
      }
    }
  }
  if ((id === WIDEVINE || id === PLAYREADY || box.kids.length > 0) && !kids.includes(system.kid)) {
    throw problem(`the PSSH of ${where} does not carry kid ${system.kid} (it carries ${kids.join(', ') || 'no kid'})`)
  }
}
