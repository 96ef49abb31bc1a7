// A small namespace-aware XML tree over fast-xml-parser: parse text to elements with resolved namespace URIs, and write them back.

import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { badRequest } from '../errors.js'
import type { ProxyError } from '../errors.js'

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

interface XmlText { kind: 'text', text: string }
interface XmlComment { kind: 'comment', text: string }
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
  ignorePiTags: true,
  // Callbacks get the path matcher itself, not a path string built for every tag and text (none are set here).
  jPath: false
})

const XML_NS = 'http://www.w3.org/XML/1998/namespace'

/** Parse XML text into a tree whose elements carry namespace URIs. Throws 400 with the parser's reason. */
export function parseXml (text: string): XmlElement {
  // Counted before any parsing, so a body's cost is bounded by the caps, not by what the parser makes of it.
  const { skeleton, lifted } = liftText(text)
  checkBeyondValidator(text)
  const check = XMLValidator.validate(skeleton, VALIDATOR_OPTIONS)
  if (check !== true) throw malformed(skeleton === text ? check : XMLValidator.validate(text, VALIDATOR_OPTIONS))
  let raw: RawNode[]
  try {
    raw = parser.parse(skeleton) as RawNode[]
  } catch (err) {
    // fast-xml-parser's own limits (nesting depth, entity expansion) come as plain Errors.
    throw badRequest(`Malformed XML: ${err instanceof Error ? cut(err.message) : 'unreadable'}`, 'MALFORMED_XML')
  }
  const reader: TreeReader = { lifted, next: 0 }
  const top = raw.map(node => toNode(node, ROOT_SCOPE, 0, reader))
  if (reader.next !== lifted.length) throw new Error(`XML reader: ${lifted.length} text runs lifted, ${reader.next} put back`)
  if (top.some(n => n.kind === 'text' && n.text.trim() !== '')) throw badRequest('Malformed XML: text outside the root element', 'MALFORMED_XML')
  const roots = top.filter((n): n is XmlElement => n.kind === 'element')
  if (roots.length !== 1) throw badRequest('Malformed XML: a document needs exactly one root element', 'MALFORMED_XML')
  return roots[0]
}

const VALIDATOR_OPTIONS = { allowBooleanAttributes: false }

type ValidationResult = ReturnType<typeof XMLValidator.validate>

/** The validator's reason, placed in the caller's own text (the validation of the text with its runs lifted has other columns). */
function malformed (check: ValidationResult): ProxyError {
  if (check === true) return badRequest('Malformed XML', 'MALFORMED_XML')
  return badRequest(`Malformed XML at line ${check.err.line}, column ${check.err.col}: ${cut(check.err.msg)}`, 'MALFORMED_XML')
}

/** Characters XML 1.0 never allows, raw (C0 controls but tab, line feed and carriage return; U+FFFE, U+FFFF). */
// eslint-disable-next-line no-control-regex -- the point: find the characters XML forbids
const ILLEGAL_CHAR = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/
/** A markup declaration (`<!DOCTYPE`, `<!ENTITY`, …): anything after `<!` but a comment or a CDATA section. */
const MARKUP_DECLARATION = /<!(?!--|\[CDATA\[)/
/** An XML declaration anywhere but at the very start. */
const LATE_DECLARATION = /(?<!^)<\?xml[\s?]/
/** Any of the three above: one scan of the text finds whether there is anything to refuse (half the time of three scans). */
const BEYOND_VALIDATOR = new RegExp([ILLEGAL_CHAR, MARKUP_DECLARATION, LATE_DECLARATION].map(pattern => pattern.source).join('|'))

/**
 * What fast-xml-parser's validator lets through and XML 1.0 does not, refused before it runs: forbidden characters,
 * markup declarations, a late XML declaration, text after the end. (`]]>` in text, `--` in comments, `<` in attribute values, QNames and
 * text around the root are checked on the tree.) One native scan of the text when there is nothing to refuse; when there is, the
 * three are looked for one after the other, so that a forbidden character anywhere is the reason given before a declaration.
 */
function checkBeyondValidator (text: string): void {
  if (BEYOND_VALIDATOR.test(text)) {
    const bad = ILLEGAL_CHAR.exec(text)
    if (bad !== null) {
      throw badRequest(`Malformed XML: character U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} is not allowed in XML`, 'MALFORMED_XML')
    }
    if (MARKUP_DECLARATION.test(text)) throw badRequest('Malformed XML: markup declarations (DOCTYPE, ENTITY, …) are not allowed', 'MALFORMED_XML')
    if (LATE_DECLARATION.test(text)) throw badRequest('Malformed XML: the XML declaration is only allowed at the very start', 'MALFORMED_XML')
  }
  if (text.slice(text.lastIndexOf('>') + 1).trim() !== '') throw badRequest('Malformed XML: text after the root element', 'MALFORMED_XML')
}

/** CPIX nests about six levels deep; anything far deeper is an attack on the stack, not a document. */
export const MAX_DEPTH = 64
/** The largest real CPIX documents have a few hundred elements; these caps bound the work one body can ask for. */
export const MAX_NODES = 10_000
export const MAX_ATTRIBUTES = 20_000
export const MAX_ATTRIBUTES_PER_ELEMENT = 64

const tooLarge = (what: string): ProxyError => badRequest(`XML document too large: ${what}; a CPIX document has far fewer`, 'XML_TOO_LARGE')

/** Text runs at least this long go around fast-xml-parser, which reads text one character at a time, twice. */
const LIFT_MIN = 32
/** Stands for a lifted run in the skeleton: U+0001 is never in an accepted document (checkBeyondValidator refuses it). */
const LIFTED = '\u0001'

interface LiftedText {
  /** The text with each lifted run replaced by LIFTED; the text itself when nothing was lifted. */
  skeleton: string
  /** The runs, in document order. */
  lifted: string[]
}

/**
 * One linear pass over the markup. It counts start tags (with comments, CDATA sections and processing instructions)
 * and the attributes in them (one `=` outside quotes each), and refuses a document over the caps: exact for
 * well-formed XML, and the validator refuses the rest afterwards. It also lifts out every run of character data
 * inside the root element that is at least LIFT_MIN long and holds no `&`: the validator checks nothing in such a run
 * and the parser only copies it, so both read the skeleton and the tree gets the runs back (toNode).
 */
function liftText (text: string): LiftedText {
  let nodes = 0
  let attributes = 0
  let depth = 0
  const parts: string[] = []
  const lifted: string[] = []
  let copied = 0
  let ampersand = text.indexOf('&')
  let i = text.indexOf('<')
  while (i !== -1 && i < text.length - 1) {
    const next = text.charCodeAt(i + 1)
    if (next === 0x2f /* / */) {
      i = skipPast(text, '>', i + 2)
      depth--
    } else if (++nodes > MAX_NODES) {
      throw tooLarge(`more than ${MAX_NODES} elements, comments, CDATA sections and processing instructions`)
    } else if (next === 0x21 /* ! */) {
      const [close, skip] = text.startsWith('<!--', i) ? ['-->', 4] : text.startsWith('<![CDATA[', i) ? [']]>', 9] : ['>', 2]
      i = skipPast(text, close, i + skip)
    } else if (next === 0x3f /* ? */) {
      i = skipPast(text, '?>', i + 2)
    } else {
      let own = 0
      let j = i + 1
      for (; j < text.length; j++) {
        const c = text.charCodeAt(j)
        if (c === 0x3e /* > */) break
        if (c === 0x22 || c === 0x27 /* quotes */) {
          j = text.indexOf(c === 0x22 ? '"' : "'", j + 1)
          if (j === -1) break
        } else if (c === 0x3d /* = */) {
          own++
        }
      }
      if (own > MAX_ATTRIBUTES_PER_ELEMENT) throw tooLarge(`an element has ${own} attributes, more than ${MAX_ATTRIBUTES_PER_ELEMENT}`)
      attributes += own
      if (attributes > MAX_ATTRIBUTES) throw tooLarge(`more than ${MAX_ATTRIBUTES} attributes`)
      if (j === -1) break
      if (text.charCodeAt(j - 1) !== 0x2f /* / */) depth++
      i = j + 1
    }
    if (i === -1) break
    const end = text.indexOf('<', i)
    if (end === -1) break
    if (ampersand !== -1 && ampersand < i) ampersand = text.indexOf('&', i)
    if (depth > 0 && end - i >= LIFT_MIN && (ampersand === -1 || ampersand > end)) {
      parts.push(text.slice(copied, i), LIFTED)
      lifted.push(text.slice(i, end))
      copied = end
    }
    i = end
  }
  if (lifted.length === 0) return { skeleton: text, lifted }
  parts.push(text.slice(copied))
  return { skeleton: parts.join(''), lifted }
}

/** Index just past the next `close` at or after `from`, or -1 when it never comes. */
function skipPast (text: string, close: string, from: number): number {
  const at = text.indexOf(close, from)
  return at === -1 ? -1 : at + close.length
}

/**
 * The in-scope namespace declarations: an element that declares any gets one link holding only its own
 * declarations, so the cost per element is its own attributes plus a walk up at most MAX_DEPTH links,
 * never a copy of every declaration in scope.
 */
interface Scope { readonly own: ReadonlyMap<string, string>, readonly parent: Scope | undefined }

const ROOT_SCOPE: Scope = { own: new Map([['xml', XML_NS]]), parent: undefined }

function lookup (scope: Scope, prefix: string): string | undefined {
  for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
    const uri = s.own.get(prefix)
    if (uri !== undefined) return uri
  }
  return undefined
}

/** Where the tree is read from: the lifted runs, put back in document order as the walk meets their stand-ins. */
interface TreeReader { readonly lifted: string[], next: number }

function putBack (reader: TreeReader): string {
  const run = reader.lifted[reader.next++]
  if (run === undefined) throw new Error('XML reader: more stand-ins than lifted text runs')
  // The parser normalises line ends in the text it reads (XML 1.0 § 2.11); a lifted run gets the same.
  return run.includes('\r') ? run.replace(/\r\n?/g, '\n') : run
}

function toNode (raw: RawNode, scope: Scope, depth: number, reader: TreeReader): XmlNode {
  if (depth > MAX_DEPTH) throw badRequest(`Malformed XML: elements nest deeper than ${MAX_DEPTH} levels`, 'MALFORMED_XML')
  const attrs = (raw[':@'] ?? {}) as Record<string, string>
  const name = Object.keys(raw).find(k => k !== ':@')
  if (name === undefined) return { kind: 'text', text: '' }
  if (name === '#text') {
    const read = String(raw[name])
    const text = read === LIFTED ? putBack(reader) : read
    if (text.includes(']]>')) throw badRequest('Malformed XML: \']]>\' is not allowed in text', 'MALFORMED_XML')
    return { kind: 'text', text: decodeEntities(text) }
  }
  if (name === '#cdata') return { kind: 'text', text: cdataText(raw[name]) }
  if (name === '#comment') {
    const text = cdataText(raw[name])
    if (text.includes('--') || text.endsWith('-')) throw badRequest('Malformed XML: \'--\' is not allowed inside a comment', 'MALFORMED_XML')
    return { kind: 'comment', text }
  }

  let declared: Map<string, string> | undefined
  const decoded: Record<string, string> = {}
  for (const [key, value] of Object.entries(attrs)) {
    const raw = String(value)
    if (raw.includes('<')) throw badRequest(`Malformed XML: '<' in the value of attribute ${cut(key)} of <${cut(name)}>`, 'MALFORMED_XML')
    checkQName(key, name)
    const v = decodeEntities(raw)
    decoded[key] = v
    if (key === 'xmlns') (declared ??= new Map()).set('', v)
    else if (key.startsWith('xmlns:')) (declared ??= new Map()).set(key.slice(6), v)
  }
  const inner: Scope = declared === undefined ? scope : { own: declared, parent: scope }
  checkQName(name, name)
  const [prefix, local] = splitName(name)
  const ns = lookup(inner, prefix)
  if (ns === undefined && prefix !== '') throw badRequest(`Malformed XML: namespace prefix "${cut(prefix)}" of <${cut(name)}> is not declared`, 'MALFORMED_XML')
  const children = ((raw[name] ?? []) as RawNode[]).map(child => toNode(child, inner, depth + 1, reader))
  return { kind: 'element', name, local, ns: ns ?? '', attrs: decoded, children }
}

/** Names go into messages cut short: a refusal never quotes kilobytes of the caller's input. */
function cut (text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text
}

function cdataText (value: unknown): string {
  const parts = Array.isArray(value) ? value as RawNode[] : []
  return parts.map(p => String(p['#text'] ?? '')).join('')
}

/** A qualified name has at most one ':', neither first nor last (Namespaces in XML 1.0). */
function checkQName (qname: string, element: string): void {
  const colon = qname.indexOf(':')
  if (colon === -1) return
  if (colon === 0 || colon === qname.length - 1 || qname.indexOf(':', colon + 1) !== -1) {
    throw badRequest(`Malformed XML: "${cut(qname)}" in <${cut(element)}> is not a qualified name (one ':' between a prefix and a local name)`, 'MALFORMED_XML')
  }
}

function splitName (name: string): [string, string] {
  const i = name.indexOf(':')
  return i === -1 ? ['', name] : [name.slice(0, i), name.slice(i + 1)]
}

const NAMED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }

function decodeEntities (text: string): string {
  if (!text.includes('&')) return text
  return text.replace(/&(#x[0-9a-fA-F]{1,8}|#[0-9]{1,10}|[a-zA-Z]{1,16});/g, (whole, ref: string) => {
    if (ref.startsWith('#')) {
      const code = ref.startsWith('#x') ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10)
      const legal = code === 0x9 || code === 0xa || code === 0xd ||
        (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff)
      if (!legal) throw badRequest(`Malformed XML: ${whole} is not a legal XML character`, 'MALFORMED_XML')
      return String.fromCodePoint(code)
    }
    if (!Object.hasOwn(NAMED_ENTITIES, ref)) throw badRequest(`Malformed XML: unknown entity ${whole}`, 'MALFORMED_XML')
    return NAMED_ENTITIES[ref]
  })
}

/** Element children, optionally only those of one namespace and local name. */
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
  for (const c of el.children) {
    if (c.kind === 'element' && c.ns === ns && c.local === local) return c
  }
  return undefined
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

/** Most values (base64, ids, URLs) need no escape: a few native scans find out (a character-class regexp costs 30 times more). */
export function escapeText (text: string): string {
  if (!text.includes('&') && !text.includes('<') && !text.includes('>')) return text
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

export function escapeAttr (text: string): string {
  if (!text.includes('&') && !text.includes('<') && !text.includes('>') && !text.includes('"') &&
    !text.includes('\r') && !text.includes('\n') && !text.includes('\t')) return text
  return escapeText(text).replace(/"/g, '&quot;').replace(/\r/g, '&#13;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;')
}

/** Serialise a tree back to XML text, names and attribute order as they are in the tree. */
export function writeXml (root: XmlElement, declaration = true): string {
  const head = declaration ? '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' : ''
  return head + writeElement(root)
}

function writeElement (el: XmlElement): string {
  let out = `<${el.name}`
  const attrs = el.attrs
  for (const k of Object.keys(attrs)) out += ` ${k}="${escapeAttr(attrs[k])}"`
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

/** A deep copy of an element: the copy can be edited without touching the original. `copies` gets each element's copy. */
export function cloneElement (el: XmlElement, copies?: Map<XmlElement, XmlElement>): XmlElement {
  const children: XmlNode[] = el.children.map(c => c.kind === 'element' ? cloneElement(c, copies) : { ...c })
  const copy: XmlElement = { kind: 'element', name: el.name, local: el.local, ns: el.ns, attrs: { ...el.attrs }, children }
  copies?.set(el, copy)
  return copy
}

export function setText (el: XmlElement, text: string): void {
  el.children = [{ kind: 'text', text }]
}

export function removeChild (parent: XmlElement, child: XmlElement): void {
  parent.children = parent.children.filter(c => c !== child)
}
