// The JSON key API's two translations: a JSON key request into the CPIX request PallyCon's client sends,
// and a CPIX reply into that client's JSON.

import { randomUUID } from 'node:crypto'
import { badRequest, clip, unprocessable } from '../errors.js'
import { decodeBase64 } from './base64.js'
import { MAX_CONTENT_ID_LENGTH, MAX_TRACK_TYPE_LENGTH, blank } from './model.js'
import type { CpixDocument, DrmSystem } from './model.js'
import { parsePsshBoxes } from './pssh.js'
import { CLEARKEY_AES128, FAIRPLAY, NCG, NCG_HLS_AES128, NCG_HLS_SAMPLE_AES, PLAYREADY, SAMPLE_AES, WIDEVINE, WISEPLAY } from './systems.js'
import { escapeAttr } from './xml.js'

/** PallyCon's client's DRM type names and the system ids they stand for. */
export const DRM_TYPES: Record<string, string> = {
  widevine: WIDEVINE,
  playready: PLAYREADY,
  fairplay: FAIRPLAY,
  wiseplay: WISEPLAY,
  ncg: NCG,
  ncghls_aes128: NCG_HLS_AES128,
  ncghls_sampleaes: NCG_HLS_SAMPLE_AES,
  aes128: CLEARKEY_AES128,
  sampleaes: SAMPLE_AES
}

/** Track types one JSON key request may ask for (PallyCon's client uses at most AUDIO, SD, HD, UHD1, UHD2). */
export const MAX_TRACK_TYPES = 16
/** DRM system entries (track types × DRM types) one JSON key request may make the proxy build and the KMS fill. */
export const MAX_DRM_ENTRIES = 64

export interface JsonKeyRequest {
  content_id: string
  drm_types: string[]
  encryption_scheme: 'cenc' | 'cbcs'
  track_types: string[]
  key_rotation: boolean
  period_index?: number
}

interface JsonContentKey {
  track_type?: string
  key_id_hex: string
  key_id_b64: string
  key_hex: string
  key_b64: string
  iv_hex?: string
  iv_b64?: string
  widevine?: { pssh: string, pssh_payload_only: string }
  playready?: { pssh: string, pssh_payload_only: string }
  wiseplay?: { pssh: string, pssh_payload_only: string }
  fairplay?: { key_uri: string }
  ncg?: { cek: string }
  hls_aes?: { key_uri: string }
}

export interface JsonKeyReply {
  content_id: string
  content_key_list: JsonContentKey[]
}

/**
 * Check and normalise the JSON body; errors name the field. Lists are bounded before anything is built from them:
 * no DRM type or track type twice, at most MAX_TRACK_TYPES track types and MAX_DRM_ENTRIES entries (400 beyond).
 */
export function readJsonKeyRequest (body: unknown): JsonKeyRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw unprocessable('The body must be a JSON object: {content_id, drm_types, encryption_scheme, track_types, key_rotation, period_index}', 'BAD_JSON_REQUEST')
  const b = body as Record<string, unknown>
  if (typeof b.content_id !== 'string' || blank(b.content_id) || b.content_id.length > MAX_CONTENT_ID_LENGTH) {
    throw unprocessable(`content_id is required (a string of at most ${MAX_CONTENT_ID_LENGTH} characters)`, 'BAD_JSON_REQUEST')
  }
  const drmTypes = stringList(b.drm_types, 'drm_types', ['widevine', 'playready'], Object.keys(DRM_TYPES).length, 'DRM type')
  for (const t of drmTypes) {
    if (!Object.hasOwn(DRM_TYPES, t)) throw unprocessable(`drm_types: unknown DRM type "${clip(t)}"; use ${Object.keys(DRM_TYPES).join(', ')}`, 'BAD_JSON_REQUEST')
  }
  const scheme = b.encryption_scheme ?? 'cenc'
  if (scheme !== 'cenc' && scheme !== 'cbcs') throw unprocessable('encryption_scheme must be cenc or cbcs', 'BAD_JSON_REQUEST')
  const trackTypes = stringList(b.track_types, 'track_types', ['ALL'], MAX_TRACK_TYPES, 'track type').map(t => t.toUpperCase())
  const long = trackTypes.find(t => t.length > MAX_TRACK_TYPE_LENGTH)
  if (long !== undefined) throw badRequest(`track_types: a track type has at most ${MAX_TRACK_TYPE_LENGTH} characters, "${clip(long)}" has ${long.length}`, 'JSON_REQUEST_TOO_LARGE')
  repeated(trackTypes, 'track_types', 'track type')
  const entries = trackTypes.length * drmTypes.length
  if (entries > MAX_DRM_ENTRIES) throw badRequest(`The request asks for ${entries} DRM system entries (${trackTypes.length} track types × ${drmTypes.length} DRM types); at most ${MAX_DRM_ENTRIES}: split it into several requests`, 'JSON_REQUEST_TOO_LARGE')
  const rotation = b.key_rotation ?? false
  if (typeof rotation !== 'boolean') throw unprocessable('key_rotation must be true or false', 'BAD_JSON_REQUEST')
  const period = b.period_index
  if (period !== undefined && (typeof period !== 'number' || !Number.isInteger(period) || period < 0 || period > 0xffffffff)) throw unprocessable('period_index must be an integer from 0 to 4294967295', 'BAD_JSON_REQUEST')
  if (rotation && period === undefined) throw unprocessable('period_index is required when key_rotation is true', 'BAD_JSON_REQUEST')
  return {
    content_id: b.content_id,
    drm_types: drmTypes,
    encryption_scheme: scheme,
    track_types: trackTypes,
    key_rotation: rotation,
    period_index: period
  }
}

/** A non-empty list of at most `max` distinct non-empty strings (drm_types lower-cased). */
function stringList (value: unknown, field: string, fallback: string[], max: number, what: string): string[] {
  if (value === undefined) return fallback
  if (!Array.isArray(value) || value.length === 0) throw unprocessable(`${field} must be a non-empty list of strings`, 'BAD_JSON_REQUEST')
  if (value.length > max) throw badRequest(`${field} lists ${value.length} entries; at most ${max} (each ${what} once)`, 'JSON_REQUEST_TOO_LARGE')
  if (!value.every(v => typeof v === 'string' && v !== '')) throw unprocessable(`${field} must be a non-empty list of strings`, 'BAD_JSON_REQUEST')
  const list = value.map(v => field === 'drm_types' ? String(v).toLowerCase() : String(v))
  if (field === 'drm_types') repeated(list, field, what)
  return list
}

/** 400 when a list names the same entry twice (each would be built again: cost without meaning). */
function repeated (list: string[], field: string, what: string): void {
  const seen = new Set<string>()
  for (const item of list) {
    if (seen.has(item)) throw badRequest(`${field} must not repeat a ${what}: "${clip(item)}" appears more than once`, 'REPEATED_JSON_ENTRY')
    seen.add(item)
  }
}

/** The CPIX request PallyCon's CPIX client builds for the same ask (fresh kids; the KMS assigns its own). */
export function cpixForJsonRequest (req: JsonKeyRequest): string {
  const keys = req.track_types.map(track => ({ track, kid: randomUUID() }))
  const period = req.key_rotation ? `keyPeriod_${randomUUID()}` : undefined
  const cid = escapeAttr(req.content_id)
  const contentKeys = keys.map(k => `<cpix:ContentKey kid="${k.kid}" commonEncryptionScheme="${req.encryption_scheme}"/>`).join('')
  const systems = keys.flatMap(k => req.drm_types.map(t => `<cpix:DRMSystem kid="${k.kid}" systemId="${(DRM_TYPES[t] ?? '').toUpperCase()}"/>`)).join('')
  const rules = keys.map(k => `<cpix:ContentKeyUsageRule intendedTrackType="${escapeAttr(k.track)}" kid="${k.kid}">${period === undefined ? '' : `<cpix:KeyPeriodFilter periodId="${period}"/>`}</cpix:ContentKeyUsageRule>`).join('')
  const periods = period === undefined ? '' : `<cpix:ContentKeyPeriodList><cpix:ContentKeyPeriod id="${period}" index="${req.period_index ?? 0}"/></cpix:ContentKeyPeriodList>`
  return `<?xml version="1.0" encoding="UTF-8"?><cpix:CPIX id="${cid}" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:speke="urn:aws:amazon:com:speke">` +
    `<cpix:ContentKeyList>${contentKeys}</cpix:ContentKeyList><cpix:DRMSystemList>${systems}</cpix:DRMSystemList>${periods}` +
    `<cpix:ContentKeyUsageRuleList>${rules}</cpix:ContentKeyUsageRuleList></cpix:CPIX>`
}

/** The JSON PallyCon's client produces from a CPIX reply: one entry per usage rule, in the reply's order. */
export function jsonFromCpixReply (reply: CpixDocument, drmTypes: string[]): JsonKeyReply {
  const list: JsonContentKey[] = []
  for (const rule of reply.usageRules) {
    const key = reply.contentKeys.find(k => k.kid === rule.kid)
    if (key === undefined) continue
    const kidBytes = Buffer.from(key.kid.replace(/-/g, ''), 'hex')
    const keyBytes = decodeBase64(key.plainValue ?? '') ?? Buffer.alloc(0)
    const iv = key.explicitIV === undefined ? undefined : decodeBase64(key.explicitIV)
    const entry: JsonContentKey = {
      track_type: rule.intendedTrackType,
      key_id_hex: kidBytes.toString('hex'),
      key_id_b64: kidBytes.toString('base64'),
      key_hex: keyBytes.toString('hex'),
      key_b64: keyBytes.toString('base64'),
      iv_hex: iv?.toString('hex'),
      iv_b64: iv?.toString('base64')
    }
    const system = (id: string): DrmSystem | undefined => reply.drmSystems.find(s => s.kid === key.kid && s.systemId.toLowerCase() === id)
    if (drmTypes.includes('widevine')) entry.widevine = psshPair(system(WIDEVINE))
    if (drmTypes.includes('playready')) entry.playready = psshPair(system(PLAYREADY))
    if (drmTypes.includes('wiseplay')) entry.wiseplay = psshPair(system(WISEPLAY))
    if (drmTypes.includes('fairplay')) entry.fairplay = { key_uri: uriOf(system(FAIRPLAY)) }
    if (drmTypes.includes('ncg')) entry.ncg = { cek: system(NCG)?.uriExtXKey ?? '' }
    const clear = ['aes128', 'sampleaes', 'ncghls_aes128', 'ncghls_sampleaes'].find(t => drmTypes.includes(t))
    if (clear !== undefined) entry.hls_aes = { key_uri: uriOf(system(DRM_TYPES[clear])) }
    list.push(entry)
  }
  return { content_id: reply.id ?? reply.contentId ?? '', content_key_list: list }
}

function psshPair (system: DrmSystem | undefined): { pssh: string, pssh_payload_only: string } {
  const pssh = (system?.pssh ?? '').replace(/\s+/g, '')
  const box = decodeBase64(pssh)
  let payload = ''
  try {
    payload = box === undefined || box.length === 0 ? '' : parsePsshBoxes(box)[0].data.toString('base64')
  } catch {
    payload = ''
  }
  return { pssh, pssh_payload_only: payload }
}

function uriOf (system: DrmSystem | undefined): string {
  const fromTag = system?.uriExtXKey === undefined ? undefined : decodeBase64(system.uriExtXKey)?.toString('utf8')
  if (fromTag !== undefined && fromTag !== '') return fromTag
  const hls = system?.hlsSignaling[0]?.value
  const tag = hls === undefined ? '' : decodeBase64(hls)?.toString('utf8') ?? ''
  return /URI="([^"]*)"/.exec(tag)?.[1] ?? ''
}
