// Specification of plainWrmHeaderTree: the plain WRMHEADER form gives exactly fast-xml-parser's tree; anything else is left to the parser.
import t from 'tap'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { WRMHEADER_PARSER_OPTIONS, buildWrmHeader, parseWrmHeader } from '../../src/cpix/playready.js'
import { plainWrmHeaderTree } from '../../src/cpix/wrm-header-tree.js'

const NS = 'http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader'
const KID1 = '6b657969-6431-7e7e-7e7e-7e7e7e7e7e7e'
const KID2 = '6b657969-6432-7e7e-7e7e-7e7e7e7e7e7e'
const KEY = Buffer.from('contentkey1~~~~~', 'latin1')
const parser = new XMLParser(WRMHEADER_PARSER_OPTIONS)
const header = (version: string, data: string): string => `<WRMHEADER xmlns="${NS}" version="${version}"><DATA>${data}</DATA></WRMHEADER>`

const PLAIN: Array<[string, string]> = [
  ['4.0, KID and CHECKSUM (shaka)', buildWrmHeader({ kids: [{ kid: KID1, key: KEY }], scheme: 'cenc', laUrl: 'https://la.example.com/pr' })],
  ['4.0 without CHECKSUM', buildWrmHeader({ kids: [{ kid: KID1 }], scheme: 'cens' })],
  ['4.2, several KIDs', buildWrmHeader({ kids: [{ kid: KID1, key: KEY }, { kid: KID2, key: KEY }], scheme: 'cenc', luiUrl: 'https://lui.example.com' })],
  ['4.3 AESCBC (PallyCon)', buildWrmHeader({ kids: [{ kid: KID1 }], scheme: 'cbcs', laUrl: 'https://license.pallycon.com/ri/licenseManager.do' })],
  ['4.3, custom attributes as elements', buildWrmHeader({ kids: [{ kid: KID1 }, { kid: KID2 }], scheme: 'cbc1', customAttributes: '<PERIOD_INDEX>128</PERIOD_INDEX><IIS_DRM_VERSION>7.1.1439.0</IIS_DRM_VERSION>' })],
  ['4.1, one KID with attributes', header('4.1.0.0', '<PROTECTINFO><KID ALGID="AESCTR" CHECKSUM="uFY/OirQj/U=" VALUE="aXllazFkfn5+fn5+fn5+fg=="></KID></PROTECTINFO>')],
  ['self-closing and empty elements', header('4.2.0.0', '<PROTECTINFO><KIDS><KID VALUE="aXllazFkfn5+fn5+fn5+fg=="/><KID ALGID="AESCTR" VALUE="aXllazJkfn5+fn5+fn5+fg==" /></KIDS></PROTECTINFO><LA_URL></LA_URL><DECRYPTORSETUP/>')],
  ['empty PROTECTINFO', header('4.3.0.0', '<PROTECTINFO></PROTECTINFO>')],
  ['elements in another order', header('4.0.0.0', '<KID>aXllazFkfn5+fn5+fn5+fg==</KID><PROTECTINFO><ALGID>AESCTR</ALGID><KEYLEN>16</KEYLEN></PROTECTINFO>')],
  ['attributes in another order, an unknown root attribute', `<WRMHEADER version="4.0.0.0" xmlns="${NS}" id="x"><DATA><KID>aXllazFkfn5+fn5+fn5+fg==</KID></DATA></WRMHEADER>`],
  ['a KID element directly under DATA in 4.2', header('4.2.0.0', '<KID>aXllazFkfn5+fn5+fn5+fg==</KID>')]
]

t.test('the plain form gives the tree fast-xml-parser builds, and parseWrmHeader the same answer', async (t) => {
  for (const [name, xml] of PLAIN) {
    t.equal(XMLValidator.validate(xml), true, `${name}: well-formed`)
    const tree = plainWrmHeaderTree(xml)
    t.strictSame(tree, parser.parse(xml), name)
    t.equal(JSON.stringify(tree), JSON.stringify(parser.parse(xml)), `${name}: same keys in the same order`)
  }
  t.strictSame(parseWrmHeader(PLAIN[0][1]).kids, [{ kid: KID1, algId: 'AESCTR', checksum: 'uFY/OirQj/U=' }])
})

t.test('anything but the plain form is left to the parser', async (t) => {
  const other: Array<[string, string]> = [
    ['an XML declaration', `<?xml version="1.0"?>${PLAIN[0][1]}`],
    ['white space between elements', header('4.3.0.0', '\n  <PROTECTINFO></PROTECTINFO>\n')],
    ['white space inside text', header('4.3.0.0', '<LA_URL> https://l </LA_URL>')],
    ['an entity', header('4.3.0.0', '<LA_URL>https://l?a=1&amp;b=2</LA_URL>')],
    ['a comment', header('4.3.0.0', '<!-- c --><PROTECTINFO></PROTECTINFO>')],
    ['CDATA', header('4.3.0.0', '<LA_URL><![CDATA[https://l]]></LA_URL>')],
    ['single-quoted attributes', `<WRMHEADER xmlns='${NS}' version='4.3.0.0'><DATA></DATA></WRMHEADER>`],
    ['an empty attribute value', header('4.2.0.0', '<PROTECTINFO><KIDS><KID VALUE=""></KID></KIDS></PROTECTINFO>')],
    ['a repeated attribute', header('4.2.0.0', '<PROTECTINFO><KIDS><KID VALUE="a" VALUE="b"></KID></KIDS></PROTECTINFO>')],
    ['a repeated element', header('4.3.0.0', '<LA_URL>a</LA_URL><LA_URL>b</LA_URL>')],
    ['text beside attributes', header('4.2.0.0', '<PROTECTINFO><KIDS><KID VALUE="a">text</KID></KIDS></PROTECTINFO>')],
    ['mixed content', header('4.3.0.0', '<LA_URL>a<B>b</B></LA_URL>')],
    ['a prefixed name', header('4.3.0.0', '<x:LA_URL xmlns:x="u">a</x:LA_URL>')],
    ['a mismatched end tag', header('4.3.0.0', '<LA_URL>a</LUI_URL>')],
    ['text after the root', `${PLAIN[0][1]} `],
    ['another root', '<PLAYREADY><DATA></DATA></PLAYREADY>'],
    ['a truncated header', PLAIN[0][1].slice(0, -3)],
    ['deep nesting', header('4.3.0.0', '<CUSTOMATTRIBUTES><A><B><C><D><E><F><G>x</G></F></E></D></C></B></A></CUSTOMATTRIBUTES>')]
  ]
  for (const [name, xml] of other) t.equal(plainWrmHeaderTree(xml), undefined, name)
})
