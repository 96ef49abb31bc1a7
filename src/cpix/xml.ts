// A small namespace-aware XML tree over fast-xml-parser: parse text to elements with resolved namespace URIs, and write them back.

import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { badRequest } from '../errors.js'

export interface XmlElement {
  kind: 'element'
  /** The qualified name as written, e.g. `cpix:ContentKey`. */
  name: string
  local: string
  /** The namespace URI the prefix resolved to ('' for none). */
  ns: string
  /** Attributes by qualified name as written, values entity-decoded. */
  attrs: Record<string, string>
  children: XmlNode[]
}

export interface XmlText { kind: 'text', text: string }
export interface XmlComment { kind: 'comment', text: string }
export type XmlNode = XmlElement | XmlText | XmlComment

type RawNode = Record<string, unknown>

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  allowBooleanAttributes: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: false,
  htmlEntities: false,
  commentPropName: '#comment',
  cdataPropName: '#cdata',
  ignoreDeclaration: true,
  ignorePiTags: true
})

const XML_NS = 'http://www.w3.org/XML/1998/namespace'

/** Parse XML text into a tree whose elements carry namespace URIs. Throws 400 with the parser's reason. */
export function parseXml (text: string): XmlElement {
  const check = XMLValidator.validate(text, { allowBooleanAttributes: false })
  if (check !== true) {
    throw badRequest(`Malformed XML at line ${check.err.line}, column ${check.err.col}: ${check.err.msg}`, 'MALFORMED_XML')
  }
  let raw: RawNode[]
  try {
    raw = parser.parse(text) as RawNode[]
  } catch (err) {
    // fast-xml-parser's own limits (nesting depth, entity expansion) come as plain Errors.
    throw badRequest(`Malformed XML: ${err instanceof Error ? err.message : 'unreadable'}`, 'MALFORMED_XML')
  }
  const roots = raw.map(node => toNode(node, new Map([['xml', XML_NS]]), 0)).filter((n): n is XmlElement => n.kind === 'element')
  if (roots.length !== 1) throw badRequest('Malformed XML: a document needs exactly one root element', 'MALFORMED_XML')
  return roots[0]
}

/** CPIX nests about six levels deep; anything far deeper is an attack on the stack, not a document. */
export const MAX_DEPTH = 64

function toNode (raw: RawNode, scope: Map<string, string>, depth: number): XmlNode {
  if (depth > MAX_DEPTH) throw badRequest(`Malformed XML: elements nest deeper than ${MAX_DEPTH} levels`, 'MALFORMED_XML')
  const attrs = (raw[':@'] ?? {}) as Record<string, string>
  const name = Object.keys(raw).find(k => k !== ':@')
  if (name === undefined) return { kind: 'text', text: '' }
  if (name === '#text') return { kind: 'text', text: decodeEntities(String(raw[name])) }
  if (name === '#cdata') return { kind: 'text', text: cdataText(raw[name]) }
  if (name === '#comment') return { kind: 'comment', text: cdataText(raw[name]) }

  const inner = new Map(scope)
  const decoded: Record<string, string> = {}
  for (const [key, value] of Object.entries(attrs)) {
    const v = decodeEntities(String(value))
    decoded[key] = v
    if (key === 'xmlns') inner.set('', v)
    else if (key.startsWith('xmlns:')) inner.set(key.slice(6), v)
  }
  const [prefix, local] = splitName(name)
  const ns = inner.get(prefix)
  if (ns === undefined && prefix !== '') throw badRequest(`Malformed XML: namespace prefix "${prefix}" of <${name}> is not declared`, 'MALFORMED_XML')
  const children = ((raw[name] ?? []) as RawNode[]).map(child => toNode(child, inner, depth + 1))
  return { kind: 'element', name, local, ns: ns ?? '', attrs: decoded, children }
}

function cdataText (value: unknown): string {
  const parts = Array.isArray(value) ? value as RawNode[] : []
  return parts.map(p => String(p['#text'] ?? '')).join('')
}

function splitName (name: string): [string, string] {
  const i = name.indexOf(':')
  return i === -1 ? ['', name] : [name.slice(0, i), name.slice(i + 1)]
}

const NAMED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }

export function decodeEntities (text: string): string {
  if (!text.includes('&')) return text
  return text.replace(/&(#x[0-9a-fA-F]{1,8}|#[0-9]{1,10}|[a-zA-Z]{1,16});/g, (whole, ref: string) => {
    if (ref.startsWith('#')) {
      const code = ref.startsWith('#x') ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10)
      const legal = code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff)
      if (!legal) throw badRequest(`Malformed XML: ${whole} is not a legal XML character`, 'MALFORMED_XML')
      return String.fromCodePoint(code)
    }
    if (!Object.hasOwn(NAMED_ENTITIES, ref)) throw badRequest(`Malformed XML: unknown entity ${whole}`, 'MALFORMED_XML')
    return NAMED_ENTITIES[ref]
  })
}

/** Attribute value of an element by local name, ignoring any prefix on unqualified attributes. */
export function attr (el: XmlElement, name: string): string | undefined {
  return el.attrs[name]
}

export function childElements (el: XmlElement, ns?: string, local?: string): XmlElement[] {
  const out: XmlElement[] = []
  for (const c of el.children) {
    if (c.kind !== 'element') continue
    if (ns !== undefined && c.ns !== ns) continue
    if (local !== undefined && c.local !== local) continue
    out.push(c)
  }
  return out
}

export function firstChild (el: XmlElement, ns: string, local: string): XmlElement | undefined {
  return childElements(el, ns, local)[0]
}

/** Concatenated text content of an element (its own text nodes and its descendants'). */
export function textContent (el: XmlElement): string {
  let out = ''
  for (const c of el.children) {
    if (c.kind === 'text') out += c.text
    else if (c.kind === 'element') out += textContent(c)
  }
  return out
}

export function escapeText (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

export function escapeAttr (text: string): string {
  return escapeText(text).replace(/"/g, '&quot;').replace(/\r/g, '&#13;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;')
}

/** Serialise a tree back to XML text, names and attribute order as they are in the tree. */
export function writeXml (root: XmlElement, declaration = true): string {
  const head = declaration ? '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' : ''
  return head + writeElement(root)
}

function writeElement (el: XmlElement): string {
  let out = `<${el.name}`
  for (const [k, v] of Object.entries(el.attrs)) out += ` ${k}="${escapeAttr(v)}"`
  if (el.children.length === 0) return out + '/>'
  out += '>'
  for (const c of el.children) {
    if (c.kind === 'element') out += writeElement(c)
    else if (c.kind === 'text') out += escapeText(c.text)
    else out += `<!--${c.text}-->`
  }
  return out + `</${el.name}>`
}

/** The prefix (possibly '') an element's name uses. */
export function prefixOf (el: XmlElement): string {
  const i = el.name.indexOf(':')
  return i === -1 ? '' : el.name.slice(0, i)
}

export function qualified (prefix: string, local: string): string {
  return prefix === '' ? local : `${prefix}:${local}`
}

export function makeElement (name: string, ns: string, attrs: Record<string, string> = {}, children: XmlNode[] = []): XmlElement {
  const i = name.indexOf(':')
  return { kind: 'element', name, local: i === -1 ? name : name.slice(i + 1), ns, attrs, children }
}

export function setText (el: XmlElement, text: string): void {
  el.children = [{ kind: 'text', text }]
}

export function removeChild (parent: XmlElement, child: XmlElement): void {
  parent.children = parent.children.filter(c => c !== child)
}
