// Specification of the audit HMAC key: taken from AUDIT_HMAC_KEY, else generated once into DATA_DIR with mode 0600.

import t from 'tap'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { hmacValue, loadOrCreateHmacKey } from '../../src/audit/index.js'

t.test('AUDIT_HMAC_KEY (base64 of >= 32 bytes) is used as given', async (t) => {
  const key = Buffer.alloc(48, 9)
  t.same(loadOrCreateHmacKey(t.testdir(), key.toString('base64')), key)
  t.same(loadOrCreateHmacKey(t.testdir(), key.toString('base64url')), key, 'base64url is accepted too')
  const odd = Buffer.alloc(32, 0xfb)
  t.same(loadOrCreateHmacKey(t.testdir(), odd.toString('base64url')), odd, 'unpadded base64url, as LOCAL_KMS_SECRET and the configuration take it (test/config.test.ts)')
  t.same(loadOrCreateHmacKey(t.testdir(), odd.toString('base64').replace(/=+$/, '')), odd, 'unpadded standard base64')
})

t.test('a bad AUDIT_HMAC_KEY is a clear error naming the variable', async (t) => {
  t.throws(() => loadOrCreateHmacKey(t.testdir(), Buffer.alloc(31).toString('base64')), /AUDIT_HMAC_KEY.*31 bytes/)
  t.throws(() => loadOrCreateHmacKey(t.testdir(), 'not base64 at all!'), /AUDIT_HMAC_KEY is not valid base64/)
  const mixed = Buffer.alloc(32, 0xfb).toString('base64').replace('+', '-')
  t.throws(() => loadOrCreateHmacKey(t.testdir(), mixed), /AUDIT_HMAC_KEY is not valid base64/, 'one alphabet per key')
})

t.test('without AUDIT_HMAC_KEY a key is generated once, mode 0600, and reused', async (t) => {
  const dataDir = join(t.testdir(), 'data')
  const first = loadOrCreateHmacKey(dataDir)
  t.equal(first.length, 32)
  const file = join(dataDir, 'audit-hmac.key')
  t.equal(statSync(file).mode & 0o777, 0o600)
  t.equal(readFileSync(file, 'utf8').trim(), first.toString('base64'))
  t.same(loadOrCreateHmacKey(dataDir), first, 'a restart reads the same key')
  t.same(loadOrCreateHmacKey(dataDir, ''), first, 'an empty AUDIT_HMAC_KEY counts as unset')
  t.not(loadOrCreateHmacKey(join(t.testdir(), 'other')).toString('hex'), first.toString('hex'), 'each data dir gets its own random key')
})

t.test('a damaged key file is refused rather than silently replaced', async (t) => {
  const dataDir = t.testdir({ 'audit-hmac.key': 'c2hvcnQ=\n' })
  t.throws(() => loadOrCreateHmacKey(dataDir), /audit-hmac\.key.*AUDIT_HMAC_KEY/)
  writeFileSync(join(dataDir, 'audit-hmac.key'), '')
  t.throws(() => loadOrCreateHmacKey(dataDir), /not valid base64/)
})

t.test('hmacValue gives a searchable hmac-sha256:<hex>', async (t) => {
  const key = Buffer.alloc(32, 1)
  t.match(hmacValue(key, 'movie-42'), /^hmac-sha256:[0-9a-f]{64}$/)
  t.equal(hmacValue(key, 'movie-42'), hmacValue(key, Buffer.from('movie-42')), 'a string is hashed as UTF-8')
  t.not(hmacValue(key, 'movie-42'), hmacValue(key, 'movie-43'))
})
