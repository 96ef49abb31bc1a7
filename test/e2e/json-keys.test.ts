// The JSON key API gives a packager its keys in one call, field for field what the CPIX reply for the same ask holds.

import t from 'tap'
import { request } from 'undici'
import { decodeXmlBytes } from '../../src/cpix/decode.js'
import { parseCpix } from '../../src/cpix/parse.js'
import { parsePsshBoxes } from '../../src/cpix/pssh.js'
import { decodeWidevinePsshData } from '../../src/cpix/widevine.js'
import { verifyPlayReadyChecksum, parsePlayReadyObject, parseWrmHeader } from '../../src/cpix/playready.js'
import { DEMO_TOKEN, capturedBody } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

const JSON_HEADERS = { 'content-type': 'application/json' }

t.test('POST /v2/keys returns PallyCon\'s client JSON, matching the CPIX reply for the same content', async t => {
  const proxy = await startProxy({ AUDIT: 'off' })
  t.teardown(() => proxy.close())
  const ask = { content_id: 'multi-cid', drm_types: ['widevine', 'playready', 'fairplay'], encryption_scheme: 'cbcs', track_types: ['AUDIO', 'SD', 'HD'], key_rotation: false }
  const res = await request(`${proxy.url}/v2/keys?enc-token=${encodeURIComponent(DEMO_TOKEN)}`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(ask) })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /application\/json/)
  const json = await res.body.json() as { content_id: string, content_key_list: Array<Record<string, any>> }
  t.equal(json.content_id, 'multi-cid')
  t.same(json.content_key_list.map(k => k.track_type), ['AUDIO', 'SD', 'HD'])

  // The same ask as PallyCon's Python client sends it (captured), through the CPIX route.
  const cpix = await request(`${proxy.url}/v2/cpix/pallycon/getKey/${DEMO_TOKEN}`, { method: 'POST', body: capturedBody('pallycon/python-client/captured-multi-key-audio-sd-hd-cbcs.http') })
  t.equal(cpix.statusCode, 200)
  const doc = parseCpix(decodeXmlBytes(Buffer.from(await cpix.body.arrayBuffer())))
  for (const entry of json.content_key_list) {
    const rule = doc.usageRules.find(r => r.intendedTrackType === entry.track_type)
    const key = doc.contentKeys.find(k => k.kid === rule?.kid)
    t.ok(key, `${entry.track_type}: the CPIX reply has the key`)
    if (key === undefined) continue
    const where = entry.track_type as string
    t.equal(entry.key_id_hex, key.kid.replace(/-/g, ''), `${where}: key_id_hex`)
    t.equal(entry.key_id_b64, Buffer.from(entry.key_id_hex, 'hex').toString('base64'), `${where}: key_id_b64`)
    t.equal(entry.key_b64, key.plainValue, `${where}: key_b64`)
    t.equal(entry.key_hex, Buffer.from(key.plainValue ?? '', 'base64').toString('hex'), `${where}: key_hex`)
    t.equal(entry.iv_b64, key.explicitIV, `${where}: iv_b64`)
    const wv = doc.drmSystems.find(s => s.kid === key.kid && s.systemId === 'EDEF8BA9-79D6-4ACE-A3C8-27DCD51D21ED')
    t.equal(entry.widevine.pssh, wv?.pssh, `${where}: widevine.pssh`)
    const wvBox = parsePsshBoxes(Buffer.from(entry.widevine.pssh, 'base64'))[0]
    t.equal(entry.widevine.pssh_payload_only, wvBox.data.toString('base64'), `${where}: widevine.pssh_payload_only is the box payload`)
    t.same(decodeWidevinePsshData(wvBox.data).kids, [key.kid], `${where}: the Widevine data names the key`)
    const pr = doc.drmSystems.find(s => s.kid === key.kid && s.systemId === '9A04F079-9840-4286-AB92-E65BE0885F95')
    t.equal(entry.playready.pssh, pr?.pssh, `${where}: playready.pssh`)
    const header = parseWrmHeader(parsePlayReadyObject(Buffer.from(entry.playready.pssh_payload_only, 'base64')).wrmHeader)
    t.equal(header.kids[0].kid, key.kid, `${where}: the PlayReady header names the key`)
    t.equal(entry.fairplay.key_uri, `skd://${entry.key_id_b64}`, `${where}: fairplay.key_uri in PallyCon's form`)
  }
})

t.test('single key with rotation; bad input gets a clear JSON error; a bad token 401', async t => {
  const proxy = await startProxy({ AUDIT: 'off' })
  t.teardown(() => proxy.close())
  const url = `${proxy.url}/v2/keys?enc-token=${encodeURIComponent(DEMO_TOKEN)}`
  const a = await request(url, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ content_id: 'live', drm_types: ['widevine', 'playready'], encryption_scheme: 'cenc', track_types: ['HD'], key_rotation: true, period_index: 7 }) })
  const b = await request(url, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ content_id: 'live', drm_types: ['widevine', 'playready'], encryption_scheme: 'cenc', track_types: ['HD'], key_rotation: true, period_index: 8 }) })
  const ja = await a.body.json() as { content_key_list: Array<Record<string, any>> }
  const jb = await b.body.json() as { content_key_list: Array<Record<string, any>> }
  t.equal(a.statusCode, 200)
  t.not(ja.content_key_list[0].key_hex, jb.content_key_list[0].key_hex, 'each period has its own key')
  const header = parseWrmHeader(parsePlayReadyObject(Buffer.from(ja.content_key_list[0].playready.pssh_payload_only, 'base64')).wrmHeader)
  t.ok(verifyPlayReadyChecksum(header.kids[0].kid, Buffer.from(ja.content_key_list[0].key_hex, 'hex'), header.kids[0].checksum ?? ''), 'the PlayReady checksum verifies with key_hex')
  t.equal(decodeWidevinePsshData(parsePsshBoxes(Buffer.from(ja.content_key_list[0].widevine.pssh, 'base64'))[0].data).cryptoPeriodIndex, 7)

  const cases: Array<[string, string, Record<string, string>, number, RegExp]> = [
    ['not JSON', '{', JSON_HEADERS, 400, /not valid JSON/],
    ['no content id', JSON.stringify({ drm_types: ['widevine'] }), JSON_HEADERS, 422, /content_id is required/],
    ['unknown DRM', JSON.stringify({ content_id: 'c', drm_types: ['betamax'] }), JSON_HEADERS, 422, /unknown DRM type "betamax"/],
    ['bad scheme', JSON.stringify({ content_id: 'c', encryption_scheme: 'cbc1' }), JSON_HEADERS, 422, /cenc or cbcs/],
    ['rotation without period', JSON.stringify({ content_id: 'c', key_rotation: true }), JSON_HEADERS, 422, /period_index is required/],
    ['XML body', '<a/>', { 'content-type': 'application/xml' }, 415, /application\/json/]
  ]
  for (const [name, body, headers, status, message] of cases) {
    const res = await request(url, { method: 'POST', headers, body })
    t.equal(res.statusCode, status, `${name}: status`)
    const parsed = await res.body.json() as { error: string }
    t.match(parsed.error, message, `${name}: message`)
  }
  const unauth = await request(`${proxy.url}/v2/keys?enc-token=nope`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ content_id: 'c' }) })
  t.equal(unauth.statusCode, 401)
  t.match((await unauth.body.json() as { error: string }).error, /neither a known proxy credential/)
})
