// Attack: make the proxy repeat huge caller-chosen values (Content-Type, User-Agent, X-Speke-Version, JSON fields)
// into answers and audit records.

import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { clip } from '../../src/errors.js'
import { DEMO_TOKEN } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

const CONTENT_TYPE = `application/x-${'c'.repeat(8 * 1024)}`
const USER_AGENT = `Mozilla/5.0 ${'u'.repeat(3 * 1024)}`
const SPEKE_VERSION = `2.0${'v'.repeat(8 * 1024)}`

function auditLines (dir: string): string[] {
  return readdirSync(dir).filter(f => f.endsWith('.jsonl')).sort().flatMap(f => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean))
}

/** The longest run of one character in a text: how much of a padded value was quoted back. */
function longestRun (text: string, char: string): number {
  let best = 0
  for (const m of text.matchAll(new RegExp(`${char}+`, 'g'))) best = Math.max(best, m[0].length)
  return best
}

t.test('a 1-byte POST with an 8 KB Content-Type and a 3 KB User-Agent: small answer, small audit record, at most 200 characters quoted', async t => {
  const dataDir = t.testdir()
  const proxy = await startProxy({ DATA_DIR: dataDir })
  t.teardown(() => proxy.close())
  const res = await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: { 'content-type': CONTENT_TYPE, 'user-agent': USER_AGENT }, body: 'x' })
  const text = await res.body.text()
  t.equal(res.statusCode, 415)
  t.match(text, /^Content-Type application\/x-c+\.\.\. is not accepted/)
  t.ok(longestRun(text, 'c') <= 200, `the message quotes ${longestRun(text, 'c')} characters of the Content-Type`)
  t.ok(text.length < 400, `the answer is ${text.length} bytes`)

  const lines = auditLines(join(dataDir, 'audit'))
  const record = lines.find(l => l.includes('"status":415'))
  t.ok(record, 'the refusal of an identified caller is audited')
  if (record === undefined) return
  t.ok(record.length < 2048, `its record is ${record.length} bytes`)
  t.ok(longestRun(record, 'u') <= 200, `the record quotes ${longestRun(record, 'u')} characters of the User-Agent`)
  t.ok(longestRun(record, 'c') <= 200, `the record quotes ${longestRun(record, 'c')} characters of the Content-Type`)
})

t.test('without a token, the same request is refused before the Content-Type is even looked at', async t => {
  const dataDir = t.testdir()
  const proxy = await startProxy({ DATA_DIR: dataDir })
  t.teardown(() => proxy.close())
  const res = await request(`${proxy.url}/cpix/getKey`, { method: 'POST', headers: { 'content-type': CONTENT_TYPE, 'user-agent': USER_AGENT }, body: 'x' })
  const text = await res.body.text()
  t.equal(res.statusCode, 401)
  t.notOk(text.includes('ccccc'), 'nothing of the Content-Type in the answer')
  await proxy.close()
  // Whether refused anonymous requests get a record each or a summary per minute, what this one wrote is small.
  // (The trail's own signed checkpoint at shutdown is not the request's: it is left out of the count.)
  const written = auditLines(join(dataDir, 'audit')).filter(l => !l.includes('"route":"audit-checkpoint"')).join('\n')
  t.ok(written.length < 2048, `${written.length} bytes of audit for it`)
  t.ok(longestRun(written, 'u') <= 200 && longestRun(written, 'c') <= 200, 'quoting at most 200 characters of any header')
})

t.test('an 8 KB X-Speke-Version comes back cut to 200 characters, in the header and in the record', async t => {
  const dataDir = t.testdir()
  const proxy = await startProxy({ DATA_DIR: dataDir })
  t.teardown(() => proxy.close())
  const res = await request(`${proxy.url}/cpix/getKey?enc-token=${DEMO_TOKEN}`, { method: 'POST', headers: { 'content-type': 'application/xml', 'x-speke-version': SPEKE_VERSION }, body: '<x/>' })
  const text = await res.body.text()
  t.equal(res.statusCode, 400)
  t.equal(text, 'Unsupported SPEKE version', "AWS's exact string")
  t.equal(res.headers['x-speke-version'], clip(SPEKE_VERSION))
  t.equal(String(res.headers['x-speke-version']).length, 200)
  const record = auditLines(join(dataDir, 'audit')).find(l => l.includes('"status":400'))
  t.ok(record !== undefined && longestRun(record, 'v') <= 200, 'the record holds at most 200 characters of it')
})

t.test('JSON fields quoted in /v2/keys errors are cut to 200 characters', async t => {
  const proxy = await startProxy({ AUDIT: 'off' })
  t.teardown(() => proxy.close())
  const url = `${proxy.url}/v2/keys?enc-token=${encodeURIComponent(DEMO_TOKEN)}`
  for (const body of [{ content_id: 'c', drm_types: [`w${'d'.repeat(5000)}`] }, { content_id: 'c', track_types: [`t${'d'.repeat(5000)}`] }]) {
    const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const text = await res.body.text()
    t.ok(res.statusCode === 400 || res.statusCode === 422, `refused (${res.statusCode})`)
    t.ok(longestRun(text.toLowerCase(), 'd') <= 200, `quotes ${longestRun(text.toLowerCase(), 'd')} characters`)
    t.ok(text.length < 500, `a ${text.length}-byte answer`)
  }
})

t.test('clip cuts at 200 characters without splitting a character', async t => {
  t.equal(clip('short'), 'short')
  t.equal(clip('a'.repeat(200)), 'a'.repeat(200))
  t.equal(clip('a'.repeat(201)), `${'a'.repeat(197)}...`)
  const emoji = `${'a'.repeat(196)}😀😀😀`
  t.equal(clip(emoji), `${'a'.repeat(196)}...`, 'a surrogate pair is kept whole or dropped whole')
})
