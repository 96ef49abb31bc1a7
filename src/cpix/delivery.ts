// Encrypted key delivery, the request side: the recipient certificate a CPIX request names, checked as AWS requires.

import { X509Certificate } from 'node:crypto'
import { ProxyError } from '../errors.js'
import { decodeBase64 } from './base64.js'
import { CPIX_NS } from './model.js'
import type { CpixDocument } from './model.js'
import { childElements, firstChild, textContent, writeXml } from './xml.js'

export const DSIG_NS = 'http://www.w3.org/2000/09/xmldsig#'

/**
 * Smallest RSA modulus accepted by default, in bits: AWS asks for "a 2048 RSA, SHA-512-signed certificate". The DASH-IF
 * test vectors call 2048 bits small (their own certificates are 4096-bit); DELIVERY_MIN_RSA_BITS raises the floor.
 */
const DEFAULT_MIN_RSA_BITS = 2048

/** Signature algorithms AWS refuses (SHA-1 and MD5 based), by OID. */
const WEAK_SIGNATURES: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.2': 'md2WithRSAEncryption',
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.3.14.3.2.29': 'sha1WithRSASignature',
  '1.2.840.10040.4.3': 'dsa-with-SHA1',
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1'
}

/** The recipient of an encrypted reply: its DeliveryData id and its certificate (DER, and parsed). */
export interface DeliveryTarget {
  id?: string
  der: Buffer
  certificate: X509Certificate
}

/**
 * The recipient a request asks keys to be encrypted for, or undefined when it has no DeliveryDataList.
 * Throws a 400 naming the problem: no certificate, more than one recipient, or a certificate AWS would refuse.
 */
export function deliveryTarget (doc: CpixDocument, now: Date, minRsaBits = DEFAULT_MIN_RSA_BITS): DeliveryTarget | undefined {
  const list = firstChild(doc.root, CPIX_NS, 'DeliveryDataList')
  if (list === undefined) return undefined
  const data = childElements(list, CPIX_NS, 'DeliveryData')
  if (data.length > 1) {
    throw new ProxyError('MULTIPLE_DELIVERY_DATA', `DeliveryDataList names ${data.length} recipients; speke-proxy encrypts keys for one DeliveryData only`)
  }
  const key = data[0] === undefined ? undefined : firstChild(data[0], CPIX_NS, 'DeliveryKey')
  const x509 = key === undefined ? [] : childElements(key, DSIG_NS, 'X509Data').flatMap(d => childElements(d, DSIG_NS, 'X509Certificate'))
  if (x509.length !== 1) {
    const what = x509.length === 0 ? 'no' : `${x509.length}`
    throw new ProxyError('DELIVERY_KEY_MISSING',
      `DeliveryDataList has ${what} DeliveryData/DeliveryKey/ds:X509Data/ds:X509Certificate; give exactly one recipient certificate, or leave DeliveryDataList out`)
  }
  const der = decodeBase64(textContent(x509[0]))
  if (der === undefined || der.length === 0) throw new ProxyError('DELIVERY_KEY_UNREADABLE', 'The DeliveryKey certificate is not base64')
  return { id: data[0].attrs.id, der, certificate: checkCertificate(der, now, minRsaBits) }
}

/** The request as the key provider gets it: the same document without its DeliveryDataList (plain keys are asked for). */
export function withoutDeliveryData (doc: CpixDocument): string {
  const root = { ...doc.root, children: doc.root.children.filter(c => !(c.kind === 'element' && c.ns === CPIX_NS && c.local === 'DeliveryDataList')) }
  return writeXml(root)
}

/** Parses a DER certificate and refuses what AWS refuses: not RSA, under `minRsaBits`, signed with SHA-1 or MD5, not valid at `now`. */
export function checkCertificate (der: Buffer, now: Date, minRsaBits = DEFAULT_MIN_RSA_BITS): X509Certificate {
  let certificate: X509Certificate
  let signature: string | undefined
  try {
    certificate = new X509Certificate(der)
    signature = signatureAlgorithmOid(der)
  } catch {
    throw new ProxyError('DELIVERY_KEY_UNREADABLE', 'The DeliveryKey certificate is not a DER X.509 certificate')
  }
  const key = certificate.publicKey
  if (key.asymmetricKeyType !== 'rsa') {
    throw new ProxyError('DELIVERY_KEY_WEAK', `The DeliveryKey certificate has a ${key.asymmetricKeyType ?? 'unknown'} key; an RSA key is needed`)
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0
  if (bits < minRsaBits) {
    throw new ProxyError('DELIVERY_KEY_WEAK', `The DeliveryKey certificate has a ${bits}-bit RSA key; at least ${minRsaBits} bits are needed (DELIVERY_MIN_RSA_BITS)`)
  }
  if (signature === undefined) throw new ProxyError('DELIVERY_KEY_UNREADABLE', 'The DeliveryKey certificate has no readable signature algorithm')
  const weak = WEAK_SIGNATURES[signature]
  if (weak !== undefined) throw new ProxyError('DELIVERY_KEY_WEAK', `The DeliveryKey certificate is signed with ${weak}; SHA-1 and MD5 signatures are refused`)
  const from = Date.parse(certificate.validFrom)
  const to = Date.parse(certificate.validTo)
  if (Number.isNaN(from) || Number.isNaN(to)) throw new ProxyError('DELIVERY_KEY_UNREADABLE', 'The DeliveryKey certificate has unreadable validity dates')
  if (now.getTime() < from) throw new ProxyError('DELIVERY_KEY_NOT_VALID_NOW', `The DeliveryKey certificate is not valid before ${new Date(from).toISOString()}`)
  if (now.getTime() > to) throw new ProxyError('DELIVERY_KEY_NOT_VALID_NOW', `The DeliveryKey certificate expired at ${new Date(to).toISOString()}`)
  return certificate
}

interface Tlv { tag: number, start: number, end: number }

/** One DER tag-length-value at `at`: where its content starts and ends. Throws on anything malformed. */
function readTlv (der: Buffer, at: number): Tlv {
  if (at + 2 > der.length) throw new RangeError('truncated DER')
  const tag = der[at]
  let length = der[at + 1]
  let start = at + 2
  if (length & 0x80) {
    const count = length & 0x7f
    if (count === 0 || count > 4 || start + count > der.length) throw new RangeError('bad DER length')
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + der[start + i]
    start += count
  }
  if (start + length > der.length) throw new RangeError('truncated DER')
  return { tag, start, end: start + length }
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, signature }: the algorithm's OID. */
function signatureAlgorithmOid (der: Buffer): string | undefined {
  const certificate = readTlv(der, 0)
  const tbs = readTlv(der, certificate.start)
  const algorithm = readTlv(der, tbs.end)
  if (certificate.tag !== 0x30 || tbs.tag !== 0x30 || algorithm.tag !== 0x30) return undefined
  const oid = readTlv(der, algorithm.start)
  return oid.tag === 0x06 ? decodeOid(der.subarray(oid.start, oid.end)) : undefined
}

function decodeOid (bytes: Buffer): string {
  if (bytes.length === 0) throw new RangeError('empty OID')
  const parts = [Math.floor(Math.min(bytes[0], 80) / 40), bytes[0] - 40 * Math.floor(Math.min(bytes[0], 80) / 40)]
  let value = 0
  for (const byte of bytes.subarray(1)) {
    value = value * 128 + (byte & 0x7f)
    if ((byte & 0x80) === 0) {
      parts.push(value)
      value = 0
    }
  }
  return parts.join('.')
}
