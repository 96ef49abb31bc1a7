// Puts children into CPIX schema order in place, keeping whitespace and comments where they were.

import { CPIX_NS } from './model.js'
import type { XmlElement, XmlNode } from './xml.js'

/** CPIX schema order of the top-level lists and of a DRMSystem's children. */
export const CPIX_LIST_ORDER: readonly string[] = ['DeliveryDataList', 'ContentKeyList', 'DRMSystemList', 'ContentKeyPeriodList', 'ContentKeyUsageRuleList', 'UpdateHistoryItemList', 'Signature']
export const DRM_SYSTEM_ORDER: readonly string[] = ['PSSH', 'ContentProtectionData', 'URIExtXKey', 'HLSSignalingData', 'SmoothStreamingProtectionHeaderData', 'HDSSignalingData']

/** Sort element children by `order` (CPIX namespace); elements of other namespaces go last. Returns whether anything moved. */
export function sortChildren (el: XmlElement, order: readonly string[]): boolean {
  const rank = (node: XmlElement): number => {
    if (node.ns !== CPIX_NS) return node.local === 'Signature' ? order.indexOf('Signature') : order.length
    const at = order.indexOf(node.local)
    return at === -1 ? order.length : at
  }
  const elements = el.children.filter((c): c is XmlElement => c.kind === 'element')
  if (inOrder(elements, rank)) return false
  const sorted = elements.map((e, i) => ({ e, i })).sort((a, b) => rank(a.e) - rank(b.e) || a.i - b.i).map(x => x.e)
  if (sorted.every((e, i) => e === elements[i])) return false
  let next = 0
  el.children = el.children.map((c): XmlNode => c.kind === 'element' ? sorted[next++] : c)
  return true
}

/** Whether the ranks never go down: then a stable sort moves nothing. */
function inOrder (elements: XmlElement[], rank: (node: XmlElement) => number): boolean {
  let last = -1
  for (const e of elements) {
    const r = rank(e)
    if (r < last) return false
    last = r
  }
  return true
}
