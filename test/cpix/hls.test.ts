// Tests for src/cpix/hls.ts: HLS key tags and MPD ContentProtection fragments against DASH-IF, gpac, pycpix and PallyCon vectors.
import t from 'tap'
import {
  aes128HlsAttributes, cencPsshFragment, extractCencPssh, fairPlayHlsAttributes, fairPlaySkdUri, hlsKeyId, hlsKeyTag,
  hlsMethod, parseHlsTag, playReadyFragment, playReadyHlsAttributes, widevineHlsAttributes
} from '../../src/cpix/hls.js'

const b64 = (s: string): Buffer => Buffer.from(s, 'base64')

// DASH-IF cpix-test-vectors Complex.xml, KID b4c3188b-eddd-453d-9bc2-1cbca7566239
const COMPLEX_KID = 'b4c3188b-eddd-453d-9bc2-1cbca7566239'
const COMPLEX_WV_BOX = 'AAAAOHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAABgSELTDGIvt3UU9m8IcvKdWYjlI49yVmwY='
const COMPLEX_WV_MEDIA = '#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI="data:text/plain;base64,AAAAOHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAABgSELTDGIvt3UU9m8IcvKdWYjlI49yVmwY=",KEYID=0xB4C3188BEDDD453D9BC21CBCA7566239,KEYFORMAT="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",KEYFORMATVERSIONS="1"'
const COMPLEX_WV_MASTER = '#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES-CTR,URI="data:text/plain;base64,AAAAOHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAABgSELTDGIvt3UU9m8IcvKdWYjlI49yVmwY=",KEYID=0xB4C3188BEDDD453D9BC21CBCA7566239,KEYFORMAT="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",KEYFORMATVERSIONS="1"'
const COMPLEX_FP_MEDIA = '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://b4c3188b-eddd-453d-9bc2-1cbca7566239",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"'
const COMPLEX_FP_MASTER = '#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="skd://b4c3188b-eddd-453d-9bc2-1cbca7566239",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"'
const COMPLEX_WV_CPD = '<pssh xmlns="urn:mpeg:cenc:2013">AAAAOHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAABgSELTDGIvt3UU9m8IcvKdWYjlI49yVmwY=</pssh>'
// gpac unittest (EZDRM style skd URI with IV)
const GPAC_FP_MEDIA = '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://01234567-8901-2345-6789-012345678901:01234567890123456789012345678901",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"'
// pycpix test_full_widevine_cpix (KEYID before URI, SAMPLE-AES with cenc, trailing newline)
const PYCPIX_WV_MEDIA = '#EXT-X-KEY:METHOD=SAMPLE-AES,KEYID=0x0DC3EC4F7683548B81E73C64E582E136,URI="data:text/plain;base64,AAAAonBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAAIISEBRHt+0vZlcrvRMGznzzYQ0SEFrGoR6qL17Vv2aMQByBNMoSEG7hNRbI51h7rp9+zT6Zom4SEPnsEqYaJl1Hj4MzTjp40scSEA3D7E92g1SLgec8ZOWC4TYaDXdpZGV2aW5lX3Rlc3QiEXVuaWZpZWQtc3RyZWFtaW5nSOPclZsG",KEYFORMAT="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",KEYFORMATVERSIONS="1"\n'
const PYCPIX_WV_BOX_V1 = 'AAAAxnBzc2gBAAAA7e+LqXnWSs6jyCfc1R0h7QAAAAINw+xPdoNUi4HnPGTlguE2FEe37S9mVyu9EwbOfPNhDQAAAIISEBRHt+0vZlcrvRMGznzzYQ0SEFrGoR6qL17Vv2aMQByBNMoSEG7hNRbI51h7rp9+zT6Zom4SEPnsEqYaJl1Hj4MzTjp40scSEA3D7E92g1SLgec8ZOWC4TYaDXdpZGV2aW5lX3Rlc3QiEXVuaWZpZWQtc3RyZWFtaW5nSOPclZsG'
const PYCPIX_CPD = `<!-- Widevine -->
<ContentProtection
  xmlns="urn:mpeg:dash:schema:mpd:2011"
  xmlns:cenc="urn:mpeg:cenc:2013"
  schemeIdUri="urn:uuid:EDEF8BA9-79D6-4ACE-A3C8-27DCD51D21ED">
  <cenc:pssh>${PYCPIX_WV_BOX_V1}</cenc:pssh>
</ContentProtection>`
// PallyCon KMS python-client JSON (A2 PRO) and docs
const PC_PRO = 'cgIAAAEAAQBoAjwAVwBSAE0ASABFAEEARABFAFIAIAB4AG0AbABuAHMAPQAiAGgAdAB0AHAAOgAvAC8AcwBjAGgAZQBtAGEAcwAuAG0AaQBjAHIAbwBzAG8AZgB0AC4AYwBvAG0ALwBEAFIATQAvADIAMAAwADcALwAwADMALwBQAGwAYQB5AFIAZQBhAGQAeQBIAGUAYQBkAGUAcgAiACAAdgBlAHIAcwBpAG8AbgA9ACIANAAuADMALgAwAC4AMAAiAD4APABEAEEAVABBAD4APABQAFIATwBUAEUAQwBUAEkATgBGAE8APgA8AEsASQBEAFMAPgA8AEsASQBEACAAQQBMAEcASQBEAD0AIgBBAEUAUwBDAFQAUgAiACAAQwBIAEUAQwBLAFMAVQBNAD0AIgBIAEUAcwB2AGwAWABVAHgAbgBXAHcAPQAiACAAVgBBAEwAVQBFAD0AIgB0AGoAaQA4AHkAdwAyADEAVQA2AHYANABKAGoANABHAHQAegBnAHEAbwB3AD0APQAiAD4APAAvAEsASQBEAD4APAAvAEsASQBEAFMAPgA8AC8AUABSAE8AVABFAEMAVABJAE4ARgBPAD4APABMAEEAXwBVAFIATAA+AGgAdAB0AHAAcwA6AC8ALwBsAGkAYwBlAG4AcwBlAC4AcABhAGwAbAB5AGMAbwBuAC4AYwBvAG0ALwByAGkALwBsAGkAYwBlAG4AcwBlAE0AYQBuAGEAZwBlAHIALgBkAG8APAAvAEwAQQBfAFUAUgBMAD4APAAvAEQAQQBUAEEAPgA8AC8AVwBSAE0ASABFAEEARABFAFIAPgA='
const PC_PR_BOX = 'AAACknBzc2gAAAAAmgTweZhAQoarkuZb4IhflQAAAnJyAgAAAQABAGgCPABXAFIATQBIAEUAQQBEAEUAUgAgAHgAbQBsAG4AcwA9ACIAaAB0AHQAcAA6AC8ALwBzAGMAaABlAG0AYQBzAC4AbQBpAGMAcgBvAHMAbwBmAHQALgBjAG8AbQAvAEQAUgBNAC8AMgAwADAANwAvADAAMwAvAFAAbABhAHkAUgBlAGEAZAB5AEgAZQBhAGQAZQByACIAIAB2AGUAcgBzAGkAbwBuAD0AIgA0AC4AMwAuADAALgAwACIAPgA8AEQAQQBUAEEAPgA8AFAAUgBPAFQARQBDAFQASQBOAEYATwA+ADwASwBJAEQAUwA+ADwASwBJAEQAIABBAEwARwBJAEQAPQAiAEEARQBTAEMAVABSACIAIABDAEgARQBDAEsAUwBVAE0APQAiAEgARQBzAHYAbABYAFUAeABuAFcAdwA9ACIAIABWAEEATABVAEUAPQAiAHQAagBpADgAeQB3ADIAMQBVADYAdgA0AEoAagA0AEcAdAB6AGcAcQBvAHcAPQA9ACIAPgA8AC8ASwBJAEQAPgA8AC8ASwBJAEQAUwA+ADwALwBQAFIATwBUAEUAQwBUAEkATgBGAE8APgA8AEwAQQBfAFUAUgBMAD4AaAB0AHQAcABzADoALwAvAGwAaQBjAGUAbgBzAGUALgBwAGEAbABsAHkAYwBvAG4ALgBjAG8AbQAvAHIAaQAvAGwAaQBjAGUAbgBzAGUATQBhAG4AYQBnAGUAcgAuAGQAbwA8AC8ATABBAF8AVQBSAEwAPgA8AC8ARABBAFQAQQA+ADwALwBXAFIATQBIAEUAQQBEAEUAUgA+AA=='
const PC_KID = 'cbbc38b6-b50d-ab53-f826-3e06b7382aa3'

t.test('Widevine tags reproduce DASH-IF Complex.xml', async (t) => {
  const attrs = widevineHlsAttributes(b64(COMPLEX_WV_BOX), COMPLEX_KID, 'cenc')
  t.equal(hlsKeyTag('media', attrs), COMPLEX_WV_MEDIA)
  t.equal(hlsKeyTag('master', attrs), COMPLEX_WV_MASTER)
  t.equal(hlsKeyTag('media', widevineHlsAttributes(b64(COMPLEX_WV_BOX), COMPLEX_KID, 'cbcs')), COMPLEX_WV_MEDIA.replace('SAMPLE-AES-CTR', 'SAMPLE-AES'))
})

t.test('FairPlay tags reproduce DASH-IF Complex.xml and gpac', async (t) => {
  t.equal(hlsKeyTag('media', fairPlayHlsAttributes(`skd://${COMPLEX_KID}`)), COMPLEX_FP_MEDIA)
  t.equal(hlsKeyTag('master', fairPlayHlsAttributes(`skd://${COMPLEX_KID}`)), COMPLEX_FP_MASTER)
  t.equal(hlsKeyTag('media', fairPlayHlsAttributes('skd://01234567-8901-2345-6789-012345678901:01234567890123456789012345678901')), GPAC_FP_MEDIA)
  t.throws(() => fairPlayHlsAttributes('https://example.com/key'), /starts with skd:\/\//)
})

t.test('PallyCon FairPlay skd URI is base64 of the big-endian KID', async (t) => {
  t.equal(fairPlaySkdUri(PC_KID), 'skd://y7w4trUNq1P4Jj4Gtzgqow==')
  t.equal(fairPlaySkdUri('12EA753C-23E7-BC02-4474-B2B976C43BEB'), 'skd://Eup1PCPnvAJEdLK5dsQ76w==')
  t.throws(() => fairPlaySkdUri('cpix-test-cid'), /not a UUID/)
})

t.test('PlayReady tags carry the PRO as a UTF-16 data URI', async (t) => {
  const tag = hlsKeyTag('media', playReadyHlsAttributes(b64(PC_PRO), PC_KID, 'cenc'))
  t.equal(tag, `#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI="data:text/plain;charset=UTF-16;base64,${PC_PRO}",KEYID=0xCBBC38B6B50DAB53F8263E06B7382AA3,KEYFORMAT="com.microsoft.playready",KEYFORMATVERSIONS="1"`)
  const parsed = parseHlsTag(hlsKeyTag('master', playReadyHlsAttributes(b64(PC_PRO), PC_KID, 'cbcs')))
  t.equal(parsed.tag, 'EXT-X-SESSION-KEY')
  t.equal(parsed.attributes.METHOD, 'SAMPLE-AES')
  t.equal(parsed.attributes.KEYFORMAT, 'com.microsoft.playready')
  t.equal(b64(parsed.attributes.URI.replace('data:text/plain;charset=UTF-16;base64,', '')).toString('base64'), PC_PRO)
})

t.test('AES-128 tags', async (t) => {
  t.equal(hlsKeyTag('media', aes128HlsAttributes('https://k.example/key?id=1')), '#EXT-X-KEY:METHOD=AES-128,URI="https://k.example/key?id=1",KEYFORMAT="identity",KEYFORMATVERSIONS="1"')
  t.equal(hlsKeyTag('master', aes128HlsAttributes('https://k.example/key', Buffer.from('30313233343536373839616263646566', 'hex'))),
    '#EXT-X-SESSION-KEY:METHOD=AES-128,URI="https://k.example/key",IV=0x30313233343536373839616263646566,KEYFORMAT="identity",KEYFORMATVERSIONS="1"')
  t.throws(() => aes128HlsAttributes('https://k.example/key', Buffer.alloc(8)), /16 bytes, got 8/)
})

t.test('METHOD per scheme and KEYID format', async (t) => {
  t.equal(hlsMethod('cbcs'), 'SAMPLE-AES')
  t.equal(hlsMethod('cenc'), 'SAMPLE-AES-CTR')
  t.throws(() => hlsMethod('cens'), /no encryption METHOD for scheme cens/)
  t.throws(() => widevineHlsAttributes(b64(COMPLEX_WV_BOX), COMPLEX_KID, 'cbc1'), /scheme cbc1/)
  t.equal(hlsKeyId(COMPLEX_KID.toUpperCase()), '0xB4C3188BEDDD453D9BC21CBCA7566239')
})

t.test('hlsKeyTag refuses values it cannot write', async (t) => {
  t.throws(() => hlsKeyTag('media', []), /at least one attribute/)
  t.throws(() => hlsKeyTag('media', [['METHOD', 'SAMPLE AES']]), /cannot be written unquoted/)
  t.throws(() => hlsKeyTag('media', [['METHOD', 'AES-128'], ['URI', 'a"b']]), /double quote or line break/)
  t.throws(() => hlsKeyTag('media', [['method', 'AES-128']]), /invalid HLS attribute name 'method'/)
  t.throws(() => hlsKeyTag('media', [['METHOD', 'AES-128'], ['METHOD', 'NONE']]), /duplicate HLS attribute METHOD/)
})

t.test('parseHlsTag reads real signalling data', async (t) => {
  t.same(parseHlsTag(COMPLEX_WV_MEDIA), {
    tag: 'EXT-X-KEY',
    attributes: {
      METHOD: 'SAMPLE-AES-CTR',
      URI: `data:text/plain;base64,${COMPLEX_WV_BOX}`,
      KEYID: '0xB4C3188BEDDD453D9BC21CBCA7566239',
      KEYFORMAT: 'urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed',
      KEYFORMATVERSIONS: '1'
    }
  })
  t.equal(parseHlsTag(COMPLEX_FP_MASTER).tag, 'EXT-X-SESSION-KEY')
  t.equal(parseHlsTag(GPAC_FP_MEDIA).attributes.URI, 'skd://01234567-8901-2345-6789-012345678901:01234567890123456789012345678901')
  const py = parseHlsTag(PYCPIX_WV_MEDIA)
  t.equal(py.attributes.KEYID, '0x0DC3EC4F7683548B81E73C64E582E136')
  t.equal(py.attributes.KEYFORMATVERSIONS, '1')
  t.equal(py.attributes.URI.slice(0, 40), 'data:text/plain;base64,AAAAonBzc2gAAAAA7')
  t.equal(parseHlsTag(`${COMPLEX_FP_MEDIA}\r\n`).attributes.METHOD, 'SAMPLE-AES')
})

t.test('parseHlsTag is strict', async (t) => {
  t.throws(() => parseHlsTag('#EXT-X-MAP:URI="init.mp4"'), /not an HLS key tag: expected #EXT-X-KEY: or #EXT-X-SESSION-KEY:, got "#EXT-X-MAP/)
  t.throws(() => parseHlsTag('#EXTM3U'), /not an HLS key tag/)
  t.throws(() => parseHlsTag(` ${COMPLEX_FP_MEDIA}`), /not an HLS key tag/)
  t.throws(() => parseHlsTag('#EXT-X-KEYS:METHOD=NONE'), /not an HLS key tag/)
  t.throws(() => parseHlsTag('#EXT-X-KEY:'), /has no attributes/)
  t.throws(() => parseHlsTag('#EXT-X-KEY:METHOD=AES-128,URI="https://x'), /malformed attribute list/)
  t.throws(() => parseHlsTag('#EXT-X-KEY:METHOD=AES-128,method=NONE'), /malformed attribute list/)
  t.throws(() => parseHlsTag('#EXT-X-KEY:METHOD=AES-128,URI="a",URI="b"'), /repeats attribute URI/)
  t.throws(() => parseHlsTag('#EXT-X-KEY:METHOD=AES-128 ,URI="a"'), /expects ',' after attribute METHOD/)
  t.throws(() => parseHlsTag('#EXT-X-KEY:METHOD=AES-128,'), /malformed attribute list/)
  t.throws(() => parseHlsTag('#EXT-X-KEY:URI="a"'), /has no METHOD attribute/)
  t.throws(() => parseHlsTag(`${COMPLEX_FP_MEDIA}\n${COMPLEX_FP_MASTER}`), /single tag line/)
})

t.test('MPD fragments', async (t) => {
  const wv = b64(COMPLEX_WV_BOX)
  t.equal(cencPsshFragment(wv), `<cenc:pssh xmlns:cenc="urn:mpeg:cenc:2013">${COMPLEX_WV_BOX}</cenc:pssh>`)
  const pr = playReadyFragment(b64(PC_PR_BOX), b64(PC_PRO))
  t.equal(pr, `<cenc:pssh xmlns:cenc="urn:mpeg:cenc:2013">${PC_PR_BOX}</cenc:pssh><mspr:pro xmlns:mspr="urn:microsoft:playready">${PC_PRO}</mspr:pro>`)
  t.equal(extractCencPssh(pr), PC_PR_BOX)
  t.equal(extractCencPssh(cencPsshFragment(wv)), COMPLEX_WV_BOX)
})

t.test('extractCencPssh tolerates prefixes, default namespaces, comments and whitespace', async (t) => {
  t.equal(extractCencPssh(COMPLEX_WV_CPD), COMPLEX_WV_BOX, 'DASH-IF default namespace')
  t.equal(extractCencPssh(PYCPIX_CPD), PYCPIX_WV_BOX_V1, 'pycpix ContentProtection with comment')
  const wrapped = `<ns2:pssh xmlns:ns2="urn:mpeg:cenc:2013">\n  ${COMPLEX_WV_BOX.slice(0, 20)}\n  ${COMPLEX_WV_BOX.slice(20)}\n</ns2:pssh>`
  t.equal(extractCencPssh(wrapped), COMPLEX_WV_BOX, 'other prefix and line-wrapped base64')
  t.equal(extractCencPssh(`<!-- <cenc:pssh>AAAA</cenc:pssh> -->${COMPLEX_WV_CPD}`), COMPLEX_WV_BOX, 'commented-out element ignored')
  t.equal(extractCencPssh(`<mspr:pro xmlns:mspr="urn:microsoft:playready">${PC_PRO}</mspr:pro>`), undefined)
  t.equal(extractCencPssh('<cenc:psshx>AAAA</cenc:psshx>'), undefined)
  t.equal(extractCencPssh(''), undefined)
  t.throws(() => extractCencPssh('<cenc:pssh xmlns:cenc="urn:mpeg:cenc:2013"/>'), /is empty/)
  t.throws(() => extractCencPssh('<cenc:pssh>  </cenc:pssh>'), /is empty/)
  t.throws(() => extractCencPssh('<cenc:pssh>not*base64</cenc:pssh>'), /not base64/)
})
