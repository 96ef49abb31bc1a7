// An independent CPIX decryptor for tests: the openssl CLI for every cryptographic step and regular expressions
// for the XML, so that nothing of the proxy's own code (nor node:crypto, which the proxy uses) checks the proxy.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface DecryptedKey {
  kid: string
  /** The content key, base64 ('' when the ciphertext does not decrypt, e.g. after tampering). */
  key: string
  /** Whether ValueMAC matched HMAC-SHA512(MAC key, IV ‖ ciphertext). */
  macOk: boolean
}

function openssl (args: string[], input?: Buffer): Buffer {
  return execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 20 })
}

/** The private key of a PKCS#12 file as PEM, written to a temporary file whose path is returned. */
export function privateKeyFile (pfxPath: string, password: string): { path: string, remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'cpix-decrypt-'))
  const path = join(dir, 'key.pem')
  writeFileSync(path, openssl(['pkcs12', '-in', pfxPath, '-nocerts', '-nodes', '-passin', `pass:${password}`]), { mode: 0o600 })
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

function rsaOaepDecrypt (keyPath: string, cipher: Buffer): Buffer {
  return openssl(['pkeyutl', '-decrypt', '-inkey', keyPath, '-pkeyopt', 'rsa_padding_mode:oaep'], cipher)
}

function aes256CbcDecrypt (key: Buffer, iv: Buffer, cipher: Buffer): Buffer {
  return openssl(['enc', '-d', '-aes-256-cbc', '-K', key.toString('hex'), '-iv', iv.toString('hex')], cipher)
}

function hmacSha512 (key: Buffer, data: Buffer): Buffer {
  return openssl(['dgst', '-sha512', '-mac', 'HMAC', '-macopt', `hexkey:${key.toString('hex')}`, '-binary'], data)
}

const P = '(?:[A-Za-z_][\\w.-]*:)?'

/** The inner text of the first element with local name `local` inside `xml`. */
function inner (xml: string, local: string): string | undefined {
  return new RegExp(`<${P}${local}\\b[^>]*?(?:/>|>([\\s\\S]*?)</${P}${local}>)`).exec(xml)?.[1]
}

function cipherValue (xml: string | undefined, where: string): Buffer {
  const text = xml === undefined ? undefined : inner(xml, 'CipherValue')
  if (text === undefined) throw new Error(`no CipherValue in ${where}`)
  return Buffer.from(text.replace(/\s+/g, ''), 'base64')
}

/**
 * Decrypts every ContentKey of an encrypted CPIX document with the recipient's private key: the document key
 * and MAC key from DeliveryData (either MACMethod/Key shape: DASH-IF's EncryptedData children, or AWS's
 * pskc:EncryptedValue), then each key's IV ‖ ciphertext, checking its ValueMAC.
 */
export function decryptCpix (xml: string, keyPath: string): DecryptedKey[] {
  const delivery = inner(xml, 'DeliveryData')
  if (delivery === undefined) throw new Error('no DeliveryData')
  const documentKey = rsaOaepDecrypt(keyPath, cipherValue(inner(delivery, 'DocumentKey'), 'DocumentKey'))
  const macKey = rsaOaepDecrypt(keyPath, cipherValue(inner(delivery, 'MACMethod'), 'MACMethod'))
  const out: DecryptedKey[] = []
  for (const m of xml.matchAll(new RegExp(`<${P}ContentKey\\b([^>]*?)>([\\s\\S]*?)</${P}ContentKey>`, 'g'))) {
    const kid = /\bkid="([^"]+)"/.exec(m[1])?.[1] ?? ''
    const sealed = cipherValue(m[2], `ContentKey ${kid}`)
    const mac = Buffer.from((inner(m[2], 'ValueMAC') ?? '').replace(/\s+/g, ''), 'base64')
    const macOk = hmacSha512(macKey, sealed).equals(mac)
    let key = ''
    try {
      key = aes256CbcDecrypt(documentKey, sealed.subarray(0, 16), sealed.subarray(16)).toString('base64')
    } catch {}
    out.push({ kid, key, macOk })
  }
  return out
}
