// Specification of enc-token decoding: base64 (either alphabet) of JSON with a string site_id and access_key, or nothing.

import t from 'tap'
import { decodeEncToken, encodeEncToken } from '../../src/tenants/enc-token.js'
import { DEMO_TOKEN } from '../helpers/fixtures.js'

t.test('a PallyCon enc-token yields its site id and access key', async t => {
  t.same(decodeEncToken(DEMO_TOKEN), { siteId: 'DEMO', accessKey: 'dsIolc7h1G8TUmI17bYwxhUuNFoFce72cx9eMOk62wb8VN2PdgpWYHIxSEX9f0Hi' })
  t.same(decodeEncToken(encodeEncToken('ACME', 'key/with+chars')), { siteId: 'ACME', accessKey: 'key/with+chars' }, 'encode and decode are inverses')
})

t.test('spellings the same token travels in: surrounding spaces, url-safe alphabet, no padding', async t => {
  const token = encodeEncToken('ACME', 'k'.repeat(40) + '?>')
  t.same(decodeEncToken(`  ${token}\n`), { siteId: 'ACME', accessKey: 'k'.repeat(40) + '?>' })
  t.same(decodeEncToken(token.replace(/\+/g, '-').replace(/\//g, '_')), decodeEncToken(token))
  t.same(decodeEncToken(token.replace(/=+$/, '')), decodeEncToken(token))
})

t.test('anything else is not an enc-token', async t => {
  const b64 = (text: string): string => Buffer.from(text).toString('base64')
  const cases: Array<[string, string]> = [
    ['', 'empty'],
    ['not base64!', 'characters outside base64'],
    [b64('not json'), 'base64 of text that is not JSON'],
    [b64('null'), 'JSON null'],
    [b64('"DEMO"'), 'a JSON string'],
    [b64('{"site_id":"DEMO"}'), 'no access_key'],
    [b64('{"access_key":"k"}'), 'no site_id'],
    [b64('{"site_id":"","access_key":"k"}'), 'an empty site_id'],
    [b64('{"site_id":"DEMO","access_key":""}'), 'an empty access_key'],
    [b64('{"site_id":7,"access_key":"k"}'), 'a site_id that is not a string'],
    ['spk_' + 'a'.repeat(43), 'a proxy credential']
  ]
  for (const [token, what] of cases) t.equal(decodeEncToken(token), undefined, what)
})
