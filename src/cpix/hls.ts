// HLS key signalling (#EXT-X-KEY / #EXT-X-SESSION-KEY per DRM) and MPD ContentProtection fragments (cenc:pssh, mspr:pro).
import { decodeBase64 } from './base64.js'
import { normalizeUuid, uuidToBytes } from './uuid.js'
import { WIDEVINE } from './systems.js'
import type { ProtectionScheme } from './systems.js'

export type HlsPlaylist = 'media' | 'master'
type HlsTagName = 'EXT-X-KEY' | 'EXT-X-SESSION-KEY'
export type HlsAttributes = Array<[string, string]>
export interface HlsTag { tag: HlsTagName; attributes: Record<string, string> }

export const WIDEVINE_KEYFORMAT = `urn:uuid:${WIDEVINE}`
export const PLAYREADY_KEYFORMAT = 'com.microsoft.playready'
export const FAIRPLAY_KEYFORMAT = 'com.apple.streamingkeydelivery'
export const IDENTITY_KEYFORMAT = 'identity'

/** RFC 8216 enumerated-string / hexadecimal-sequence attributes, written without quotes; all others are quoted. */
const UNQUOTED = new Set(['METHOD', 'KEYID', 'IV'])

function hlsTagName (playlist: HlsPlaylist): HlsTagName {
  return playlist === 'media' ? 'EXT-X-KEY' : 'EXT-X-SESSION-KEY'
}

/** `#EXT-X-KEY:` (media) or `#EXT-X-SESSION-KEY:` (master) followed by the attributes in the given order. */
export function hlsKeyTag (playlist: HlsPlaylist, attrs: HlsAttributes): string {
  return `#${hlsTagName(playlist)}:${hlsAttributeList(attrs)}`
}

/** hlsKeyTag for media and for master: the same attributes, written once. */
export function hlsKeyTagPair (attrs: HlsAttributes): { media: string, master: string } {
  const list = hlsAttributeList(attrs)
  return { media: `#${hlsTagName('media')}:${list}`, master: `#${hlsTagName('master')}:${list}` }
}

function hlsAttributeList (attrs: HlsAttributes): string {
  if (attrs.length === 0) throw new Error('an HLS key tag needs at least one attribute')
  let out = ''
  for (let i = 0; i < attrs.length; i++) {
    const [name, value] = attrs[i]
    if (!isAttributeName(name)) throw new Error(`invalid HLS attribute name '${name}'`)
    for (let j = 0; j < i; j++) if (attrs[j][0] === name) throw new Error(`duplicate HLS attribute ${name}`)
    if (i > 0) out += ','
    if (UNQUOTED.has(name)) {
      if (!isUnquotedValue(value)) throw new Error(`HLS attribute ${name} value '${value}' cannot be written unquoted`)
      out += `${name}=${value}`
    } else {
      if (value.includes('"') || value.includes('\r') || value.includes('\n')) throw new Error(`HLS attribute ${name} value contains a double quote or line break`)
      out += `${name}="${value}"`
    }
  }
  return out
}

/** [A-Z0-9-]+ */
function isAttributeName (name: string): boolean {
  if (name.length === 0) return false
  for (let i = 0; i < name.length; i++) if (!isAttributeNameChar(name.charCodeAt(i))) return false
  return true
}

/** [^\s",]+ */
function isUnquotedValue (value: string): boolean {
  if (value.length === 0) return false
  for (let i = 0; i < value.length; i++) if (endsUnquoted(value, i)) return false
  return true
}

/** Strict parser for one #EXT-X-KEY / #EXT-X-SESSION-KEY line (a trailing line break is allowed); quotes are removed. */
export function parseHlsTag (text: string): HlsTag {
  const line = text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text
  if (line.includes('\r') || line.includes('\n')) throw new Error('HLS signalling must be a single tag line')
  const tag: HlsTagName | undefined = line.startsWith('#EXT-X-KEY:') ? 'EXT-X-KEY' : line.startsWith('#EXT-X-SESSION-KEY:') ? 'EXT-X-SESSION-KEY' : undefined
  if (tag === undefined) {
    throw new Error(`not an HLS key tag: expected #EXT-X-KEY: or #EXT-X-SESSION-KEY:, got ${JSON.stringify(line.slice(0, 40))}`)
  }
  const attributes: Record<string, string> = {}
  let at = tag.length + 2
  if (at === line.length) throw new Error(`#${tag} has no attributes`)
  // One scan: NAME=value (a quoted string without '"', or a run without '"', ',' and white space), then ',' or the end.
  for (;;) {
    let end = at
    while (end < line.length && isAttributeNameChar(line.charCodeAt(end))) end++
    if (end === at || line.charCodeAt(end) !== 0x3d /* = */) throw malformed(tag, line, at)
    let next = end + 1
    if (line.charCodeAt(next) === 0x22 /* " */) {
      const close = line.indexOf('"', next + 1)
      if (close === -1) throw malformed(tag, line, at)
      next = close + 1
    } else {
      const start = next
      while (next < line.length && !endsUnquoted(line, next)) next++
      if (next === start) throw malformed(tag, line, at)
    }
    const name = line.slice(at, end)
    const raw = line.slice(end + 1, next)
    if (Object.prototype.hasOwnProperty.call(attributes, name)) throw new Error(`#${tag} repeats attribute ${name}`)
    attributes[name] = raw.startsWith('"') ? raw.slice(1, -1) : raw
    if (next === line.length) break
    if (line.charCodeAt(next) !== 0x2c /* , */) throw new Error(`#${tag} expects ',' after attribute ${name}, got ${JSON.stringify(line.slice(next, next + 20))}`)
    at = next + 1
  }
  if (attributes.METHOD === undefined) throw new Error(`#${tag} has no METHOD attribute`)
  return { tag, attributes }
}

function malformed (tag: HlsTagName, line: string, at: number): Error {
  return new Error(`#${tag} has a malformed attribute list at ${JSON.stringify(line.slice(at, at + 30))}`)
}

/** [A-Z0-9-] */
function isAttributeNameChar (c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d
}

/** Where an unquoted value stops: '"', ',' or white space (as \s has it). */
function endsUnquoted (line: string, i: number): boolean {
  const c = line.charCodeAt(i)
  if (c === 0x22 || c === 0x2c || c === 0x20 || (c >= 0x09 && c <= 0x0d)) return true
  return c > 0x7f && /\s/.test(line[i])
}

/** SAMPLE-AES for cbcs, SAMPLE-AES-CTR for cenc; HLS has no method for cbc1/cens. */
export function hlsMethod (scheme: ProtectionScheme): 'SAMPLE-AES' | 'SAMPLE-AES-CTR' {
  if (scheme === 'cbcs') return 'SAMPLE-AES'
  if (scheme === 'cenc') return 'SAMPLE-AES-CTR'
  throw new Error(`HLS has no encryption METHOD for scheme ${scheme} (cenc or cbcs only)`)
}

/** `0x` + 32 upper-case hex digits of the big-endian KID (RFC 8216 hexadecimal-sequence). */
export function hlsKeyId (kid: string): string {
  return `0x${uuidToBytes(normalizeUuid(kid)).toString('hex').toUpperCase()}`
}

/** `boxBase64`: the box's base64 when the caller has it already. */
export function widevineHlsAttributes (box: Buffer, kid: string, scheme: ProtectionScheme, boxBase64 = box.toString('base64')): HlsAttributes {
  return [
    ['METHOD', hlsMethod(scheme)],
    ['URI', `data:text/plain;base64,${boxBase64}`],
    ['KEYID', hlsKeyId(kid)],
    ['KEYFORMAT', WIDEVINE_KEYFORMAT],
    ['KEYFORMATVERSIONS', '1']
  ]
}

/** The URI carries the PlayReady Object (not the pssh box); `proBase64`: its base64 when the caller has it already. */
export function playReadyHlsAttributes (pro: Buffer, kid: string, scheme: ProtectionScheme, proBase64 = pro.toString('base64')): HlsAttributes {
  return [
    ['METHOD', hlsMethod(scheme)],
    ['URI', `data:text/plain;charset=UTF-16;base64,${proBase64}`],
    ['KEYID', hlsKeyId(kid)],
    ['KEYFORMAT', PLAYREADY_KEYFORMAT],
    ['KEYFORMATVERSIONS', '1']
  ]
}

/** FairPlay is cbcs only, so METHOD is always SAMPLE-AES; the IV belongs in ContentKey@explicitIV. */
export function fairPlayHlsAttributes (skdUri: string): HlsAttributes {
  if (!skdUri.startsWith('skd://')) throw new Error(`a FairPlay key URI starts with skd://, got '${skdUri}'`)
  return [
    ['METHOD', 'SAMPLE-AES'],
    ['URI', skdUri],
    ['KEYFORMAT', FAIRPLAY_KEYFORMAT],
    ['KEYFORMATVERSIONS', '1']
  ]
}

export function aes128HlsAttributes (keyUri: string, iv?: Buffer): HlsAttributes {
  if (iv !== undefined && iv.length !== 16) throw new Error(`an HLS AES-128 IV has 16 bytes, got ${iv.length}`)
  const attrs: HlsAttributes = [['METHOD', 'AES-128'], ['URI', keyUri]]
  if (iv !== undefined) attrs.push(['IV', `0x${iv.toString('hex').toUpperCase()}`])
  attrs.push(['KEYFORMAT', IDENTITY_KEYFORMAT], ['KEYFORMATVERSIONS', '1'])
  return attrs
}

/** PallyCon's FairPlay VOD key URI: `skd://` + base64 of the 16 big-endian KID bytes. */
export function fairPlaySkdUri (kid: string): string {
  return `skd://${uuidToBytes(normalizeUuid(kid)).toString('base64')}`
}

/** MPD ContentProtection child for Widevine and other pssh-signalled systems; `boxBase64` when the caller has it already. */
export function cencPsshFragment (box: Buffer, boxBase64 = box.toString('base64')): string {
  return `<cenc:pssh xmlns:cenc="urn:mpeg:cenc:2013">${boxBase64}</cenc:pssh>`
}

/** MPD ContentProtection children for PlayReady: the pssh box and the PlayReady Object (base64 given when the caller has it). */
export function playReadyFragment (box: Buffer, pro: Buffer, boxBase64 = box.toString('base64'), proBase64 = pro.toString('base64')): string {
  return `${cencPsshFragment(box, boxBase64)}<mspr:pro xmlns:mspr="urn:microsoft:playready">${proBase64}</mspr:pro>`
}

/**
 * The base64 text of the first `pssh` element (any or no namespace prefix) with whitespace removed,
 * undefined when there is none; throws when the element is empty or its text is not base64.
 */
export function extractCencPssh (fragment: string): string | undefined {
  const text = fragment.replace(/<!--[\s\S]*?-->/g, '')
  const m = /<([A-Za-z_][\w.-]*:)?pssh(?:\s[^>]*)?(?:\/>|>([^<]*)<\/\1pssh\s*>)/.exec(text)
  if (m === null) return undefined
  const b64 = (m[2] ?? '').replace(/\s+/g, '')
  if (b64 === '') throw new Error('the pssh element in ContentProtectionData is empty')
  if (decodeBase64(b64) === undefined) throw new Error('the pssh element in ContentProtectionData is not base64')
  return b64
}
