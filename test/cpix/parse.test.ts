// Parsing CPIX: elements are matched by namespace URI whatever the prefix, and real-world shapes are read fully.

import t from 'tap'
import { parseCpix } from '../../src/cpix/parse.js'
import { fixtureText } from '../helpers/fixtures.js'

t.test('a default namespace and an unusual prefix read the same as cpix:', async t => {
  const a = parseCpix('<CPIX xmlns="urn:dashif:org:cpix" id="x"><ContentKeyList><ContentKey kid="11111111-1111-1111-1111-111111111111"/></ContentKeyList></CPIX>')
  const b = parseCpix('<zz:CPIX xmlns:zz="urn:dashif:org:cpix" id="x"><zz:ContentKeyList><zz:ContentKey kid="11111111-1111-1111-1111-111111111111"/></zz:ContentKeyList></zz:CPIX>')
  t.same(a.contentKeys.map(k => k.kid), b.contentKeys.map(k => k.kid))
  t.equal(a.contentKeys.length, 1)
})

t.test('elements in another namespace are not mistaken for CPIX ones', async t => {
  const doc = parseCpix('<c:CPIX xmlns:c="urn:dashif:org:cpix" xmlns:o="urn:other" id="x"><o:ContentKeyList><o:ContentKey kid="11111111-1111-1111-1111-111111111111"/></o:ContentKeyList></c:CPIX>')
  t.equal(doc.lists.contentKeys, false)
  t.equal(doc.contentKeys.length, 0)
})

t.test('a root outside the CPIX namespace is refused', async t => {
  t.throws(() => parseCpix('<CPIX id="x"/>'), { status: 400, message: /expected <CPIX> in urn:dashif:org:cpix/ })
  t.throws(() => parseCpix('<p:CPIX id="x"/>'), { status: 400, message: /prefix "p" .* not declared/ })
})

t.test('AWS SPEKE v1 request: speke:* before cpix:PSSH, all placeholders read', async t => {
  const doc = parseCpix(fixtureText('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml'))
  t.equal(doc.id, 'abc123')
  t.equal(doc.drmSystems.length, 4)
  const playready = doc.drmSystems.find(s => s.systemId === '9a04f079-9840-4286-ab92-e65be0885f95')
  t.equal(playready?.speke.ProtectionHeader, '')
  t.equal(playready?.pssh, '')
  const fairplay = doc.drmSystems.find(s => s.systemId === '94ce86fb-07ff-4f43-adb8-93d2fa968ca2')
  t.same(Object.keys(fairplay?.speke ?? {}).sort(), ['KeyFormat', 'KeyFormatVersions'])
  t.equal(fairplay?.uriExtXKey, '')
})

t.test('PallyCon response: keys, IVs, and lists in PallyCon\'s order', async t => {
  const doc = parseCpix(fixtureText('pallycon/dash-vod-response.xml'))
  t.equal(doc.contentKeys[0].plainValue, 'SzC1qc1cEpyFU6t/lL7Byw==')
  t.equal(doc.contentKeys[0].explicitIV, 'MDEyMzQ1Njc4OWFiY2RlZg==')
  t.equal(doc.drmSystems[0].systemId, '9A04F079-9840-4286-AB92-E65BE0885F95', 'system id case is preserved')
})

t.test('entities and character references are decoded once', async t => {
  const doc = parseCpix('<c:CPIX xmlns:c="urn:dashif:org:cpix" id="a&amp;#65;&#66;&#x43;&lt;"/>')
  t.equal(doc.id, 'a&#65;BC<')
})

t.test('cloneCpix: the model readCpix gives for a copy of the tree, every element in the copy and none in the original', async t => {
  const { cloneCpix, readCpix } = await import('../../src/cpix/parse.js')
  const { cloneElement, writeXml } = await import('../../src/cpix/xml.js')
  const { spekeV2Request } = await import('../../bench/request.mjs') as { spekeV2Request: () => Buffer }
  type El = import('../../src/cpix/xml.js').XmlElement
  const originals = new Set<El>()
  const collect = (el: El, into: Set<El>): void => { into.add(el); for (const c of el.children) if (c.kind === 'element') collect(c, into) }
  for (const text of [spekeV2Request().toString('utf8'), fixtureText('aws-speke-v2/aws-doc-v2-kid-override-request-widevine-cbcs-live.xml'), fixtureText('aws-speke-v1/aws-doc-v1-live-request-aes128-sampleaes-widevine-playready.xml'), fixtureText('pallycon/dash-live-keyrotation-request.xml')]) {
    const doc = parseCpix(text)
    const before = writeXml(doc.root)
    collect(doc.root, originals)
    const copy = cloneCpix(doc)
    t.same(copy, readCpix(cloneElement(doc.root)))
    const inCopy = new Set<El>()
    collect(copy.root, inCopy)
    const elements = [
      copy.root, ...copy.contentKeys.map(k => k.element),
      ...copy.drmSystems.flatMap(s => [s.element, ...s.hlsSignaling.map(h => h.element)]),
      ...copy.periods.map(p => p.element), ...copy.usageRules.map(r => r.element)
    ]
    for (const el of elements) {
      t.ok(inCopy.has(el), 'in the copy')
      t.notOk(originals.has(el), 'not in the original')
    }
    for (const s of copy.drmSystems) s.element.attrs.kid = 'changed'
    copy.root.children.length = 0
    t.equal(writeXml(doc.root), before, 'editing the copy leaves the original alone')
  }
})
