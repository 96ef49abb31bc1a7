// The XML reader (fast-xml-parser, and the checks it leaves to us): what XML 1.0 calls well-formed is read into the
// namespace-resolved tree; everything else is a clear 400.

import t from 'tap'
import { parseXml, writeXml } from '../../src/cpix/xml.js'

const refused = (xml: string): { status?: number, code?: string, message?: string } | 'accepted' => {
  try {
    parseXml(xml)
    return 'accepted'
  } catch (err) {
    return err as { status: number, code: string, message: string }
  }
}

t.test('well-formed documents are read: declaration, comments, CDATA, processing instructions, references, white space in tags', async t => {
  const root = parseXml('<?xml version="1.0" encoding="UTF-8"?>\n<!-- head --><?pi data?>\n<c:a xmlns:c="urn:c" x = "1" y=\'&lt;&#65;&#x42;&amp;\'>t&amp;<c:b\n/><!-- c --><![CDATA[<x>&amp;]]><?pi?></c:a  >\n<!-- tail -->\n')
  t.equal(root.name, 'c:a')
  t.equal(root.local, 'a')
  t.equal(root.ns, 'urn:c')
  t.same(root.attrs, { 'xmlns:c': 'urn:c', x: '1', y: '<AB&' })
  t.same(root.children.map(c => c.kind === 'element' ? `<${c.name}>` : `${c.kind}:${c.text}`), ['text:t&', '<c:b>', 'comment: c ', 'text:<x>&amp;'])
  t.equal(root.children[1].kind === 'element' ? root.children[1].ns : '', 'urn:c', 'children resolve prefixes declared above them')
  t.equal(writeXml(root, false), '<c:a xmlns:c="urn:c" x="1" y="&lt;AB&amp;">t&amp;<c:b/><!-- c -->&lt;x&gt;&amp;amp;</c:a>')
  t.match(refused('<a __proto__="x" kid="k"/>'), { status: 400, code: 'MALFORMED_XML' }, 'an attribute named __proto__ is refused, never merged into an object')
  t.equal(parseXml('<é:ü xmlns:é="urn:e"/>').ns, 'urn:e', 'names beyond ASCII')
})

t.test('what is not well-formed is refused with MALFORMED_XML, saying what and where', async t => {
  // fast-xml-parser's validator words its own reasons; the ones after `// ours` are the checks src/cpix/xml.ts adds.
  const cases: Array<[string, RegExp]> = [
    ['<a>', /Unclosed tag 'a'/],
    ['<a></b>', /Expected closing tag 'a'/],
    ['<a x=1/>', /Attribute 'x' is without value/],
    ['<a x="1"y="2"/>', /Attribute 'y' has no space/],
    ['<a x="1" x="2"/>', /Attribute 'x' is repeated/],
    ['<a x/>', /boolean attribute 'x' is not allowed/],
    ['<a>a & b</a>', /char '&' is not expected/],
    ['<a><![CDATA[x</a>', /Unclosed tag 'a'/],
    ['', /Start tag expected/],
    ['text<a/>', /char 't' is not expected/],
    ['<1a/>', /'1a' is an invalid name/],
    ['<a></a></a>', /Closing tag 'a' has not been opened/],
    ['</a>', /Closing tag 'a' has not been opened/],
    // ours
    ['<a x="<"/>', /'<' in the value of attribute x of <a>/],
    ['<a>&foo;</a>', /unknown entity &foo;/],
    ['<a>&#0;</a>', /&#0; is not a legal XML character/],
    ['<a>\u0001</a>', /character U\+0001 is not allowed/],
    ['<a>]]></a>', /']]>' is not allowed in text/],
    ['<a><!-- -- --></a>', /'--' is not allowed inside a comment/],
    ['<a><!-- x ---></a>', /'--' is not allowed inside a comment/],
    ['<a/><b/>', /exactly one root element/],
    ['<a/>text', /text after the root element/],
    ['<a/><!-- c -->text', /text after the root element/],
    ['<a><?xml version="1.0"?></a>', /XML declaration is only allowed at the very start/],
    ['<!DOCTYPE a><a/>', /markup declarations \(DOCTYPE, ENTITY, …\) are not allowed/],
    ['<a><!ENTITY x "y"></a>', /markup declarations/],
    ['<a:b:c xmlns:a="u"/>', /"a:b:c" in <a:b:c> is not a qualified name/],
    ['<a: xmlns:a="u"/>', /is not a qualified name/],
    ['<a x:y:z="1"/>', /"x:y:z" in <a> is not a qualified name/],
    ['<p:a/>', /namespace prefix "p" of <p:a> is not declared/]
  ]
  for (const [xml, message] of cases) {
    t.match(refused(xml), { status: 400, code: 'MALFORMED_XML', message }, JSON.stringify(xml))
  }
  t.match(refused('<r>\n  <a>\n</r>'), { message: /^Malformed XML at line 3, column 1: Expected closing tag 'a'/ }, 'line and column of the fault')
})

t.test('a document with several of the faults the validator lets through is refused for the first kind in a fixed order', async t => {
  // Forbidden character, then markup declaration, then late XML declaration: wherever each is in the document.
  t.match(refused('<a><?xml version="1.0"?><!DOCTYPE a>\u000b</a>'), { message: /character U\+000B is not allowed/ })
  t.match(refused('<a><?xml version="1.0"?>\uffff<!ENTITY x "y"></a>'), { message: /character U\+FFFF is not allowed/ })
  t.match(refused('<a><?xml version="1.0"?><!ELEMENT a ANY></a>'), { message: /markup declarations/ })
  t.match(refused('<a><!-- c --><![CDATA[<!x]]><?xml?></a>'), { message: /markup declarations/ }, "'<!' inside CDATA counts too")
  t.match(refused('<?xml version="1.0"?><a><!-- c --><![CDATA[x]]><?xml?></a>'), { message: /XML declaration is only allowed at the very start/ })
  t.equal(parseXml('<?xml version="1.0"?><a>\t\r\n\ufffd<!-- c --><![CDATA[x]]><?xml-stylesheet href="s"?></a>').name, 'a',
    'comments, CDATA, a PI whose target merely starts with xml and the characters next to the forbidden ones are no fault')
})

t.test('nesting deeper than MAX_DEPTH is refused', async t => {
  const deep = (n: number): string => '<a>'.repeat(n) + '</a>'.repeat(n)
  t.equal(refused(deep(65)), 'accepted', '65 levels (the root and 64 below it) are read')
  t.match(refused(deep(66)), { code: 'MALFORMED_XML', message: /deeper than 64 levels/ })
  t.match(refused(deep(5000)), { code: 'MALFORMED_XML', message: /Maximum nested tags exceeded/ }, 'far deeper: fast-xml-parser stops first')
})

t.test('long runs of text (base64 boxes, playlists) read the same as short ones, though they go around the parser', async t => {
  const long = 'QUJD'.repeat(40)
  const texts = (xml: string): string[] => {
    const out: string[] = []
    const walk = (el: ReturnType<typeof parseXml>): void => {
      for (const c of el.children) {
        if (c.kind === 'element') walk(c)
        else out.push(`${c.kind}:${c.text}`)
      }
    }
    walk(parseXml(xml))
    return out
  }
  t.same(texts(`<a><b>${long}</b><c>x${long}</c>${long}</a>`), [`text:${long}`, `text:x${long}`, `text:${long}`], 'in order, in leaves and between elements')
  t.same(texts(`<a><b>${long}\r\n${long}\r${long}</b></a>`), [`text:${long}\n${long}\n${long}`], 'line ends normalised as in short text (XML 1.0 § 2.11)')
  t.same(texts(`<a><b>${long}&amp;${long}</b><!-- c --><![CDATA[${long}&]]>${long}</a>`), [`text:${long}&${long}`, 'comment: c ', `text:${long}&`, `text:${long}`], 'references, comments and CDATA beside long runs')
  t.same(texts(`<a>\n${' '.repeat(40)}<b/>\n${' '.repeat(40)}</a>`), [`text:\n${' '.repeat(40)}`, `text:\n${' '.repeat(40)}`], 'long white space inside the root is text too')
  t.equal(parseXml(`<?xml version="1.0"?>\n${' '.repeat(100)}<a/>\n${' '.repeat(100)}`).name, 'a', 'long white space around the root is allowed')

  // Any mix of short and long runs, CR, references and markup gives the text the document holds.
  const pieces = ['AAAA', long, '\r\n', '\r', '&lt;', '&#65;', ' ', '>']
  const meant: Record<string, string> = { '\r\n': '\n', '\r': '\n', '&lt;': '<', '&#65;': 'A' }
  let seed = 7
  const random = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  for (let round = 0; round < 300; round++) {
    const runs = Array.from({ length: 1 + random(4) }, () => Array.from({ length: 1 + random(5) }, () => pieces[random(pieces.length)]))
    const xml = `<r>${runs.map((run, i) => `<e${i}>${run.join('')}</e${i}>`).join('')}</r>`
    const expected = runs.map(run => `text:${run.map(p => meant[p] ?? p).join('')}`)
    t.same(texts(xml), expected, `round ${round}`)
  }
})

t.test('a long run of text changes no refusal, nor where a fault is said to be', async t => {
  const long = 'QUJD'.repeat(40)
  t.match(refused(`<r>\n<a>${long}\n${long}</a>\n  <b>\n</r>`), { message: /^Malformed XML at line 5, column 1: Expected closing tag 'b'/ }, 'line and column in the caller\'s text')
  t.match(refused(`<r>${long}]]>${long}</r>`), { code: 'MALFORMED_XML', message: /']]>' is not allowed in text/ })
  t.match(refused(`<r>${long}\u0001${long}</r>`), { code: 'MALFORMED_XML', message: /character U\+0001 is not allowed/ }, 'the stand-in character itself is refused in a document')
  t.match(refused(`${long}<r/>`), { code: 'MALFORMED_XML', message: /char 'Q' is not expected/ }, 'text before the root')
  t.match(refused(`<r/>${long}`), { code: 'MALFORMED_XML', message: /text after the root element/ })
  t.match(refused(`<r>${long} & ${long}</r>`), { code: 'MALFORMED_XML', message: /char '&' is not expected/ }, 'a bare & in a long run')
  t.match(refused(`<r><a>${long}</b></r>`), { code: 'MALFORMED_XML', message: /Expected closing tag 'a'/ })
  t.match(refused(`<r x="1>${long}</r>`), { code: 'MALFORMED_XML' }, 'an unclosed quote')
})
