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

t.test('nesting deeper than MAX_DEPTH is refused', async t => {
  const deep = (n: number): string => '<a>'.repeat(n) + '</a>'.repeat(n)
  t.equal(refused(deep(65)), 'accepted', '65 levels (the root and 64 below it) are read')
  t.match(refused(deep(66)), { code: 'MALFORMED_XML', message: /deeper than 64 levels/ })
  t.match(refused(deep(5000)), { code: 'MALFORMED_XML', message: /Maximum nested tags exceeded/ }, 'far deeper: fast-xml-parser stops first')
})
