// Attack: crash the proxy through POST /v2/keys with a small body that asks for 1,500 DRM types × 1,500 track types,
// with no credential at all.

import t from 'tap'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { MAX_DRM_ENTRIES, MAX_TRACK_TYPES, readJsonKeyRequest } from '../../src/cpix/json-keys.js'
import { encodeEncToken } from '../../src/tenants/enc-token.js'
import { replyWith, startFakeKms } from '../helpers/fake-kms.js'
import { DEMO_TOKEN } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

const JSON_HEADERS = { 'content-type': 'application/json' }
const CREDENTIAL = 'bomb-test-proxy-credential-0123456789'

/** The body from the report: ~25 KB, 1,500 × 1,500 = 2.25 million DRM system entries if built. */
const BOMB = JSON.stringify({
  content_id: 'bomb',
  drm_types: Array(1500).fill('widevine'),
  track_types: Array.from({ length: 1500 }, (_, i) => `T${i}`)
})

async function post (url: string, body: string): Promise<{ status: number, text: string, ms: number }> {
  const started = performance.now()
  const res = await request(url, { method: 'POST', headers: JSON_HEADERS, body })
  const text = await res.body.text()
  return { status: res.statusCode, text, ms: performance.now() - started }
}

t.test('the bomb without a credential, with ALLOW_PASSTHROUGH=false: a fast refusal, nothing built, memory flat', async t => {
  const dir = t.testdir()
  const tenants = join(dir, 'tenants.json')
  writeFileSync(tenants, JSON.stringify({ tenants: [{ id: 'acme', encToken: DEMO_TOKEN, credentials: [`sha256:${createHash('sha256').update(CREDENTIAL).digest('hex')}`] }] }))
  const kms = await startFakeKms(replyWith(500, 'text/plain', 'must not be called'))
  const proxy = await startProxy({ KMS_URL: kms.url, DATA_DIR: dir, TENANTS_FILE: tenants, ALLOW_PASSTHROUGH: 'false', RATE_LIMIT_PER_IP_PER_MINUTE: '0' })
  t.teardown(async () => { await proxy.close(); await kms.close() })
  t.ok(BOMB.length < 32 * 1024, `the body is only ${BOMB.length} bytes`)

  const heapBefore = process.memoryUsage().heapUsed
  const forged = encodeEncToken('ACME', 'guess')
  const cases: Array<[string, string, number]> = [
    ['no credential', `${proxy.url}/v2/keys`, 401],
    ['an unknown credential', `${proxy.url}/v2/keys?enc-token=not-a-credential`, 403],
    ['a forged pass-through token', `${proxy.url}/v2/keys?enc-token=${encodeURIComponent(forged)}`, 403],
    ['a valid credential', `${proxy.url}/v2/keys?enc-token=${CREDENTIAL}`, 400]
  ]
  for (const [name, url, status] of cases) {
    // Ten times each: a crash, or a build of millions of entries, could not hide.
    const answers = []
    for (let i = 0; i < 10; i++) answers.push(await post(url, BOMB))
    t.same(answers.map(a => a.status), Array(10).fill(status), `${name}: ${status} (${answers[0].text.slice(0, 100)})`)
    const slowest = Math.max(...answers.map(a => a.ms))
    t.ok(slowest < 2000, `${name}: the slowest answered in ${Math.round(slowest)} ms`)
  }
  const grown = process.memoryUsage().heapUsed - heapBefore
  t.ok(grown < 64 * 1024 * 1024, `heap grew by ${Math.round(grown / 1024 / 1024)} MB (building the document would take gigabytes)`)
  t.equal(kms.received.length, 0, 'nothing reached the KMS')
  const ready = await request(`${proxy.url}/readyz`)
  t.equal(ready.statusCode, 200, 'the proxy is alive and ready')
  await ready.body.text()
})

t.test('repeated DRM types, too many track types, too many entries: a clear 400 before anything is built', async t => {
  const kms = await startFakeKms(replyWith(500, 'text/plain', 'must not be called'))
  const proxy = await startProxy({ KMS_URL: kms.url, AUDIT: 'off' })
  t.teardown(async () => { await proxy.close(); await kms.close() })
  const url = `${proxy.url}/v2/keys?enc-token=${encodeURIComponent(DEMO_TOKEN)}`
  const tracks = (n: number): string[] => Array.from({ length: n }, (_, i) => `T${i}`)
  const cases: Array<[string, object, RegExp]> = [
    ['widevine twice', { content_id: 'c', drm_types: ['widevine', 'playready', 'widevine'] }, /drm_types must not repeat a DRM type: "widevine"/],
    ['widevine twice, differently cased', { content_id: 'c', drm_types: ['Widevine', 'WIDEVINE'] }, /must not repeat a DRM type/],
    ['1,500 DRM types', { content_id: 'c', drm_types: Array(1500).fill('widevine') }, /drm_types lists 1500 entries; at most 9/],
    ['a track type twice', { content_id: 'c', track_types: ['HD', 'SD', 'hd'] }, /track_types must not repeat a track type: "HD"/],
    [`${MAX_TRACK_TYPES + 1} track types`, { content_id: 'c', track_types: tracks(MAX_TRACK_TYPES + 1) }, new RegExp(`track_types lists ${MAX_TRACK_TYPES + 1} entries; at most ${MAX_TRACK_TYPES}`)],
    ['1,500 track types', { content_id: 'c', track_types: tracks(1500) }, /track_types lists 1500 entries/],
    ['16 track types × 5 DRM types', { content_id: 'c', track_types: tracks(16), drm_types: ['widevine', 'playready', 'fairplay', 'wiseplay', 'ncg'] }, new RegExp(`80 DRM system entries \\(16 track types × 5 DRM types\\); at most ${MAX_DRM_ENTRIES}`)],
    ['a 10 KB track type', { content_id: 'c', track_types: ['x'.repeat(10_000)] }, /at most 64 characters/]
  ]
  for (const [name, body, message] of cases) {
    const res = await post(url, JSON.stringify(body))
    t.equal(res.status, 400, `${name}: status`)
    t.match((JSON.parse(res.text) as { error: string }).error, message, `${name}: message`)
    t.ok(res.text.length < 400, `${name}: a short answer (${res.text.length} bytes)`)
  }
  t.equal(kms.received.length, 0, 'nothing reached the KMS')

  // At the caps, the request is served: 16 track types × 4 DRM types = 64 entries.
  const local = await startProxy({ AUDIT: 'off' })
  t.teardown(() => local.close())
  const full = await post(`${local.url}/v2/keys?enc-token=${encodeURIComponent(DEMO_TOKEN)}`, JSON.stringify({ content_id: 'c', track_types: tracks(16), drm_types: ['widevine', 'playready', 'fairplay', 'wiseplay'] }))
  t.equal(full.status, 200, full.text.slice(0, 120))
  t.equal((JSON.parse(full.text) as { content_key_list: unknown[] }).content_key_list.length, 16)
})

t.test('readJsonKeyRequest bounds its lists before reading them', async t => {
  t.throws(() => readJsonKeyRequest({ content_id: 'c', drm_types: Array(100_000).fill('x') }), { status: 400, message: /drm_types lists 100000 entries/ })
  t.throws(() => readJsonKeyRequest({ content_id: 'c', track_types: ['A', 'B', 'A'] }), { status: 400, code: 'REPEATED_JSON_ENTRY' })
  t.throws(() => readJsonKeyRequest({ content_id: 'c'.repeat(201) }), { status: 422, message: /at most 200 characters/ })
  t.same(readJsonKeyRequest({ content_id: 'c', drm_types: ['widevine'], track_types: ['sd', 'hd'] }).track_types, ['SD', 'HD'])
})
