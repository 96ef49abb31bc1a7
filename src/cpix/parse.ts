// Reads a CPIX document (text) into the typed model, matching elements by namespace URI, never by prefix.

import { badRequest } from '../errors.js'
import { CPIX_NS, PSKC_NS, SPEKE_NS } from './model.js'
import type { ContentKey, CpixDocument, DrmSystem, KeyPeriod, UsageFilter, UsageRule } from './model.js'
import { childElements, cloneElement, firstChild, parseXml, textContent } from './xml.js'
import type { XmlElement } from './xml.js'

export function parseCpix (text: string): CpixDocument {
  return readCpix(parseXml(text))
}

export function readCpix (root: XmlElement): CpixDocument {
  if (root.ns !== CPIX_NS || root.local !== 'CPIX') {
    const where = root.ns === '' ? 'no namespace' : `namespace ${root.ns}`
    throw badRequest(`Not a CPIX document: the root element is <${root.name}> in ${where}; expected <CPIX> in ${CPIX_NS}`, 'NOT_CPIX')
  }
  const list = (name: string): XmlElement | undefined => firstChild(root, CPIX_NS, name)
  const contentKeyList = list('ContentKeyList')
  const drmSystemList = list('DRMSystemList')
  const periodList = list('ContentKeyPeriodList')
  const usageRuleList = list('ContentKeyUsageRuleList')
  return {
    root,
    id: root.attrs.id,
    contentId: root.attrs.contentId,
    version: root.attrs.version,
    lists: {
      delivery: list('DeliveryDataList') !== undefined,
      contentKeys: contentKeyList !== undefined,
      drmSystems: drmSystemList !== undefined,
      periods: periodList !== undefined,
      usageRules: usageRuleList !== undefined
    },
    contentKeys: items(contentKeyList, 'ContentKey').map(readContentKey),
    drmSystems: items(drmSystemList, 'DRMSystem').map(readDrmSystem),
    periods: items(periodList, 'ContentKeyPeriod').map(readPeriod),
    usageRules: items(usageRuleList, 'ContentKeyUsageRule').map(readUsageRule)
  }
}

/**
 * A copy of a document read by readCpix, tree and model: what readCpix gives for a copy of its tree, without reading it
 * again. Every element of the copy's model is in the copy's tree, none in the original's.
 */
export function cloneCpix (doc: CpixDocument): CpixDocument {
  const copies = new Map<XmlElement, XmlElement>()
  const root = cloneElement(doc.root, copies)
  const copyOf = (el: XmlElement): XmlElement => {
    const copy = copies.get(el)
    if (copy === undefined) throw new Error(`cloneCpix: <${el.name}> of the model is not in the document's tree`)
    return copy
  }
  return {
    root,
    id: doc.id,
    contentId: doc.contentId,
    version: doc.version,
    lists: { ...doc.lists },
    contentKeys: doc.contentKeys.map(k => ({
      element: copyOf(k.element),
      kid: k.kid,
      explicitIV: k.explicitIV,
      commonEncryptionScheme: k.commonEncryptionScheme,
      dependsOnKey: k.dependsOnKey,
      plainValue: k.plainValue,
      encrypted: k.encrypted
    })),
    drmSystems: doc.drmSystems.map(s => ({
      element: copyOf(s.element),
      systemId: s.systemId,
      kid: s.kid,
      pssh: s.pssh,
      contentProtectionData: s.contentProtectionData,
      uriExtXKey: s.uriExtXKey,
      smoothStreaming: s.smoothStreaming,
      hlsSignaling: s.hlsSignaling.map(h => ({ element: copyOf(h.element), playlist: h.playlist, value: h.value })),
      speke: { ...s.speke }
    })),
    periods: doc.periods.map(p => ({ element: copyOf(p.element), id: p.id, index: p.index, start: p.start, end: p.end })),
    usageRules: doc.usageRules.map(r => {
      const element = copyOf(r.element)
      // Filters keep their element's attrs: read again from the copy.
      return { element, kid: r.kid, intendedTrackType: r.intendedTrackType, filters: childElements(element).map(readFilter) }
    })
  }
}

function items (list: XmlElement | undefined, name: string): XmlElement[] {
  return list === undefined ? [] : childElements(list, CPIX_NS, name)
}

function kidOf (el: XmlElement): string {
  return (el.attrs.kid ?? '').trim().toLowerCase()
}

function readContentKey (el: XmlElement): ContentKey {
  const secret = firstChild(el, CPIX_NS, 'Data') ?? undefined
  const pskcSecret = secret === undefined ? undefined : firstChild(secret, PSKC_NS, 'Secret')
  const plain = pskcSecret === undefined ? undefined : firstChild(pskcSecret, PSKC_NS, 'PlainValue')
  const encrypted = pskcSecret === undefined ? undefined : firstChild(pskcSecret, PSKC_NS, 'EncryptedValue')
  return {
    element: el,
    kid: kidOf(el),
    explicitIV: el.attrs.explicitIV,
    commonEncryptionScheme: el.attrs.commonEncryptionScheme,
    dependsOnKey: el.attrs.dependsOnKey,
    plainValue: plain === undefined ? undefined : textContent(plain).trim(),
    encrypted: encrypted !== undefined
  }
}

/** One pass over the children: the first of each single item, every HLSSignalingData, and the SPEKE v1 items. */
function readDrmSystem (el: XmlElement): DrmSystem {
  const system: DrmSystem = {
    element: el,
    systemId: (el.attrs.systemId ?? '').trim(),
    kid: kidOf(el),
    pssh: undefined,
    contentProtectionData: undefined,
    uriExtXKey: undefined,
    smoothStreaming: undefined,
    hlsSignaling: [],
    speke: {}
  }
  for (const child of el.children) {
    if (child.kind !== 'element') continue
    if (child.ns === SPEKE_NS) {
      system.speke[child.local] = textContent(child).trim()
      continue
    }
    if (child.ns !== CPIX_NS) continue
    switch (child.local) {
      case 'PSSH': system.pssh ??= textContent(child).trim(); break
      case 'ContentProtectionData': system.contentProtectionData ??= textContent(child).trim(); break
      case 'URIExtXKey': system.uriExtXKey ??= textContent(child).trim(); break
      case 'SmoothStreamingProtectionHeaderData': system.smoothStreaming ??= textContent(child).trim(); break
      case 'HLSSignalingData': system.hlsSignaling.push({ element: child, playlist: child.attrs.playlist, value: textContent(child).trim() }); break
    }
  }
  return system
}

function readPeriod (el: XmlElement): KeyPeriod {
  return { element: el, id: el.attrs.id, index: el.attrs.index, start: el.attrs.start, end: el.attrs.end }
}

function readUsageRule (el: XmlElement): UsageRule {
  return {
    element: el,
    kid: kidOf(el),
    intendedTrackType: el.attrs.intendedTrackType,
    filters: childElements(el).map(readFilter)
  }
}

function readFilter (el: XmlElement): UsageFilter {
  if (el.ns !== CPIX_NS) return { type: 'other', name: el.name }
  switch (el.local) {
    case 'KeyPeriodFilter': return { type: 'KeyPeriodFilter', periodId: el.attrs.periodId }
    case 'VideoFilter': return { type: 'VideoFilter', attrs: el.attrs }
    case 'AudioFilter': return { type: 'AudioFilter', attrs: el.attrs }
    case 'LabelFilter': return { type: 'LabelFilter', label: el.attrs.label }
    case 'BitrateFilter': return { type: 'BitrateFilter', attrs: el.attrs }
    default: return { type: 'other', name: el.name }
  }
}
