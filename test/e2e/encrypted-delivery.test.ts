// Encrypted content key delivery end to end: SPEKE v1 and v2 callers that name a DeliveryKey certificate get their keys
// sealed for it, from the embedded provider and from a PallyCon KMS (faked on loopback), checked by an independent
// decryptor (openssl CLI) that is first proven on the DASH-IF EncryptedContentKeys vector.

import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { createHmac } from 'node:crypto'
import { join } from 'node:path'
import { request } from 'undici'
import { localProvider } from '../../src/kms/local/provider.js'
import type { Dialect } from '../../src/protocol.js'
import { decryptCpix, privateKeyFile } from '../helpers/cpix-decrypt.js'
import { startFakeKms } from '../helpers/fake-kms.js'
import { DEMO_TOKEN, FIXTURES, PROJECT_ROOT, fixture, fixtureText } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'
import type { RunningProxy } from '../helpers/proxy.js'
import { xsdErrorsMany } from '../helpers/xsd.js'

const CERTS = join(FIXTURES, 'dashif', 'certs')
const DSIG = 'http://www.w3.org/2000/09/xmldsig#'

/** The decryptor runs openssl synchronously in this process: the proxies here must not shed load for it. */
const ENV = { AUDIT: 'off', MAX_EVENT_LOOP_DELAY_MS: '0', RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_IP_PER_MINUTE: '0' }

const key = privateKeyFile(join(CERTS, 'Cert1.pfx'), 'Cert1')
t.teardown(key.remove)

t.test('the decryptor, proven on DASH-IF EncryptedContentKeys.xml with Cert1\'s private key', async t => {
  const keys = decryptCpix(fixtureText('dashif/EncryptedContentKeys.xml'), key.path)
  t.same(keys, [
    { kid: 'bd5adf51-cf04-410f-aac3-ec63a69e929e', key: '3rWoHYasQubO6HbJGrGtLw==', macOk: true },
    { kid: 'd2920429-87ab-41e6-a4c5-a8c836b6312e', key: 'O5w9FdZiwmQK4uIXzAziaQ==', macOk: true },
    { kid: 'e17ba4b8-faff-4d30-bcba-7485e3f2e884', key: 'Cwu/3hSBBRQ7SurBdZD5ow==', macOk: true },
    { kid: '0ae6b9ad-92d2-4ebe-882b-1d07dee70715', key: 'FB6/Eck9Y9SXy6bY8UU/Mw==', macOk: true }
  ], 'the known clear keys of the Readme, every MAC verifies')
  t.notOk(decryptCpix(fixtureText('dashif/Invalid_WrongMac.xml'), key.path).every(k => k.macOk), 'Invalid_WrongMac: the wrong MAC is caught')
})

/** The request with a DeliveryDataList naming `certificate` put first in the document. */
function withCertificate (body: string, certificate: Buffer): Buffer {
  const list = `<cpix:DeliveryDataList xmlns:ds="${DSIG}"><cpix:DeliveryData id="packager-1"><cpix:DeliveryKey><ds:X509Data>` +
    `<ds:X509Certificate>${certificate.toString('base64')}</ds:X509Certificate></ds:X509Data></cpix:DeliveryKey></cpix:DeliveryData></cpix:DeliveryDataList>`
  return Buffer.from(body.replace(/<cpix:CPIX\b[^>]*>/, open => open + list))
}

function plainKeys (xml: string): Array<{ kid: string, key: string }> {
  const pattern = /<cpix:ContentKey\b[^>]*?kid="([^"]+)"[^>]*>[\s\S]*?<pskc:PlainValue>([^<]+)<\/pskc:PlainValue>/g
  return [...xml.matchAll(pattern)].map(m => ({ kid: m[1], key: m[2] }))
}

interface Answer { status: number, text: string, code: string | undefined }

async function post (proxy: RunningProxy, body: Buffer, spekeVersion: string | undefined): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/xml' }
  if (spekeVersion !== undefined) headers['x-speke-version'] = spekeVersion
  const res = await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers, body })
  const code = res.headers['x-speke-proxy-error']
  return { status: res.statusCode, text: await res.body.text(), code: typeof code === 'string' ? code : undefined }
}

const cases = [
  { name: 'SPEKE v1', spekeVersion: undefined, body: fixtureText('aws-speke-v1/aws-doc-v1-live-request-aes128-sampleaes-widevine-playready.xml') },
  { name: 'SPEKE v2.0', spekeVersion: '2.0', body: readFileSync(join(PROJECT_ROOT, 'examples', 'speke-v2.0-multi-key.xml'), 'utf8') }
]

t.test('both upstreams, SPEKE v1 and v2: the same keys sealed for the certificate, MACs verify, tampering is caught', async t => {
  const provider = localProvider({ secret: Buffer.alloc(32, 7), playReadyLaUrl: 'https://license.example.com/pr', hlsKeyUrlBase: 'https://keys.example.com/hls', widevineProvider: 'example' })
  const kms = await startFakeKms((req, res) => {
    const version = req.headers['x-speke-version']
    const dialect: Dialect = version === '2.0' ? 'speke-v2.0' : version === '2.1' ? 'speke-v2.1' : 'speke-v1'
    provider.getKeys({ route: 'speke', dialect, token: DEMO_TOKEN, spekeVersion: typeof version === 'string' ? version : undefined, body: req.body }, AbortSignal.timeout(3000))
      .then(reply => { res.writeHead(reply.status, { 'content-type': reply.contentType ?? 'application/xml' }); res.end(reply.body) }, () => { res.writeHead(500); res.end() })
  })
  const local = await startProxy(ENV)
  const pallycon = await startProxy({ ...ENV, KMS_URL: kms.url, KMS_TIMEOUT_MS: '3000' })
  t.teardown(async () => { await local.close(); await pallycon.close(); await kms.close() })
  const cert1 = fixture('dashif/certs/Cert1.cer')
  const v2Replies: string[] = []

  for (const [upstream, proxy] of [['embedded provider', local], ['PallyCon KMS (fake)', pallycon]] as const) {
    for (const c of cases) {
      const label = `${upstream}, ${c.name}`
      const seen = kms.received.length
      const plain = await post(proxy, Buffer.from(c.body), c.spekeVersion)
      t.equal(plain.status, 200, `${label}: plain request → 200`)
      const clear = plainKeys(plain.text)
      t.ok(clear.length > 0, `${label}: the plain reply carries keys`)

      const sealed = await post(proxy, withCertificate(c.body, cert1), c.spekeVersion)
      t.equal(sealed.status, 200, `${label}: request with a certificate → 200`)
      t.notMatch(sealed.text, /PlainValue/, `${label}: no PlainValue anywhere`)
      for (const k of clear) t.notOk(sealed.text.includes(k.key), `${label}: key ${k.kid} is not in the encrypted reply`)
      t.match(sealed.text, /<cpix:DeliveryData id="packager-1"><cpix:DeliveryKey><ds:X509Data><ds:X509Certificate>/, `${label}: DeliveryData echoed`)
      const decrypted = decryptCpix(sealed.text, key.path)
      t.same(decrypted.map(k => ({ kid: k.kid, key: k.key })), clear, `${label}: the same keys after decryption`)
      t.ok(decrypted.every(k => k.macOk), `${label}: every MAC verifies`)

      const at = sealed.text.indexOf('<cpix:ContentKeyList')
      const flipped = sealed.text.slice(0, at) + sealed.text.slice(at).replace(/(?<=<enc:CipherValue>)[^<]+/, value => {
        const bytes = Buffer.from(value, 'base64')
        bytes[20] ^= 0x01
        return bytes.toString('base64')
      })
      const tampered = decryptCpix(flipped, key.path)
      t.equal(tampered.filter(k => !k.macOk).length, 1, `${label}: a flipped ciphertext byte is caught by the MAC`)

      if (upstream === 'PallyCon KMS (fake)') {
        const asked = kms.received.slice(seen).map(r => r.body.toString('utf8'))
        t.equal(asked.length, 2, `${label}: the KMS was asked twice`)
        t.notMatch(asked[1], /DeliveryData|X509Certificate/, `${label}: the KMS is asked for plain keys (no DeliveryDataList)`)
      }
      if (c.spekeVersion !== undefined) v2Replies.push(plain.text, sealed.text)
      for (const line of proxy.logs) for (const k of clear) t.notOk(line.includes(k.key), `${label}: no key in the log`)
    }
  }

  // A second opinion: the CPIX 2.3 schema finds nothing in the encrypted v2 replies it does not find in the plain ones.
  const errors = await xsdErrorsMany(v2Replies.map(xml => ({ xml, cpixVersion: '2.3' })))
  for (let i = 0; i < errors.length; i += 2) t.same(errors[i + 1], errors[i], `XSD: encrypted reply #${i / 2} has the errors of its plain reply (${errors[i].length})`)
  t.same(errors[1], [], 'XSD: the encrypted SPEKE v2 reply is valid CPIX 2.3')
})

t.test('a certificate AWS would refuse is a 400 naming the problem, and the KMS is never asked', async t => {
  const kms = await startFakeKms((_req, res) => { res.writeHead(500); res.end() })
  const proxy = await startProxy({ ...ENV, KMS_URL: kms.url, KMS_TIMEOUT_MS: '3000' })
  t.teardown(async () => { await proxy.close(); await kms.close() })
  for (const c of cases) {
    const weak = await post(proxy, withCertificate(c.body, fixture('dashif/certs/WeakCert_Sha1.cer')), c.spekeVersion)
    t.equal(weak.status, 400, `${c.name}: WeakCert_Sha1 → 400`)
    t.equal(weak.code, 'DELIVERY_KEY_WEAK')
    t.match(weak.text, /signed with sha1WithRSA/)
    const garbage = await post(proxy, withCertificate(c.body, Buffer.from('not a certificate')), c.spekeVersion)
    t.equal(garbage.status, 400, `${c.name}: an unreadable certificate → 400`)
    t.equal(garbage.code, 'DELIVERY_KEY_UNREADABLE')
  }
  t.equal(kms.received.length, 0, 'nothing reached the KMS')
})

t.test('examples/speke-v2.0-encrypted-response.xml is a real answer to examples/speke-v2.0-encrypted.xml', async t => {
  // How examples/README.md says it was made: KMS_URL=local with this LOCAL_KMS_SECRET, the README's pass-through token.
  const secret = Buffer.from('speke-proxy example secret: never use in production')
  const token = Buffer.from(JSON.stringify({ site_id: 'DEMO', access_key: 'any' })).toString('base64')
  const request = readFileSync(join(PROJECT_ROOT, 'examples', 'speke-v2.0-encrypted.xml'), 'utf8')
  const answer = readFileSync(join(PROJECT_ROOT, 'examples', 'speke-v2.0-encrypted-response.xml'), 'utf8')
  const provider = localProvider({ secret, playReadyLaUrl: 'https://license.pallycon.com/ri/licenseManager.do', hlsKeyUrlBase: 'https://localhost:8080/hls/key', widevineProvider: 'inkaentworks' })
  const plainRequest = Buffer.from(request.replace(/<cpix:DeliveryDataList>[\s\S]*<\/cpix:DeliveryDataList>/, ''))
  const plain = await provider.getKeys({ route: 'speke', dialect: 'speke-v2.0', token, spekeVersion: '2.0', body: plainRequest }, AbortSignal.timeout(3000))
  const expected = plainKeys(plain.body.toString('utf8'))
  t.equal(expected.length, 2, 'the request asks for two keys')
  t.same(decryptCpix(answer, key.path), expected.map(k => ({ ...k, macOk: true })), 'Cert1\'s private key recovers the embedded provider\'s keys, every MAC verifies')
  t.notMatch(answer, /PlainValue/, 'no PlainValue')
  t.match(answer, /<cpix:DeliveryData id="example-packager">/, 'the DeliveryData comes back with its id')
})

t.test('DELIVERY_MIN_RSA_BITS=4096 (DASH-IF\'s size): WeakCert_SmallKey is a 400 before the KMS is asked; the default (AWS\'s 2048) takes it', async t => {
  const kms = await startFakeKms((_req, res) => { res.writeHead(500); res.end() })
  const strict = await startProxy({ ...ENV, KMS_URL: kms.url, KMS_TIMEOUT_MS: '3000', DELIVERY_MIN_RSA_BITS: '4096' })
  const aws = await startProxy(ENV)
  t.teardown(async () => { await strict.close(); await aws.close(); await kms.close() })
  const small = fixture('dashif/certs/WeakCert_SmallKey.cer')
  for (const c of cases) {
    const refused = await post(strict, withCertificate(c.body, small), c.spekeVersion)
    t.equal(refused.status, 400, `${c.name}: WeakCert_SmallKey under a 4096-bit floor → 400`)
    t.equal(refused.code, 'DELIVERY_KEY_WEAK')
    t.match(refused.text, /2048-bit RSA key; at least 4096 bits are needed/)
    const accepted = await post(aws, withCertificate(c.body, small), c.spekeVersion)
    t.equal(accepted.status, 200, `${c.name}: WeakCert_SmallKey under the default floor → 200`)
    t.notMatch(accepted.text, /PlainValue/, `${c.name}: and its keys are sealed`)
  }
  t.equal(kms.received.length, 0, 'nothing reached the KMS')
})

t.test('with the audit on: fingerprints are of the plain keys the packager decrypts, and no key is stored or logged in any form', async t => {
  const dataDir = t.testdir()
  const hmacKey = Buffer.alloc(32, 5)
  const proxy = await startProxy({ ...ENV, AUDIT: 'on', DATA_DIR: dataDir, AUDIT_HMAC_KEY: hmacKey.toString('base64') })
  const answer = await post(proxy, withCertificate(cases[1].body, fixture('dashif/certs/Cert1.cer')), '2.0')
  t.equal(answer.status, 200)
  t.notMatch(answer.text, /PlainValue/, 'the reply holds no clear key')
  const keys = decryptCpix(answer.text, key.path)
  t.equal(keys.length, 2, 'two keys sealed for Cert1')
  t.ok(keys.every(k => k.macOk), 'every MAC verifies')
  await proxy.close()

  const auditDir = join(dataDir, 'audit')
  const files = readdirSync(auditDir).filter(f => f.endsWith('.jsonl'))
  const records = files.flatMap(f => readFileSync(join(auditDir, f), 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l) as { route: string, key_fingerprints: string[] }))
  const keyRecord = records.find(r => r.route === 'speke')
  // The fingerprint an auditor computes from a key the packager decrypted: HMAC-SHA256 with the audit key (independent of src/).
  const expected = keys.map(k => `hmac-sha256:${createHmac('sha256', hmacKey).update(Buffer.from(k.key, 'base64')).digest('hex')}`)
  t.same(keyRecord?.key_fingerprints, expected, 'one fingerprint per plain key, in order')
  const stored = files.map(f => readFileSync(join(auditDir, f), 'utf8')).join('\n') + proxy.logs.join('')
  for (const k of keys) {
    const raw = Buffer.from(k.key, 'base64')
    for (const spelling of [k.key, raw.toString('hex'), raw.toString('hex').toUpperCase(), raw.toString('base64url')]) {
      t.notOk(stored.includes(spelling), `key ${k.kid} is in neither the audit files nor the log (${spelling.length} characters looked for)`)
    }
  }
})
