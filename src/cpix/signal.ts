// Builds the DRM signalling of one key for one DRM system: pssh box, MPD fragment, HLS tags, key URIs, PlayReady object.

import { aes128HlsAttributes, cencPsshFragment, fairPlayHlsAttributes, fairPlaySkdUri, hlsKeyTagPair, playReadyFragment, playReadyHlsAttributes, widevineHlsAttributes, FAIRPLAY_KEYFORMAT, IDENTITY_KEYFORMAT, PLAYREADY_KEYFORMAT, WIDEVINE_KEYFORMAT } from './hls.js'
import type { HlsAttributes } from './hls.js'
import { buildPlayReadyObject, buildWrmHeader } from './playready.js'
import { buildPsshBox } from './pssh.js'
import { CLEARKEY_AES128, FAIRPLAY, NCG_HLS_AES128, NCG_HLS_SAMPLE_AES, PLAYREADY, SAMPLE_AES, WIDEVINE, drmSystem } from './systems.js'
import type { ProtectionScheme } from './systems.js'
import { buildWidevinePsshBox } from './widevine.js'

export interface SignalInput {
  systemId: string
  kid: string
  key: Buffer
  iv: Buffer
  scheme: ProtectionScheme
  contentId: string
  /** ContentKeyPeriod@index when the key rotates. */
  periodIndex?: number
  /** intendedTrackType, for PallyCon-style Widevine track_type. */
  trackType?: string
}

export interface SignalOptions {
  playReadyLaUrl: string
  widevineProvider: string
  /** Base of clear-key (AES-128 / SAMPLE-AES) key URLs: `${base}/${contentId}/${kid}`. */
  hlsKeyUrlBase: string
  /** PallyCon's shape: legacy Widevine algorithm field and track_type, PERIOD_INDEX custom attribute. */
  pallyconStyle: boolean
}

export interface Signalling {
  pssh?: Buffer
  /** base64 of pssh, written once for every element that carries it. */
  psshBase64?: string
  contentProtectionData?: string
  hls?: { media: string, master: string }
  /** The key URI SPEKE v1 puts (base64) in URIExtXKey. */
  keyUri?: string
  /** PlayReady Object, for SmoothStreamingProtectionHeaderData and speke:ProtectionHeader. */
  playReadyObject?: Buffer
  /** base64 of playReadyObject, written once for every element that carries it. */
  playReadyObjectBase64?: string
  /** SPEKE v1 speke:KeyFormat / speke:KeyFormatVersions values (plain text, base64 in the document). */
  keyFormat?: string
  keyFormatVersions?: string
}

/** PallyCon's live content id in Widevine data and FairPlay URIs: cid + 16 hex digits of the period index. */
function periodContentId (contentId: string, periodIndex: number | undefined): string {
  return periodIndex === undefined ? contentId : `${contentId}${periodIndex.toString(16).padStart(16, '0')}`
}

export function buildSignalling (input: SignalInput, options: SignalOptions): Signalling {
  const id = input.systemId.toLowerCase()
  if (id === WIDEVINE) return widevine(input, options)
  if (id === PLAYREADY) return playReady(input, options)
  if (id === FAIRPLAY) return fairPlay(input)
  if (id === CLEARKEY_AES128 || id === NCG_HLS_AES128) return clearKeyHls(input, options, 'AES-128')
  if (id === SAMPLE_AES || id === NCG_HLS_SAMPLE_AES) return clearKeyHls(input, options, 'SAMPLE-AES')
  if (drmSystem(id)?.hlsOnly === true) return {}
  // Other pssh-signalled systems (WisePlay, NCG, W3C common): a v1 box that names the key, no system data.
  const pssh = buildPsshBox({ systemId: id, version: 1, kids: [input.kid], data: Buffer.alloc(0) })
  const psshBase64 = pssh.toString('base64')
  return { pssh, psshBase64, contentProtectionData: cencPsshFragment(pssh, psshBase64) }
}

function widevine (input: SignalInput, options: SignalOptions): Signalling {
  const pssh = buildWidevinePsshBox({
    algorithmAesCtr: options.pallyconStyle ? true : undefined,
    kids: [input.kid],
    provider: options.widevineProvider,
    contentId: Buffer.from(periodContentId(input.contentId, input.periodIndex), 'utf8'),
    trackType: options.pallyconStyle ? input.trackType : undefined,
    cryptoPeriodIndex: input.periodIndex,
    protectionScheme: input.scheme === 'cenc' ? undefined : input.scheme
  })
  const psshBase64 = pssh.toString('base64')
  return {
    pssh,
    psshBase64,
    contentProtectionData: cencPsshFragment(pssh, psshBase64),
    hls: hlsPair(hlsSafe(input.scheme) ? widevineHlsAttributes(pssh, input.kid, input.scheme, psshBase64) : undefined),
    keyFormat: WIDEVINE_KEYFORMAT,
    keyFormatVersions: '1'
  }
}

function playReady (input: SignalInput, options: SignalOptions): Signalling {
  const customAttributes = options.pallyconStyle && input.periodIndex !== undefined ? `<PERIOD_INDEX>${input.periodIndex}</PERIOD_INDEX>` : undefined
  const kids = [{ kid: input.kid, key: input.key }]
  const header = buildWrmHeader({ kids, scheme: input.scheme, laUrl: options.playReadyLaUrl, customAttributes })
  const pro = buildPlayReadyObject(header)
  const pssh = buildPsshBox({ systemId: PLAYREADY, version: 0, data: pro })
  const psshBase64 = pssh.toString('base64')
  const proBase64 = pro.toString('base64')
  return {
    pssh,
    psshBase64,
    contentProtectionData: playReadyFragment(pssh, pro, psshBase64, proBase64),
    hls: hlsPair(hlsSafe(input.scheme) ? playReadyHlsAttributes(pro, input.kid, input.scheme, proBase64) : undefined),
    playReadyObject: pro,
    playReadyObjectBase64: proBase64,
    keyFormat: PLAYREADY_KEYFORMAT,
    keyFormatVersions: '1'
  }
}

function fairPlay (input: SignalInput): Signalling {
  const keyUri = input.periodIndex === undefined ? fairPlaySkdUri(input.kid) : `skd://${periodContentId(input.contentId, input.periodIndex)}`
  return { keyUri, hls: hlsPair(fairPlayHlsAttributes(keyUri)), keyFormat: FAIRPLAY_KEYFORMAT, keyFormatVersions: '1' }
}

function clearKeyHls (input: SignalInput, options: SignalOptions, method: 'AES-128' | 'SAMPLE-AES'): Signalling {
  const keyUri = `${options.hlsKeyUrlBase}/${encodeURIComponent(input.contentId)}/${input.kid}`
  const attrs = aes128HlsAttributes(keyUri, input.iv)
  if (method === 'SAMPLE-AES') attrs[0] = ['METHOD', 'SAMPLE-AES']
  return { keyUri, hls: hlsPair(attrs), keyFormat: IDENTITY_KEYFORMAT, keyFormatVersions: '1' }
}

function hlsSafe (scheme: ProtectionScheme): scheme is 'cenc' | 'cbcs' {
  return scheme === 'cenc' || scheme === 'cbcs'
}

/** Both playlists' tags, the attributes checked and written once (hlsKeyTagPair); none when the system has no HLS signalling. */
function hlsPair (attrs: HlsAttributes | undefined): { media: string, master: string } | undefined {
  return attrs === undefined ? undefined : hlsKeyTagPair(attrs)
}
