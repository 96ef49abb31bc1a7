// The DRM systems speke-proxy knows: system ids, names, and which encryption schemes each can signal.

/** The four Common Encryption protection schemes (ISO/IEC 23001-7 four-character codes). */
export type ProtectionScheme = 'cenc' | 'cbcs' | 'cens' | 'cbc1'
export const PROTECTION_SCHEMES: readonly ProtectionScheme[] = ['cenc', 'cbcs', 'cens', 'cbc1']

export function isProtectionScheme (value: string): value is ProtectionScheme {
  return PROTECTION_SCHEMES.some(scheme => scheme === value)
}

/** CPIX 2.3.1+/2.4 also allow an HLS METHOD name in commonEncryptionScheme. */
export const HLS_METHOD_SCHEMES: readonly string[] = ['AES-128', 'SAMPLE-AES', 'SAMPLE-AES-CTR']

export interface DrmSystemInfo {
  id: string
  name: string
  /** Schemes this system can be used with; an HLS-only system lists the CENC 4CC SPEKE uses for it. */
  schemes: readonly ProtectionScheme[]
  /** True when the system signals through HLS only (no DASH PSSH). */
  hlsOnly: boolean
  /** True when HLS has a key tag for the system (#EXT-X-KEY KEYFORMAT or a key URI): HLSSignalingData can be answered. */
  hls: boolean
}

export const WIDEVINE = 'edef8ba9-79d6-4ace-a3c8-27dcd51d21ed'
export const PLAYREADY = '9a04f079-9840-4286-ab92-e65be0885f95'
export const FAIRPLAY = '94ce86fb-07ff-4f43-adb8-93d2fa968ca2'
export const WISEPLAY = '3d5e6d35-9b9a-41e8-b843-dd3c6e72c42c'
export const CLEARKEY_AES128 = '3ea8778f-7742-4bf9-b18b-e834b2acbd47'
export const SAMPLE_AES = 'be58615b-19c4-4684-88b3-c8c57e99e957'
export const NCG = 'd9e4411a-e886-4909-a380-a77f28d52335'
export const NCG_HLS_AES128 = '81376844-f976-481e-a84e-cc25d39b0b33'
export const NCG_HLS_SAMPLE_AES = '48582a1d-1ff4-426e-8cd5-06424fcc578c'
/** W3C "Common" (ClearKey) system id: version 1 pssh boxes with KIDs only and no data. */
export const W3C_COMMON = '1077efec-c0b2-4d02-ace3-3c1e52e2fb4b'

const SYSTEMS: readonly DrmSystemInfo[] = [
  { id: WIDEVINE, name: 'Widevine', schemes: PROTECTION_SCHEMES, hlsOnly: false, hls: true },
  { id: PLAYREADY, name: 'PlayReady', schemes: PROTECTION_SCHEMES, hlsOnly: false, hls: true },
  { id: FAIRPLAY, name: 'FairPlay', schemes: ['cbcs', 'cbc1'], hlsOnly: true, hls: true },
  { id: WISEPLAY, name: 'WisePlay', schemes: PROTECTION_SCHEMES, hlsOnly: false, hls: false },
  { id: CLEARKEY_AES128, name: 'HLS AES-128 (clear key)', schemes: ['cbcs', 'cbc1'], hlsOnly: true, hls: true },
  { id: SAMPLE_AES, name: 'HLS SAMPLE-AES (clear key)', schemes: ['cbcs', 'cbc1'], hlsOnly: true, hls: true },
  { id: NCG, name: 'NCG', schemes: PROTECTION_SCHEMES, hlsOnly: false, hls: false },
  { id: NCG_HLS_AES128, name: 'HLS AES-128 (NCG / AWS SPEKE v1)', schemes: ['cbcs', 'cbc1'], hlsOnly: true, hls: true },
  { id: NCG_HLS_SAMPLE_AES, name: 'NCG-HLS SAMPLE-AES', schemes: ['cbcs', 'cbc1'], hlsOnly: true, hls: true },
  { id: W3C_COMMON, name: 'W3C Common PSSH / ClearKey', schemes: PROTECTION_SCHEMES, hlsOnly: false, hls: false }
]

const BY_ID = new Map(SYSTEMS.map(s => [s.id, s]))

/** Look a system id up case-insensitively (PallyCon's clients send upper case). */
export function drmSystem (systemId: string): DrmSystemInfo | undefined {
  return BY_ID.get(systemId.trim().toLowerCase())
}

export function drmSystemName (systemId: string): string {
  return drmSystem(systemId)?.name ?? systemId
}
