// Specification of how an event becomes a record: normalised, fingerprinted, hashed, and free of secrets.

import t from 'tap'
import { createHash, createHmac } from 'node:crypto'
import { buildRecordBody, hmacValue } from '../../src/audit/record.js'
import { HMAC_KEY, KEY_A, KEY_B, keySpellings, sampleEvent } from './fixtures/helpers.js'

const NOW = new Date('2025-03-01T10:00:00.000Z')

t.test('a record carries every field the issue lists', async (t) => {
  const r = buildRecordBody(sampleEvent({ requestId: 'req-1' }), HMAC_KEY, 'proxy-a', NOW)
  t.match(r.id, /^[0-9a-f-]{36}$/)
  t.equal(r.time, '2025-03-01T10:00:00.000Z')
  t.equal(r.instance_id, 'proxy-a')
  t.equal(r.request_id, 'req-1')
  t.equal(r.route, '/speke/v2/copyProtection')
  t.equal(r.tenant, 'site-1')
  t.equal(r.caller_ip, '203.0.113.9')
  t.equal(r.user_agent, 'MediaPackage/2.0')
  t.equal(r.speke_version, '2.0')
  t.equal(r.content_id, 'movie-42')
  t.same(r.track_types, ['SD', 'AUDIO'])
  t.same(r.key_periods, [])
  t.equal(r.upstream_status, 200)
  t.equal(r.upstream_latency_ms, 13, 'latency is whole milliseconds')
  t.equal(r.outcome, 'ok')
  t.equal(r.status, 200)
  t.equal(r.error, null, 'absent values are null, never missing')
})

t.test('a failed request keeps its error code; a record without one has no error_code field, so older records hash as written', async (t) => {
  const failed = buildRecordBody(sampleEvent({ outcome: 'upstream_error', status: 504, error: 'KMS did not answer', errorCode: 'KMS_TIMEOUT', returnedKeys: [] }), HMAC_KEY, 'i', NOW)
  t.equal(failed.error_code, 'KMS_TIMEOUT')
  const ok = buildRecordBody(sampleEvent(), HMAC_KEY, 'i', NOW)
  t.notOk('error_code' in ok)
})

t.test('kids and DRM system ids are stored in lower case', async (t) => {
  const r = buildRecordBody(sampleEvent(), HMAC_KEY, 'i', NOW)
  t.same(r.requested_kids, ['6c5f5206-7d98-4b8a-8d9e-0a4b7c1d2e3f'])
  t.same(r.returned_kids, ['6c5f5206-7d98-4b8a-8d9e-0a4b7c1d2e3f'])
  t.same(r.drm_systems, ['edef8ba9-79d6-4ace-a3c8-27dcd51d21ed'])
})

t.test('each returned key is an HMAC-SHA256 fingerprint of its 16 bytes', async (t) => {
  const r = buildRecordBody(sampleEvent({ returnedKeys: [{ kid: 'A', key: KEY_A }, { kid: 'B', key: KEY_B }] }), HMAC_KEY, 'i', NOW)
  const expected = (k: Buffer) => `hmac-sha256:${createHmac('sha256', HMAC_KEY).update(k).digest('hex')}`
  t.same(r.key_fingerprints, [expected(KEY_A), expected(KEY_B)])
  t.equal(hmacValue(HMAC_KEY, KEY_A), expected(KEY_A), 'hmacValue gives the same fingerprint for searching')
  t.not(hmacValue(Buffer.alloc(32, 1), KEY_A), expected(KEY_A), 'the fingerprint depends on the HMAC key')
})

t.test('bodies are kept as SHA-256 only', async (t) => {
  const ev = sampleEvent()
  const r = buildRecordBody(ev, HMAC_KEY, 'i', NOW)
  t.equal(r.request_sha256, createHash('sha256').update(ev.requestBody as Buffer).digest('hex'))
  t.equal(r.response_sha256, createHash('sha256').update(ev.responseBody as Buffer).digest('hex'))
  t.notMatch(JSON.stringify(r), /secret content keys/)
  const none = buildRecordBody(sampleEvent({ requestBody: undefined, responseBody: undefined }), HMAC_KEY, 'i', NOW)
  t.equal(none.request_sha256, null)
  t.equal(none.response_sha256, null)
})

t.test('no spelling of a returned key appears anywhere, even when upstream echoes it in an error', async (t) => {
  const ev = sampleEvent({
    outcome: 'upstream_error',
    error: `KMS said: bad key ${KEY_A.toString('hex').toUpperCase()} / ${KEY_A.toString('base64')}`,
    returnedKeys: [{ kid: 'k', key: KEY_A }]
  })
  const text = JSON.stringify(buildRecordBody(ev, HMAC_KEY, 'i', NOW))
  for (const spelling of keySpellings(KEY_A)) t.notOk(text.includes(spelling), `no ${spelling}`)
  t.match(text, /KMS said: bad key \[redacted\]/)
})

t.test('text is made safe for UTF-8 and PostgreSQL and bounded', async (t) => {
  const r = buildRecordBody(sampleEvent({ userAgent: 'a\u0000b\uD800c', error: 'x'.repeat(10_000) }), HMAC_KEY, 'i', NOW)
  t.equal(r.user_agent, 'a\uFFFDb\uFFFDc')
  t.ok((r.error ?? '').length <= 1025)
})

t.test('values copied from the request are cut to 200 characters', async (t) => {
  const long = 'u'.repeat(3000)
  const r = buildRecordBody(sampleEvent({ userAgent: long, spekeVersion: long, tenant: long, request: { contentId: long, trackTypes: [long], keyPeriods: [long], kids: [long], drmSystems: [long] } }), HMAC_KEY, 'i', NOW)
  const copied = [
    r.user_agent, r.content_id, r.speke_version, r.tenant, r.track_types[0], r.key_periods[0], r.requested_kids[0], r.drm_systems[0]
  ]
  for (const value of copied) {
    t.equal(value, `${'u'.repeat(200)}…`)
  }
  t.ok(JSON.stringify(r).length < 4000, 'the whole record stays small')
})
