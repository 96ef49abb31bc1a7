// The CPIX request an ATEME NEA-DVR (Anevia) GET stands for: DASH asks Widevine + PlayReady (cenc), HLS asks FairPlay (cbcs).

import { FAIRPLAY, PLAYREADY, WIDEVINE } from './systems.js'
import { escapeAttr } from './xml.js'

const ANEVIA_PLACEHOLDER_KID = '00000000-0000-0000-0000-000000000000'

export function aneviaRequestXml (format: 'dash' | 'hls', contentId: string): string {
  const kid = ANEVIA_PLACEHOLDER_KID
  const systems = format === 'dash' ? [PLAYREADY.toUpperCase(), WIDEVINE.toUpperCase()] : [FAIRPLAY.toUpperCase()]
  const scheme = format === 'dash' ? 'cenc' : 'cbcs'
  return `<cpix:CPIX id="${escapeAttr(contentId)}" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:speke="urn:aws:amazon:com:speke">` +
    `<cpix:ContentKeyList><cpix:ContentKey kid="${kid}" commonEncryptionScheme="${scheme}"/></cpix:ContentKeyList>` +
    `<cpix:DRMSystemList>${systems.map(id => `<cpix:DRMSystem kid="${kid}" systemId="${id}"/>`).join('')}</cpix:DRMSystemList>` +
    `<cpix:ContentKeyUsageRuleList><cpix:ContentKeyUsageRule kid="${kid}" intendedTrackType="ALL"/></cpix:ContentKeyUsageRuleList></cpix:CPIX>`
}
