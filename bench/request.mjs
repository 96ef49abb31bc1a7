// The bench's key request and its KMS reply: a four-key (SD/HD/UHD video + audio), three-DRM SPEKE v2.0 request, and the reply
// PallyCon's KMS gives to it (correct keys and signalling, in PallyCon's shape, so the proxy has to repair it).

import { join } from 'node:path'

const WIDEVINE = 'edef8ba9-79d6-4ace-a3c8-27dcd51d21ed'
const PLAYREADY = '9a04f079-9840-4286-ab92-e65be0885f95'
const FAIRPLAY = '94ce86fb-07ff-4f43-adb8-93d2fa968ca2'
const TRACKS = [
  ['SD', '8a2f5e3c-1b4d-4e6f-9a81-0c2d3e4f5a61', '<cpix:VideoFilter maxPixels="589824"/>'],
  ['HD', '9b3f6e4d-2c5e-4f70-8b92-1d3e4f5a6b72', '<cpix:VideoFilter minPixels="589825" maxPixels="2073600"/>'],
  ['UHD1', 'ac4071f5-3d6f-4081-9ca3-2e4f5a6b7c83', '<cpix:VideoFilter minPixels="2073601"/>'],
  ['AUDIO', 'bd5182a6-4e70-4192-8db4-3f5a6b7c8d94', '<cpix:AudioFilter/>']
]

export const TOKEN = Buffer.from(JSON.stringify({ site_id: 'BNCH', access_key: 'bench-access-key' })).toString('base64')
export const SPEKE_VERSION = '2.0'

/** The SPEKE v2.0 request MediaPackage sends for a four-key, three-DRM cbcs encryption contract. */
export function spekeV2Request () {
  const keys = TRACKS.map(([, kid]) => `    <cpix:ContentKey kid="${kid}" commonEncryptionScheme="cbcs"/>`).join('\n')
  const hls = '<cpix:HLSSignalingData playlist="media"/><cpix:HLSSignalingData playlist="master"/>'
  const systems = TRACKS.flatMap(([, kid]) => [
    `    <cpix:DRMSystem kid="${kid}" systemId="${WIDEVINE}"><cpix:PSSH/><cpix:ContentProtectionData/>${hls}</cpix:DRMSystem>`,
    `    <cpix:DRMSystem kid="${kid}" systemId="${PLAYREADY}"><cpix:PSSH/><cpix:ContentProtectionData/>${hls}</cpix:DRMSystem>`,
    `    <cpix:DRMSystem kid="${kid}" systemId="${FAIRPLAY}">${hls}</cpix:DRMSystem>`
  ]).join('\n')
  const rules = TRACKS.map(([track, kid, filter]) => `    <cpix:ContentKeyUsageRule kid="${kid}" intendedTrackType="${track}">${filter}</cpix:ContentKeyUsageRule>`).join('\n')
  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>
<cpix:CPIX contentId="bench-channel-1" version="2.3" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">
  <cpix:ContentKeyList>
${keys}
  </cpix:ContentKeyList>
  <cpix:DRMSystemList>
${systems}
  </cpix:DRMSystemList>
  <cpix:ContentKeyUsageRuleList>
${rules}
  </cpix:ContentKeyUsageRuleList>
</cpix:CPIX>
`)
}

/** A correct reply from the embedded key server of `root`'s dist/, rewritten into PallyCon's shape. */
export async function pallyconReply (root, body) {
  const { localProvider } = await import(join(root, 'dist', 'kms', 'local', 'provider.js'))
  const provider = localProvider({ secret: Buffer.alloc(32, 3), playReadyLaUrl: 'https://license.pallycon.com/ri/licenseManager.do', hlsKeyUrlBase: 'https://keys.example.com', widevineProvider: 'inkaentworks' })
  const reply = await provider.getKeys({ route: 'speke', dialect: 'speke-v2.0', token: TOKEN, spekeVersion: SPEKE_VERSION, body }, AbortSignal.timeout(5000))
  if (reply.status !== 200) throw new Error(`the embedded provider refused the bench request: ${reply.status} ${reply.body}`)
  return Buffer.from(pallyconShape(reply.body.toString('utf8')))
}

// PallyCon's shape (the same rewrite as test/e2e/reply-verification.test.ts): upper-case system ids, usage rules before
// DRMSystemList, the constant explicitIV, ContentProtectionData holding the bare pssh payload before PSSH,
// speke:ProtectionHeader for PlayReady, URIExtXKey for FairPlay, the media HLSSignalingData without @playlist.

const b64 = text => Buffer.from(text).toString('base64')
const unb64 = text => Buffer.from(text, 'base64').toString('utf8')
const childText = (block, name) => new RegExp(`<${name}(?:\\s[^>]*)?>([^<]*)</${name}>`).exec(block)?.[1]
function drmChildren (block) {
  const inner = block.replace(/^<cpix:DRMSystem\b[^>]*>/, '').replace(/<\/cpix:DRMSystem>$/, '')
  return [...inner.matchAll(/<(\w+:\w+)\b[^>]*?(?:\/>|>[^<]*<\/\1>)/g)].map(m => m[0])
}
function psshData (pssh) {
  const box = Buffer.from(pssh, 'base64')
  const kids = box[8] === 1 ? box.readUInt32BE(28) : 0
  const at = 28 + (box[8] === 1 ? 4 + 16 * kids : 0)
  return box.subarray(at + 4, at + 4 + box.readUInt32BE(at))
}

function pallyconShape (xml) {
  let out = xml.replace(/<cpix:DRMSystem\b[^>]*>[\s\S]*?<\/cpix:DRMSystem>/g, block => {
    const systemId = (/systemId="([^"]*)"/.exec(block)?.[1] ?? '').toLowerCase()
    const pssh = childText(block, 'cpix:PSSH')
    const hls = drmChildren(block).filter(c => c.startsWith('<cpix:HLSSignalingData'))
    const children = []
    if (pssh !== undefined && pssh !== '') {
      const payload = b64(psshData(pssh))
      children.push(`<cpix:ContentProtectionData>${payload}</cpix:ContentProtectionData>`)
      if (systemId === PLAYREADY) children.push(`<speke:ProtectionHeader>${payload}</speke:ProtectionHeader>`)
    }
    children.push(...hls.map(h => h.replace(' playlist="media"', '')))
    const mediaTag = hls.map(h => unb64(/>([^<]*)</.exec(h)?.[1] ?? '')).find(text => text.startsWith('#EXT-X-KEY:'))
    if (systemId === FAIRPLAY && mediaTag !== undefined) children.push(`<cpix:URIExtXKey>${b64(/URI="([^"]+)"/.exec(mediaTag)?.[1] ?? '')}</cpix:URIExtXKey>`)
    if (pssh !== undefined && pssh !== '') children.push(`<cpix:PSSH>${pssh}</cpix:PSSH>`)
    const open = /^<cpix:DRMSystem\b[^>]*>/.exec(block)[0]
    return `${open}\n            ${children.join('\n            ')}\n        </cpix:DRMSystem>`
  })
  out = out.replace(/systemId="([^"]+)"/g, (_m, id) => `systemId="${id.toUpperCase()}"`)
  out = out.replace(/explicitIV="[^"]*"/g, 'explicitIV="MDEyMzQ1Njc4OWFiY2RlZg=="')
  const rules = /<cpix:ContentKeyUsageRuleList>[\s\S]*?<\/cpix:ContentKeyUsageRuleList>/.exec(out)?.[0]
  if (rules !== undefined) out = out.replace(rules, '').replace('<cpix:DRMSystemList>', `${rules}\n    <cpix:DRMSystemList>`)
  return out.includes('xmlns:speke=') ? out : out.replace('<cpix:CPIX ', '<cpix:CPIX xmlns:speke="urn:aws:amazon:com:speke" ')
}
