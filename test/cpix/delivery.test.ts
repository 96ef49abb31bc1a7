// Specification of encrypted key delivery in the CPIX core: which DeliveryKey certificates are accepted (AWS's rules),
// and what an encrypted reply looks like, checked with an independent decryptor (openssl CLI).

import t from 'tap'
import type { Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkCertificate, deliveryTarget } from '../../src/cpix/delivery.js'
import { encryptReply } from '../../src/cpix/encrypt-reply.js'
import { parseCpix } from '../../src/cpix/parse.js'
import { writeXml } from '../../src/cpix/xml.js'
import { isProxyError } from '../../src/errors.js'
import { decryptCpix, privateKeyFile } from '../helpers/cpix-decrypt.js'
import { FIXTURES } from '../helpers/fixtures.js'

const CERTS = join(FIXTURES, 'dashif', 'certs')
const cert = (name: string): Buffer => readFileSync(join(CERTS, `${name}.cer`))
const NOW = new Date('2026-06-01T00:00:00Z')

function refusal (t: Test, fn: () => unknown, code: string, message: RegExp, what: string): void {
  try {
    fn()
    t.fail(`${what}: accepted`)
  } catch (err) {
    t.ok(isProxyError(err), `${what}: a ProxyError`)
    if (!isProxyError(err)) return
    t.equal(err.code, code, `${what}: ${code}`)
    t.equal(err.status, 400, `${what}: 400`)
    t.match(err.message, message, `${what}: the message names the problem`)
  }
}

const request = (delivery: string): string => '<?xml version="1.0" encoding="UTF-8"?>' +
  '<cpix:CPIX id="content-1" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">' +
  delivery +
  '<cpix:ContentKeyList><cpix:ContentKey kid="11111111-2222-4333-8444-555555555555"/></cpix:ContentKeyList></cpix:CPIX>'
const deliveryData = (der: Buffer, id = 'packager-1'): string =>
  `<cpix:DeliveryData id="${id}"><cpix:DeliveryKey><ds:X509Data><ds:X509Certificate>${der.toString('base64')}</ds:X509Certificate></ds:X509Data></cpix:DeliveryKey></cpix:DeliveryData>`
const list = (inner: string): string => `<cpix:DeliveryDataList>${inner}</cpix:DeliveryDataList>`

t.test('certificates: a 4096-bit SHA-512 RSA certificate is accepted, AWS\'s refusals are 400s that name the problem', async t => {
  t.equal(checkCertificate(cert('Cert1'), NOW).publicKey.asymmetricKeyDetails?.modulusLength, 4096, 'DASH-IF Cert1 is accepted')
  refusal(t, () => checkCertificate(cert('WeakCert_Sha1'), NOW), 'DELIVERY_KEY_WEAK', /signed with sha1WithRSA.*SHA-1 and MD5/, 'DASH-IF WeakCert_Sha1')
  // DASH-IF's "small" key is 2048 bits (small next to its 4096-bit certificates): AWS's floor is 2048, so it is accepted.
  t.equal(checkCertificate(cert('WeakCert_SmallKey'), NOW).publicKey.asymmetricKeyDetails?.modulusLength, 2048, 'DASH-IF WeakCert_SmallKey (2048 bits) meets AWS\'s floor')
  // With the floor raised to DASH-IF's 4096 bits (DELIVERY_MIN_RSA_BITS), the same certificate is refused and Cert1 still passes.
  refusal(t, () => checkCertificate(cert('WeakCert_SmallKey'), NOW, 4096), 'DELIVERY_KEY_WEAK', /2048-bit RSA key; at least 4096 bits are needed \(DELIVERY_MIN_RSA_BITS\)/,
    'DASH-IF WeakCert_SmallKey under a 4096-bit floor')
  t.ok(checkCertificate(cert('Cert1'), NOW, 4096), 'DASH-IF Cert1 (4096 bits) meets a 4096-bit floor')
  refusal(t, () => checkCertificate(cert('Cert1'), new Date('2040-01-01T00:00:00Z')), 'DELIVERY_KEY_NOT_VALID_NOW', /expired at 2039-12-31T23:59:59/, 'expired (clock after notAfter)')
  refusal(t, () => checkCertificate(cert('Cert1'), new Date('2016-01-01T00:00:00Z')), 'DELIVERY_KEY_NOT_VALID_NOW', /not valid before 2016-08-11/, 'not yet valid')
  refusal(t, () => checkCertificate(Buffer.from('not a certificate'), NOW), 'DELIVERY_KEY_UNREADABLE', /not a DER X\.509/, 'garbage')
  refusal(t, () => checkCertificate(cert('Cert1').subarray(0, 400), NOW), 'DELIVERY_KEY_UNREADABLE', /not a DER X\.509/, 'truncated')

  const dir = t.testdir()
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'),
    '-outform', 'DER', '-out', join(dir, 'c.der'), '-subj', '/CN=ec', '-days', '3650'], { stdio: 'ignore' })
  refusal(t, () => checkCertificate(readFileSync(join(dir, 'c.der')), new Date()), 'DELIVERY_KEY_WEAK', /ec key; an RSA key is needed/, 'an EC certificate')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-sha256', '-nodes', '-keyout', join(dir, 'r.pem'),
    '-outform', 'DER', '-out', join(dir, 'r.der'), '-subj', '/CN=rsa', '-days', '3650'], { stdio: 'ignore' })
  t.ok(checkCertificate(readFileSync(join(dir, 'r.der')), new Date()), 'a fresh 2048-bit SHA-256 RSA certificate is accepted')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:1024', '-sha256', '-nodes', '-keyout', join(dir, 's.pem'),
    '-outform', 'DER', '-out', join(dir, 's.der'), '-subj', '/CN=small', '-days', '3650'], { stdio: 'ignore' })
  refusal(t, () => checkCertificate(readFileSync(join(dir, 's.der')), new Date()), 'DELIVERY_KEY_WEAK', /1024-bit RSA key; at least 2048/, 'a 1024-bit RSA certificate')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-md5', '-nodes', '-keyout', join(dir, 'm.pem'),
    '-outform', 'DER', '-out', join(dir, 'm.der'), '-subj', '/CN=md5', '-days', '3650'], { stdio: 'ignore' })
  refusal(t, () => checkCertificate(readFileSync(join(dir, 'm.der')), new Date()), 'DELIVERY_KEY_WEAK', /md5WithRSAEncryption/, 'an MD5-signed certificate')
})

t.test('the request: one DeliveryData with one certificate, or a clear 400', async t => {
  t.equal(deliveryTarget(parseCpix(request('')), NOW), undefined, 'no DeliveryDataList: keys in the clear')
  const target = deliveryTarget(parseCpix(request(list(deliveryData(cert('Cert1'))))), NOW)
  t.equal(target?.id, 'packager-1')
  t.same(target?.der, cert('Cert1'))
  refusal(t, () => deliveryTarget(parseCpix(request(list(''))), NOW), 'DELIVERY_KEY_MISSING', /no DeliveryData\/DeliveryKey/, 'an empty DeliveryDataList')
  refusal(t, () => deliveryTarget(parseCpix(request(list(deliveryData(cert('Cert1'), 'a') + deliveryData(cert('Cert2'), 'b')))), NOW),
    'MULTIPLE_DELIVERY_DATA', /2 recipients/, 'two recipients')
  refusal(t, () => deliveryTarget(parseCpix(request(list('<cpix:DeliveryData><cpix:DeliveryKey><ds:X509Data><ds:X509Certificate>@@</ds:X509Certificate></ds:X509Data></cpix:DeliveryKey></cpix:DeliveryData>'))), NOW),
    'DELIVERY_KEY_UNREADABLE', /not base64/, 'a certificate that is not base64')
  refusal(t, () => deliveryTarget(parseCpix(request(list(deliveryData(cert('WeakCert_Sha1'))))), NOW), 'DELIVERY_KEY_WEAK', /sha1/, 'a weak certificate in a request')
})

t.test('an encrypted reply: decrypts with openssl to the clear keys, every MAC verifies, no PlainValue, fresh keys each time', async t => {
  const key = privateKeyFile(join(CERTS, 'Cert1.pfx'), 'Cert1')
  t.teardown(key.remove)
  const clear = ['3rWoHYasQubO6HbJGrGtLw==', 'O5w9FdZiwmQK4uIXzAziaQ==']
  const kids = ['bd5adf51-cf04-410f-aac3-ec63a69e929e', 'd2920429-87ab-41e6-a4c5-a8c836b6312e']
  const reply = '<cpix:CPIX id="c" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc"><cpix:ContentKeyList>' +
    kids.map((kid, i) => `<cpix:ContentKey kid="${kid}" explicitIV="OFj2IjCsPJFfMAxmQxLGPw=="><cpix:Data><pskc:Secret><pskc:PlainValue>${clear[i]}</pskc:PlainValue></pskc:Secret></cpix:Data></cpix:ContentKey>`).join('') +
    '</cpix:ContentKeyList></cpix:CPIX>'
  const target = deliveryTarget(parseCpix(request(list(deliveryData(cert('Cert1'))))), NOW)
  if (target === undefined) throw new Error('no target')
  const seal = (): string => {
    const doc = parseCpix(reply)
    t.equal(encryptReply(doc, target, n => execFileSync('openssl', ['rand', String(n)])), true)
    return writeXml(doc.root)
  }
  const a = seal()
  const b = seal()
  t.notMatch(a, /PlainValue/, 'no PlainValue')
  t.match(a, /<cpix:DeliveryDataList><cpix:DeliveryData id="packager-1"><cpix:DeliveryKey><ds:X509Data><ds:X509Certificate>/, 'DeliveryData echoed with its id and certificate')
  t.match(a, /xmlns:enc="http:\/\/www\.w3\.org\/2001\/04\/xmlenc#"/, 'xmlenc declared')
  t.match(a, /<cpix:DocumentKey Algorithm="http:\/\/www\.w3\.org\/2001\/04\/xmlenc#aes256-cbc"><cpix:Data><pskc:Secret><pskc:EncryptedValue><enc:EncryptionMethod Algorithm="http:\/\/www\.w3\.org\/2001\/04\/xmlenc#rsa-oaep-mgf1p"\/>/)
  t.match(a, /<cpix:MACMethod Algorithm="http:\/\/www\.w3\.org\/2001\/04\/xmldsig-more#hmac-sha512"><cpix:Key><pskc:EncryptedValue><enc:EncryptionMethod Algorithm="http:\/\/www\.w3\.org\/2001\/04\/xmlenc#rsa-oaep-mgf1p"\/>/)
  t.same(decryptCpix(a, key.path), kids.map((kid, i) => ({ kid, key: clear[i], macOk: true })), 'openssl recovers the keys, MACs verify')
  t.same(decryptCpix(b, key.path).map(k => k.key), clear)
  t.not(/<enc:CipherValue>([^<]+)/.exec(a)?.[1], /<enc:CipherValue>([^<]+)/.exec(b)?.[1], 'a fresh document key per reply')

  const sealed = parseCpix(a)
  t.equal(encryptReply(sealed, target, () => { throw new Error('must not draw randomness') }), false, 'an already encrypted reply for this certificate passes as it is')
  const other = deliveryTarget(parseCpix(request(list(deliveryData(cert('Cert2'))))), NOW)
  if (other === undefined) throw new Error('no target')
  t.throws(() => encryptReply(parseCpix(a), other, n => Buffer.alloc(n)), { code: 'KMS_REPLY_INVALID', message: /not for the DeliveryKey certificate/ })
  t.throws(() => encryptReply(parseCpix(a.replace(/<pskc:ValueMAC>[^<]+<\/pskc:ValueMAC>/, '')), target, n => Buffer.alloc(n)), { code: 'KMS_REPLY_INVALID', message: /ValueMAC/ })
})
