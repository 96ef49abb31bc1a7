// Reads a plain WRMHEADER (tags, double-quoted attributes and bare text only) into the tree fast-xml-parser would build, without it.

/**
 * The tree fast-xml-parser builds for the header (attributes as `@_name`, text-only elements as strings, KID always a list),
 * or undefined when the text is anything but the plain form KMSs and packagers write: white space but one space before
 * each attribute, text or values that are empty or hold anything but printable ASCII without `<>&"` (so no entity, comment,
 * CDATA or declaration), mixed content, repeated attributes or elements (but KID), nesting deeper than MAX_DEPTH.
 * Undefined means "ask the parser", never "invalid": the plain form is well-formed by construction, and fast-xml-parser
 * gives it exactly this tree (test/cpix/wrm-header-tree.test.ts holds the two side by side).
 */
export function plainWrmHeaderTree (xml: string): Record<string, unknown> | undefined {
  if (!xml.startsWith('<WRMHEADER')) return undefined
  const read = readElement(xml, 0, 0)
  if (read === undefined || read.end !== xml.length || read.name !== 'WRMHEADER') return undefined
  return { WRMHEADER: read.value }
}

const MAX_DEPTH = 8
const LT = 0x3c
const GT = 0x3e
const SLASH = 0x2f
const SPACE = 0x20
const EQUALS = 0x3d
const QUOTE = 0x22

interface ReadElement { name: string, value: unknown, end: number }

/** `<NAME( name="value")*` then `/>`, ` />`, `></NAME>`, `>text</NAME>` or `>` elements `</NAME>`. */
function readElement (xml: string, at: number, depth: number): ReadElement | undefined {
  if (depth >= MAX_DEPTH || xml.charCodeAt(at) !== LT || !isUpper(xml.charCodeAt(at + 1))) return undefined
  let next = at + 2
  while (isElementNameChar(xml.charCodeAt(next))) next++
  const name = xml.slice(at + 1, next)
  const attributes: Array<[string, string]> = []
  while (xml.charCodeAt(next) === SPACE && isLetter(xml.charCodeAt(next + 1))) {
    const nameStart = next + 1
    let nameEnd = nameStart + 1
    while (isAttributeNameChar(xml.charCodeAt(nameEnd))) nameEnd++
    if (xml.charCodeAt(nameEnd) !== EQUALS || xml.charCodeAt(nameEnd + 1) !== QUOTE) return undefined
    const valueEnd = plainEnd(xml, nameEnd + 2)
    if (valueEnd === nameEnd + 2 || xml.charCodeAt(valueEnd) !== QUOTE) return undefined
    const key = `@_${xml.slice(nameStart, nameEnd)}`
    if (attributes.some(([k]) => k === key)) return undefined
    attributes.push([key, xml.slice(nameEnd + 2, valueEnd)])
    next = valueEnd + 1
  }
  if (attributes.length > 0 && xml.charCodeAt(next) === SPACE) next++
  if (xml.charCodeAt(next) === SLASH && xml.charCodeAt(next + 1) === GT) return { name, value: leaf(attributes), end: next + 2 }
  if (xml.charCodeAt(next) !== GT) return undefined
  next++

  const close = `</${name}>`
  if (xml.startsWith(close, next)) return { name, value: leaf(attributes), end: next + close.length }
  if (xml.charCodeAt(next) !== LT) {
    // Text only: fast-xml-parser gives a string, or `#text` beside attributes (left to it).
    const textEnd = plainEnd(xml, next)
    if (attributes.length > 0 || !xml.startsWith(close, textEnd)) return undefined
    return { name, value: xml.slice(next, textEnd), end: textEnd + close.length }
  }
  // Elements only: fast-xml-parser lists the children by name (KID always as a list), then the attributes.
  const value: Record<string, unknown> = {}
  while (!xml.startsWith(close, next)) {
    const child = readElement(xml, next, depth + 1)
    if (child === undefined) return undefined
    if (child.name === 'KID') {
      const kids = value.KID
      if (Array.isArray(kids)) kids.push(child.value)
      else value.KID = [child.value]
    } else {
      if (Object.prototype.hasOwnProperty.call(value, child.name)) return undefined
      value[child.name] = child.value
    }
    next = child.end
  }
  for (const [key, text] of attributes) value[key] = text
  return { name, value, end: next + close.length }
}

/** An element without content: its attributes, or '' without any. */
function leaf (attributes: Array<[string, string]>): unknown {
  if (attributes.length === 0) return ''
  const value: Record<string, string> = {}
  for (const [key, text] of attributes) value[key] = text
  return value
}

/** Where a run of printable ASCII but `<`, `>`, `&` and `"` ends: nothing XML treats specially, nothing to trim. */
function plainEnd (xml: string, at: number): number {
  let end = at
  for (;;) {
    const c = xml.charCodeAt(end) // NaN past the end
    if (!(c >= 0x21 && c <= 0x7e) || c === LT || c === GT || c === 0x26 /* & */ || c === QUOTE) return end
    end++
  }
}

function isUpper (c: number): boolean {
  return c >= 0x41 && c <= 0x5a
}

function isLetter (c: number): boolean {
  return isUpper(c) || (c >= 0x61 && c <= 0x7a)
}

function isDigitOrUnderscore (c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x5f
}

function isElementNameChar (c: number): boolean {
  return isUpper(c) || isDigitOrUnderscore(c)
}

function isAttributeNameChar (c: number): boolean {
  return isLetter(c) || isDigitOrUnderscore(c)
}
