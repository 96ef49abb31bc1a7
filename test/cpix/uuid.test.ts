// UUID bytes: the one-pass hex reader agrees with the regexp + Buffer hex decode it replaced, on random and broken input.

import t from 'tap'
import type { Test } from 'tap'
import { randomBytes, randomInt } from 'node:crypto'
import { bytesToUuid, guidBytesToUuid, uuidToBytes, uuidToGuidBytes } from '../../src/cpix/uuid.js'

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The former uuidToBytes. */
function referenceBytes (uuid: string): Buffer | undefined {
  return UUID_PATTERN.test(uuid) ? Buffer.from(uuid.replace(/-/g, ''), 'hex') : undefined
}

function check (t: Test, text: string): void {
  const want = referenceBytes(text)
  if (want === undefined) t.throws(() => uuidToBytes(text), /not a UUID/, JSON.stringify(text))
  else t.same(uuidToBytes(text), want, text)
}

const ALPHABET = '0123456789abcdefABCDEFgG-xz \n:'

t.test('random UUIDs, in either case, give the bytes the hex decode gives', async t => {
  for (let i = 0; i < 300; i++) {
    const uuid = bytesToUuid(randomBytes(16))
    check(t, uuid)
    check(t, uuid.toUpperCase())
    t.equal(bytesToUuid(uuidToBytes(uuid)), uuid)
  }
})

t.test('broken UUIDs are refused as before: one character changed, moved hyphens, wrong length, extra text', async t => {
  for (let i = 0; i < 400; i++) {
    const uuid = bytesToUuid(randomBytes(16))
    const at = randomInt(36)
    check(t, uuid.slice(0, at) + ALPHABET[randomInt(ALPHABET.length)] + uuid.slice(at + 1))
    check(t, uuid.slice(0, at) + uuid.slice(at + 1))
    check(t, uuid.slice(0, at) + ALPHABET[randomInt(ALPHABET.length)] + uuid.slice(at))
  }
  for (const text of ['', '-'.repeat(36), `${bytesToUuid(randomBytes(16))}\n`, ` ${bytesToUuid(randomBytes(16)).slice(1)}`, '0123456789abcdef0123456789abcdef0123']) check(t, text)
})

t.test('GUID bytes swap the first three groups and round-trip', async t => {
  const uuid = '00112233-4455-6677-8899-aabbccddeeff'
  t.equal(uuidToGuidBytes(uuid).toString('hex'), '33221100554477668899aabbccddeeff')
  for (let i = 0; i < 100; i++) {
    const random = bytesToUuid(randomBytes(16))
    t.equal(guidBytesToUuid(uuidToGuidBytes(random)), random)
  }
})
