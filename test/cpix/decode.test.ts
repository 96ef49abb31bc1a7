// Decoding request bytes: BOMs, UTF-16 with and without a BOM, declarations, and refusal of DTDs.

import t from 'tap'
import { decodeXmlBytes } from '../../src/cpix/decode.js'
import { parseCpix } from '../../src/cpix/parse.js'
import { fixture } from '../helpers/fixtures.js'

const DOC = '<?xml version="1.0" encoding="UTF-16"?><cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" id="ü-1"/>'

function utf16be (text: string): Buffer {
  const le = Buffer.from(text, 'utf16le')
  for (let i = 0; i < le.length; i += 2) { const a = le[i]; le[i] = le[i + 1]; le[i + 1] = a }
  return le
}

t.test('UTF-16 little-endian and big-endian, with and without a BOM', async t => {
  t.equal(parseCpix(decodeXmlBytes(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(DOC, 'utf16le')]))).id, 'ü-1')
  t.equal(parseCpix(decodeXmlBytes(Buffer.from(DOC, 'utf16le'))).id, 'ü-1')
  t.equal(parseCpix(decodeXmlBytes(Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be(DOC)]))).id, 'ü-1')
  t.equal(parseCpix(decodeXmlBytes(utf16be(DOC))).id, 'ü-1')
})

t.test('the DASH-IF UTF-16 test vector decodes and parses', async t => {
  const doc = parseCpix(decodeXmlBytes(fixture('dashif/EvenMoreComplex.xml')))
  t.ok(doc.contentKeys.length > 0, `${doc.contentKeys.length} content keys read`)
})

t.test('UTF-8 with a BOM, a single-quoted utf8 declaration, and leading whitespace', async t => {
  const text = "<?xml version='1.0' encoding='utf8'?><cpix:CPIX xmlns:cpix=\"urn:dashif:org:cpix\" id=\"a\"/>"
  t.equal(parseCpix(decodeXmlBytes(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]))).id, 'a')
  t.equal(parseCpix(decodeXmlBytes(Buffer.from(`\r\n  \t${text}`))).id, 'a')
})

t.test('refusals', async t => {
  t.throws(() => decodeXmlBytes(Buffer.alloc(0)), { status: 400, message: /empty/ })
  t.throws(() => decodeXmlBytes(Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?><a/>')), { status: 400, message: /ISO-8859-1/ })
  t.throws(() => decodeXmlBytes(Buffer.from([0x3c, 0x61, 0xc3, 0x28, 0x2f, 0x3e])), { status: 400, message: /not valid UTF-8/ })
  t.throws(() => decodeXmlBytes(Buffer.from('<!DOCTYPE lolz [<!ENTITY lol "lol">]><a>&lol;</a>')), { status: 400, message: /DOCTYPE/ })
  t.throws(() => decodeXmlBytes(Buffer.from('<?xml version="1.0"?>\n<!doctype a SYSTEM "http://evil/x.dtd"><a/>')), { status: 400, message: /DOCTYPE/ })
  t.throws(() => decodeXmlBytes(Buffer.from('<a><!ENTITY x "y"></a>')), { status: 400, message: /entity declarations/ })
  t.throws(() => decodeXmlBytes(Buffer.from('<a><!-- c --><!eNtItY x "y"></a>')), { status: 400, code: 'ENTITY_REFUSED' }, 'in any case, after a comment')
  t.throws(() => decodeXmlBytes(Buffer.from('<!ENTITY x "y"><!-- c --><!DocType a><a/>')), { status: 400, code: 'DOCTYPE_REFUSED' }, 'a DOCTYPE anywhere is the reason given before an entity')
  t.equal(decodeXmlBytes(Buffer.from('<a><!-- DOCTYPE --><![CDATA[ENTITY]]></a>')), '<a><!-- DOCTYPE --><![CDATA[ENTITY]]></a>', 'comments and CDATA are no DTD')
})
