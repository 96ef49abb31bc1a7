// Encrypted key delivery, the reply side: content keys sealed for the recipient certificate in AWS's CPIX dialect.

import { constants, createCipheriv, createHmac, publicEncrypt } from 'node:crypto'
import { ProxyError } from '../errors.js'
import { decodeBase64, encodeBase64 } from './base64.js'
import { DSIG_NS } from './delivery.js'
import type { DeliveryTarget } from './delivery.js'
import { CPIX_NS, PSKC_NS } from './model.js'
import type { CpixDocument } from './model.js'
import { childElements, firstChild, makeElement, qualified, removeChild, textContent } from './xml.js'
import type { XmlElement, XmlNode } from './xml.js'

const XENC_NS = 'http://www.w3.org/2001/04/xmlenc#'
const AES256_CBC = 'http://www.w3.org/2001/04/xmlenc#aes256-cbc'
const RSA_OAEP_MGF1P = 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p'
const HMAC_SHA512 = 'http://www.w3.org/2001/04/xmldsig-more#hmac-sha512'

/** Cryptographically random bytes (crypto.randomBytes; tests pass their own). */
export type RandomBytes = (size: number) => Buffer

const problem = (message: string): ProxyError => new ProxyError('KMS_REPLY_INVALID', `KMS reply: ${message}`)

/**
 * Seals the clear content keys of `reply` (edited in place) for `target`: a fresh 256-bit document key and
 * 512-bit MAC key, each RSA-OAEP encrypted under DeliveryData; every key as EncryptedValue (IV ‖ AES-256-CBC)
 * with ValueMAC (HMAC-SHA512 of IV ‖ ciphertext). Returns false, the reply untouched, when the KMS already
 * encrypted its keys for this certificate (checked structurally, never decrypted); throws a 502 when a reply
 * mixes clear and encrypted keys, is encrypted for another recipient, or would still carry a PlainValue.
 */
export function encryptReply (reply: CpixDocument, target: DeliveryTarget, random: RandomBytes): boolean {
  if (reply.contentKeys.some(k => k.encrypted)) {
    checkEncryptedReply(reply, target)
    return false
  }
  const root = reply.root
  const ns = (uri: string, preferred: string): ((local: string) => string) => {
    const prefix = prefixFor(root, uri, preferred)
    return local => qualified(prefix, local)
  }
  const cpix = ns(CPIX_NS, 'cpix')
  const pskc = ns(PSKC_NS, 'pskc')
  const enc = ns(XENC_NS, 'enc')
  const ds = ns(DSIG_NS, 'ds')

  const documentKey = random(32)
  const macKey = random(64)
  for (const key of reply.contentKeys) {
    const secret = secretOf(key.element)
    const plain = secret === undefined ? undefined : firstChild(secret, PSKC_NS, 'PlainValue')
    if (secret === undefined || plain === undefined) continue
    const bytes = decodeBase64(textContent(plain))
    if (bytes === undefined) throw problem(`the key for kid ${key.kid} is not base64`)
    const iv = random(16)
    const cipher = createCipheriv('aes-256-cbc', documentKey, iv)
    const sealed = Buffer.concat([iv, cipher.update(bytes), cipher.final()])
    const mac = createHmac('sha512', macKey).update(sealed).digest()
    secret.children = [
      encryptedValue(pskc, enc, AES256_CBC, sealed),
      el(pskc('ValueMAC'), PSKC_NS, {}, [text(encodeBase64(mac))])
    ]
  }

  const recipient = (value: Buffer): Buffer => publicEncrypt({ key: target.certificate.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, value)
  const deliveryData = el(cpix('DeliveryData'), CPIX_NS, target.id === undefined ? {} : { id: target.id }, [
    el(cpix('DeliveryKey'), CPIX_NS, {}, [
      el(ds('X509Data'), DSIG_NS, {}, [el(ds('X509Certificate'), DSIG_NS, {}, [text(encodeBase64(target.der))])])
    ]),
    el(cpix('DocumentKey'), CPIX_NS, { Algorithm: AES256_CBC }, [
      el(cpix('Data'), CPIX_NS, {}, [
        el(pskc('Secret'), PSKC_NS, {}, [encryptedValue(pskc, enc, RSA_OAEP_MGF1P, recipient(documentKey))])
      ])
    ]),
    el(cpix('MACMethod'), CPIX_NS, { Algorithm: HMAC_SHA512 }, [
      el(cpix('Key'), CPIX_NS, {}, [encryptedValue(pskc, enc, RSA_OAEP_MGF1P, recipient(macKey))])
    ])
  ])
  const old = firstChild(root, CPIX_NS, 'DeliveryDataList')
  if (old !== undefined) removeChild(root, old)
  const first = root.children.findIndex(c => c.kind === 'element')
  root.children.splice(first === -1 ? root.children.length : first, 0, el(cpix('DeliveryDataList'), CPIX_NS, {}, [deliveryData]))
  if (hasPlainValue(root)) throw problem('a PlainValue outside the ContentKey list would leave a key in the clear')
  return true
}

/** An upstream that encrypts already: for this certificate, every key sealed and MACed, nothing in the clear. */
function checkEncryptedReply (reply: CpixDocument, target: DeliveryTarget): void {
  for (const key of reply.contentKeys) {
    const secret = secretOf(key.element)
    const value = secret === undefined ? undefined : firstChild(secret, PSKC_NS, 'EncryptedValue')
    const method = value === undefined ? undefined : firstChild(value, XENC_NS, 'EncryptionMethod')
    const cipherData = value === undefined ? undefined : firstChild(value, XENC_NS, 'CipherData')
    const cipher = cipherData === undefined ? undefined : firstChild(cipherData, XENC_NS, 'CipherValue')
    const mac = secret === undefined ? undefined : firstChild(secret, PSKC_NS, 'ValueMAC')
    if (method?.attrs.Algorithm !== AES256_CBC) throw problem(`ContentKey ${key.kid} is not encrypted with ${AES256_CBC}`)
    if (cipher === undefined || (decodeBase64(textContent(cipher))?.length ?? 0) < 32) throw problem(`ContentKey ${key.kid} has no usable CipherValue`)
    if (mac === undefined || decodeBase64(textContent(mac))?.length !== 64) throw problem(`ContentKey ${key.kid} has no HMAC-SHA512 ValueMAC`)
  }
  const list = firstChild(reply.root, CPIX_NS, 'DeliveryDataList')
  const data = list === undefined ? [] : childElements(list, CPIX_NS, 'DeliveryData')
  const certificates = data.flatMap(d => childElements(firstChild(d, CPIX_NS, 'DeliveryKey') ?? d, DSIG_NS, 'X509Data'))
    .flatMap(x => childElements(x, DSIG_NS, 'X509Certificate'))
    .map(c => decodeBase64(textContent(c)))
  if (!certificates.some(c => c?.equals(target.der) === true)) throw problem('its keys are encrypted, but not for the DeliveryKey certificate of the request')
  const ours = data.find(d => firstChild(d, CPIX_NS, 'DocumentKey') !== undefined && firstChild(d, CPIX_NS, 'MACMethod') !== undefined)
  if (ours === undefined) throw problem('its keys are encrypted, but DeliveryData has no DocumentKey and MACMethod')
  if (hasPlainValue(reply.root)) throw problem('it mixes encrypted keys and keys in the clear')
}

function secretOf (contentKey: XmlElement): XmlElement | undefined {
  const data = firstChild(contentKey, CPIX_NS, 'Data')
  return data === undefined ? undefined : firstChild(data, PSKC_NS, 'Secret')
}

function hasPlainValue (el: XmlElement): boolean {
  return childElements(el).some(c => (c.ns === PSKC_NS && c.local === 'PlainValue') || hasPlainValue(c))
}

function encryptedValue (pskc: (l: string) => string, enc: (l: string) => string, algorithm: string, value: Buffer): XmlElement {
  return el(pskc('EncryptedValue'), PSKC_NS, {}, [
    el(enc('EncryptionMethod'), XENC_NS, { Algorithm: algorithm }),
    el(enc('CipherData'), XENC_NS, {}, [el(enc('CipherValue'), XENC_NS, {}, [text(encodeBase64(value))])])
  ])
}

function el (name: string, ns: string, attrs: Record<string, string> = {}, children: XmlNode[] = []): XmlElement {
  return makeElement(name, ns, attrs, children)
}

function text (value: string): XmlNode {
  return { kind: 'text', text: value }
}

/** The prefix the root binds `uri` to, declaring `preferred` (or a free variant of it) on the root when none does. */
function prefixFor (root: XmlElement, uri: string, preferred: string): string {
  if (root.attrs.xmlns === uri) return ''
  for (const [name, value] of Object.entries(root.attrs)) {
    if (name.startsWith('xmlns:') && value === uri) return name.slice(6)
  }
  let prefix = preferred
  for (let n = 2; root.attrs[`xmlns:${prefix}`] !== undefined; n++) prefix = `${preferred}${n}`
  root.attrs[`xmlns:${prefix}`] = uri
  return prefix
}
