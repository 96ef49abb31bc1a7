// The audit trail end to end: the real server with the embedded key provider, both sinks (JSON-lines files and PostgreSQL),
// a mix of served and refused key requests on every key route, no secret in storage, and fail-closed when no sink works.

import t, { type Test } from 'tap'
import { createHash, createHmac, generateKeyPairSync, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { hmacValue, verifyAuditDatabase, verifyAuditFiles, type AuditRecord } from '../../src/audit/index.js'
import { encodeEncToken } from '../../src/tenants/enc-token.js'
import { DEMO_ACCESS_KEY, DEMO_TOKEN, PROJECT_ROOT, capturedBody, fixture } from '../helpers/fixtures.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { keySpellings, PG_URL, pgSchema, sql, unwritableDir } from '../audit/fixtures/helpers.js'

const V1_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml').toString('utf8')
const V2_SUITE = join(PROJECT_ROOT, 'test', 'fixtures', 'aws-suite')
const V2_REQUEST = readFileSync(join(V2_SUITE, 'positive-p-v3-a2-widevine-playready.xml'), 'utf8')
const V2_REQUEST_B = readFileSync(join(V2_SUITE, 'positive-p-v5-a3-widevine-playready-fairplay.xml'), 'utf8')
const V2_NEGATIVE = readFileSync(join(V2_SUITE, 'negative-kid-not-uuid.xml'), 'utf8')
const PY_REQUEST = capturedBody('pallycon/python-client/captured-multi-key-audio-sd-hd-cbcs.http').toString('utf8')

/** A fixed HMAC key and local KMS secret, so fingerprints can be recomputed and the same request gets the same key twice. */
const HMAC_KEY = randomBytes(32)
const LOCAL_KMS_SECRET = randomBytes(32).toString('base64')
/** A second pass-through tenant, with an access key of its own to look for in storage. */
const ACME_ACCESS_KEY = `acme-${randomBytes(12).toString('hex')}`
const ACME_TOKEN = encodeEncToken('ACME', ACME_ACCESS_KEY)
const BAD_TOKEN = `not-a-token-${randomBytes(6).toString('hex')}`

const CT_XML = { 'content-type': 'application/xml' }

interface Expected {
  route: string
  tenant: string | null
  content_id: string | null
  requested_kids: string[]
  speke_version: string | null
  outcome: 'ok' | 'rejected'
  status: number
}

interface Call {
  name: string
  method: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  body?: string
  expect: Expected
  /** Refused for want of a valid credential: counted in the refusal summary, with no record of its own. */
  anonymous?: boolean
}

interface Sent extends Call {
  ua: string
  status: number
  text: string
  /** Keys the HTTP reply carries, read from its XML (independently of the proxy's own parser). */
  keys: Array<{ kid: string, key: Buffer }>
}

/** The kids a CPIX request asks for, in document order, lower case. */
function requestedKids (xml: string): string[] {
  return [...xml.matchAll(/<(?:\w+:)?ContentKey\b[^>]*?\bkid="([^"]+)"/g)].map((m) => m[1].toLowerCase())
}

/** contentId (CPIX 2.x) or id (SPEKE v1) of the root element. */
function rootContentId (xml: string): string {
  const root = /<(?:\w+:)?CPIX\b[^>]*>/.exec(xml)?.[0] ?? ''
  const id = /\bcontentId="([^"]*)"/.exec(root)?.[1] ?? /\bid="([^"]*)"/.exec(root)?.[1]
  if (id === undefined) throw new Error('fixture has no content id')
  return id
}

/** kid and key bytes of every ContentKey with a PlainValue in a CPIX reply. */
function keysIn (xml: string): Array<{ kid: string, key: Buffer }> {
  const out: Array<{ kid: string, key: Buffer }> = []
  for (const m of xml.matchAll(/<(?:\w+:)?ContentKey\b([^>]*?)>([\s\S]*?)<\/(?:\w+:)?ContentKey>/g)) {
    const kid = /\bkid="([^"]+)"/.exec(m[1])?.[1]
    const value = /<(?:\w+:)?PlainValue>\s*([A-Za-z0-9+/=]+)\s*<\/(?:\w+:)?PlainValue>/.exec(m[2])?.[1]
    if (kid !== undefined && value !== undefined) out.push({ kid: kid.toLowerCase(), key: Buffer.from(value, 'base64') })
  }
  return out
}

function withContentId (xml: string, id: string): string {
  return xml.replace(/(<(?:\w+:)?CPIX\b[^>]*?\bid=")[^"]*(")/, `$1${id}$2`)
}

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex')

function okV1 (token: string, tenant: string, contentId: string): Call {
  const body = withContentId(V1_REQUEST, contentId)
  return {
    name: `SPEKE v1 ok (${tenant})`,
    method: 'POST',
    path: `/cpix/getKey?enc-token=${encodeURIComponent(token)}`,
    headers: CT_XML,
    body,
    expect: { route: 'speke', tenant: `site:${tenant}`, content_id: contentId, requested_kids: requestedKids(body), speke_version: null, outcome: 'ok', status: 200 }
  }
}

function okV2 (token: string, tenant: string, body: string): Call {
  return {
    name: `SPEKE v2 ok (${tenant}, ${rootContentId(body)})`,
    method: 'POST',
    path: `/cpix/getKey?enc-token=${encodeURIComponent(token)}`,
    headers: { ...CT_XML, 'x-speke-version': '2.0' },
    body,
    expect: { route: 'speke', tenant: `site:${tenant}`, content_id: rootContentId(body), requested_kids: requestedKids(body), speke_version: '2.0', outcome: 'ok', status: 200 }
  }
}

function rejected (name: string, call: Omit<Call, 'name' | 'expect'>, expect: Partial<Expected> & { route: string, status: number }, anonymous = false): Call {
  return { name, ...call, anonymous, expect: { tenant: null, content_id: null, requested_kids: [], speke_version: null, outcome: 'rejected', ...expect } }
}

/** Every key route, served and refused, in one run. */
function mixedRun (): Call[] {
  return [
    okV1(DEMO_TOKEN, 'DEMO', 'e2e-v1-demo'),
    okV1(ACME_TOKEN, 'ACME', 'e2e-v1-acme'),
    okV2(DEMO_TOKEN, 'DEMO', V2_REQUEST),
    okV2(ACME_TOKEN, 'ACME', V2_REQUEST_B),
    {
      name: 'PallyCon API v2 ok (no Content-Type)',
      method: 'POST',
      path: `/v2/cpix/pallycon/getKey/${DEMO_TOKEN}`,
      body: PY_REQUEST,
      expect: { route: 'pallycon-v2', tenant: 'site:DEMO', content_id: rootContentId(PY_REQUEST), requested_kids: requestedKids(PY_REQUEST), speke_version: null, outcome: 'ok', status: 200 }
    },
    {
      name: 'PallyCon API v1 ok (key rotation flag)',
      method: 'POST',
      path: `/v1/cpix/pallycon/getKey/${ACME_TOKEN}?key-rotation=false`,
      headers: { 'content-type': 'text/xml; charset=utf-8' },
      body: PY_REQUEST,
      expect: { route: 'pallycon-v1', tenant: 'site:ACME', content_id: rootContentId(PY_REQUEST), requested_kids: requestedKids(PY_REQUEST), speke_version: null, outcome: 'ok', status: 200 }
    },
    {
      name: 'Anevia dash ok',
      method: 'GET',
      path: `/cpix/anevia/dash/${DEMO_TOKEN}/e2e-anevia-dash`,
      expect: { route: 'anevia', tenant: 'site:DEMO', content_id: 'e2e-anevia-dash', requested_kids: [], speke_version: null, outcome: 'ok', status: 200 }
    },
    {
      name: 'Anevia hls ok',
      method: 'GET',
      path: `/cpix/anevia/hls/${ACME_TOKEN}/e2e-anevia-hls`,
      expect: { route: 'anevia', tenant: 'site:ACME', content_id: 'e2e-anevia-hls', requested_kids: [], speke_version: null, outcome: 'ok', status: 200 }
    },
    rejected('SPEKE v1 malformed XML (400)',
      { method: 'POST', path: `/cpix/getKey?enc-token=${DEMO_TOKEN}`, headers: CT_XML, body: '<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" id="a"><cpix:ContentKeyList>' },
      { route: 'speke', tenant: 'site:DEMO', status: 400 }),
    rejected('SPEKE v1 bad token (401)',
      { method: 'POST', path: `/cpix/getKey?enc-token=${BAD_TOKEN}`, headers: CT_XML, body: withContentId(V1_REQUEST, 'e2e-bad-token') },
      { route: 'speke', status: 401 }, true),
    rejected('SPEKE v1 wrong Content-Type (415)',
      { method: 'POST', path: `/cpix/getKey?enc-token=${DEMO_TOKEN}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: withContentId(V1_REQUEST, 'e2e-415') },
      // The caller is identified before the Content-Type is looked at.
      { route: 'speke', tenant: 'site:DEMO', status: 415 }),
    rejected('SPEKE v2 invalid CPIX (4xx)',
      { method: 'POST', path: `/cpix/getKey?enc-token=${ACME_TOKEN}`, headers: { ...CT_XML, 'x-speke-version': '2.0' }, body: V2_NEGATIVE },
      // Refused after parsing: the record still says which content and kids were asked for.
      { route: 'speke', tenant: 'site:ACME', speke_version: '2.0', status: 400, content_id: rootContentId(V2_NEGATIVE), requested_kids: requestedKids(V2_NEGATIVE) }),
    rejected('SPEKE unsupported version (400)',
      { method: 'POST', path: `/cpix/getKey?enc-token=${DEMO_TOKEN}`, headers: { ...CT_XML, 'x-speke-version': '9.9' }, body: V2_REQUEST },
      { route: 'speke', tenant: 'site:DEMO', speke_version: '9.9', status: 400 }),
    rejected('PallyCon API bad token (401)',
      { method: 'POST', path: `/v2/cpix/pallycon/getKey/${BAD_TOKEN}`, body: PY_REQUEST },
      { route: 'pallycon-v2', status: 401 }, true),
    rejected('Anevia bad token (401)',
      { method: 'GET', path: `/cpix/anevia/hls/${BAD_TOKEN}/e2e-anevia-bad` },
      { route: 'anevia', status: 401 }, true)
  ]
}

async function send (proxy: RunningProxy, call: Call, n: number): Promise<Sent> {
  const ua = `audit-e2e/${n}-${randomBytes(3).toString('hex')}`
  const res = await request(`${proxy.url}${call.path}`, { method: call.method, body: call.body, headers: { ...call.headers, 'user-agent': ua } })
  const text = await res.body.text()
  return { ...call, ua, status: res.statusCode, text, keys: res.statusCode === 200 ? keysIn(text) : [] }
}

/** Every audit record in the JSON-lines files of dir, in file then line order. */
function fileRecords (dir: string): AuditRecord[] {
  return readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as AuditRecord))
}

/** All text of every file under dir (recursively). */
function allFileText (dir: string): string {
  return readdirSync(dir).map((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? allFileText(p) : readFileSync(p, 'utf8')
  }).join('\n')
}

async function dbRecords (schema: string): Promise<AuditRecord[]> {
  const rows = await sql<Record<string, unknown>>(`SELECT * FROM "${schema}".audit_records ORDER BY instance_id, seq`)
  // The refusals, checkpoint, error_code and delivery columns are NULL on every record but refusal summaries, checkpoints, failed
  // requests and encrypted deliveries, whose records alone have such a field.
  return rows.map(({ refusals, checkpoint, error_code: errorCode, delivery, ...r }) => ({
    ...r,
    ...(refusals === null ? {} : { refusals }),
    ...(checkpoint === null ? {} : { checkpoint }),
    ...(errorCode === null ? {} : { error_code: errorCode }),
    ...(delivery === null ? {} : { delivery }),
    time: (r.time as Date).toISOString(),
    seq: Number(r.seq)
  }) as unknown as AuditRecord)
}

/** The secrets that must never be stored: both enc-tokens in every form they travel in, both access keys, the HMAC key. */
function fixedSecrets (): string[] {
  return [
    DEMO_TOKEN, DEMO_TOKEN.replace(/=+$/, ''), encodeURIComponent(DEMO_TOKEN), DEMO_ACCESS_KEY,
    ACME_TOKEN, ACME_TOKEN.replace(/=+$/, ''), encodeURIComponent(ACME_TOKEN), ACME_ACCESS_KEY,
    ...keySpellings(HMAC_KEY)
  ]
}

t.test('every request of a mixed run is recorded exactly once, alike in the files and in PostgreSQL', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  const auditDir = join(t.testdir(), 'audit')
  const instanceId = `e2e-${randomBytes(4).toString('hex')}`
  const signing = generateKeyPairSync('ed25519')
  const proxy = await startProxy({
    KMS_URL: 'local',
    LOCAL_KMS_SECRET,
    AUDIT_DIR: auditDir,
    AUDIT_DATABASE_URL: PG_URL,
    AUDIT_DATABASE_SCHEMA: schema,
    AUDIT_HMAC_KEY: HMAC_KEY.toString('base64'),
    AUDIT_SIGNING_KEY: signing.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    INSTANCE_ID: instanceId
  })
  let closed = false
  t.teardown(async () => { if (!closed) await proxy.close() })

  const calls = mixedRun()
  const sent: Sent[] = []
  for (const [i, call] of calls.entries()) {
    sent.push(await send(proxy, call, i))
    // Neither the heartbeat nor readiness is a key request: they must leave no record.
    if (i === 3) {
      const hb = await request(`${proxy.url}/cpix/getKey/heartbeat`)
      t.equal(await hb.body.text(), 'SUCCESS')
      const ready = await request(`${proxy.url}/readyz`)
      t.equal(ready.statusCode, 200, 'ready while both sinks work')
      await ready.body.text()
    }
  }
  for (const s of sent) {
    t.equal(s.status, s.expect.status, `${s.name}: HTTP ${s.expect.status} (${s.status === s.expect.status ? 'ok' : s.text.slice(0, 200)})`)
    if (s.expect.outcome === 'ok') t.ok(s.keys.length > 0, `${s.name}: the reply carries content keys`)
  }
  t.strictSame([...new Set(sent.map((s) => s.expect.route))].sort(), ['anevia', 'pallycon-v1', 'pallycon-v2', 'speke'], 'every key route was exercised')
  t.ok(sent.some((s) => s.expect.route === 'pallycon-v2' && s.expect.outcome === 'ok' &&
    !s.keys.every((k, i) => k.kid === s.expect.requested_kids[i])), 'PallyCon API: the KMS assigned its own kids, so returned kids differ from requested ones')

  await proxy.close()
  closed = true

  // Each sink signs its own chain: its checkpoint records (one at shutdown here) name their sink, so they differ between the two.
  const isCheckpoint = (r: AuditRecord): boolean => r.route === 'audit-checkpoint'
  const allFiles = fileRecords(auditDir)
  const allRows = await dbRecords(schema)
  t.equal(allFiles.filter(isCheckpoint).length, 1, 'files: one signed checkpoint, written at shutdown')
  t.equal(allRows.filter(isCheckpoint).length, 1, 'PostgreSQL: one signed checkpoint, written at shutdown')
  const files = allFiles.filter((r) => !isCheckpoint(r))
  const rows = allRows.filter((r) => !isCheckpoint(r))
  // One record per request with a valid credential, and one summary (written at shutdown) of the refusals without one.
  const recorded = calls.filter((c) => c.anonymous !== true).length
  const expectedRecords = recorded + 1
  t.equal(files.length, expectedRecords, `one file record per authenticated key request (${recorded}) and one refusal summary, none for heartbeat or readiness`)
  t.equal(rows.length, expectedRecords, `one row per authenticated key request (${recorded}) and one refusal summary`)

  const byId = new Map(rows.map((r) => [r.id, r]))
  for (const record of files) {
    t.strictSame(byId.get(record.id), record, `row ${record.id} equals its file record field for field`)
  }

  for (const [sinkName, records] of [['file', files], ['postgres', rows]] as const) {
    const summaries = records.filter((r) => r.route === 'refusal-summary')
    t.equal(summaries.length, 1, `${sinkName}: one refusal summary`)
    const anonymous = sent.filter((s) => s.anonymous === true)
    type Summary = { refusals?: { total: number, top: Array<{ route: string, status: number, caller_ip: string, count: number }> } }
    const summary = (summaries[0] as unknown as Summary).refusals
    t.equal(summary?.total, anonymous.length, `${sinkName}: the summary counts every refusal without a valid credential`)
    for (const route of new Set(anonymous.map((s) => s.expect.route))) {
      const counted = (summary?.top ?? []).filter((c) => c.route === route && c.caller_ip === '127.0.0.1' && c.status === 401).reduce((n, c) => n + c.count, 0)
      t.equal(counted, anonymous.filter((s) => s.expect.route === route).length, `${sinkName}: ${route} refusals counted by route, status and client IP`)
    }
    t.notOk(records.some((r) => anonymous.some((s) => r.user_agent === s.ua)), `${sinkName}: no record of its own for a refusal without a valid credential`)
    for (const s of sent) {
      if (s.anonymous === true) continue
      const mine = records.filter((r) => r.user_agent === s.ua)
      t.equal(mine.length, 1, `${sinkName}: ${s.name} recorded exactly once`)
      const r = mine[0]
      if (r === undefined) continue
      const expected = {
        ...s.expect,
        instance_id: instanceId,
        caller_ip: '127.0.0.1',
        status: s.status,
        request_sha256: s.body === undefined ? null : sha256(s.body),
        response_sha256: sha256(s.text)
      }
      const actual = Object.fromEntries(Object.keys(expected).map((k) => [k, (r as unknown as Record<string, unknown>)[k]]))
      t.strictSame(actual, expected, `${sinkName}: ${s.name}: route, tenant, content id, requested kids, speke version, outcome, status, body hashes`)
      t.strictSame(r.requested_kids, s.expect.requested_kids, `${sinkName}: ${s.name}: requested kids exactly`)
      t.strictSame(r.returned_kids, s.keys.map((k) => k.kid), `${sinkName}: ${s.name}: returned kids are the reply's`)
      const expectedPrints = s.keys.map((k) => `hmac-sha256:${createHmac('sha256', HMAC_KEY).update(k.key).digest('hex')}`)
      t.strictSame(r.key_fingerprints, expectedPrints, `${sinkName}: ${s.name}: one HMAC fingerprint per returned key, in order`)
      t.strictSame(r.key_fingerprints, s.keys.map((k) => hmacValue(HMAC_KEY, k.key)), `${sinkName}: ${s.name}: fingerprints equal hmacValue(hmacKey, key)`)
      if (s.expect.outcome === 'ok') t.equal(r.error, null, `${sinkName}: ${s.name}: no error`)
      else t.equal(r.error, s.text, `${sinkName}: ${s.name}: the error is the message the caller got`)
    }
  }

  // With the public key alone: every link and the shutdown checkpoint's signature, nothing left unanchored.
  const verifyWith = { publicKey: signing.publicKey }
  t.match(await verifyAuditFiles(auditDir, verifyWith), { ok: true, records: allFiles.length, chains: 1, checkpoints: 1 }, 'verifyAuditFiles: the file chain is intact and signed')
  t.match(await verifyAuditDatabase(PG_URL, schema, verifyWith), { ok: true, records: allRows.length, chains: 1, checkpoints: 1 }, 'verifyAuditDatabase: the database chain is intact and signed')

  // No secret anywhere in storage: tokens, access keys, HMAC key, and every key the replies carried, in every spelling.
  const returnedKeys = sent.flatMap((s) => s.keys.map((k) => k.key))
  t.ok(returnedKeys.length >= 20, `the run returned ${returnedKeys.length} content keys to look for`)
  const keyForms = returnedKeys.flatMap((k) => [...keySpellings(k), k.toString('base64')])
  for (const s of sent) {
    for (const k of s.keys) t.ok(s.text.includes(k.key.toString('base64')), `${s.name}: the key is really in the reply (the scan below looks for the right text)`)
  }
  const fileText = allFileText(auditDir)
  const rowText = [
    ...(await sql<{ j: string }>(`SELECT row_to_json(r)::text AS j FROM "${schema}".audit_records r`)),
    ...(await sql<{ j: string }>(`SELECT row_to_json(c)::text AS j FROM "${schema}".audit_checkpoints c`))
  ].map((r) => r.j).join('\n')
  const logText = proxy.logs.join('')
  t.match(fileText, /hmac-sha256:[0-9a-f]{64}/, 'the files do hold fingerprints')
  t.match(rowText, /hmac-sha256:[0-9a-f]{64}/, 'the rows do hold fingerprints')
  t.match(logText, /key request/, 'the log does hold the key request lines')
  const secrets = [...fixedSecrets(), ...keyForms]
  const leaks = (text: string): string[] => secrets.filter((secret) => text.includes(secret))
  t.strictSame(leaks(fileText), [], `no secret in the audit files (${secrets.length} strings looked for)`)
  t.strictSame(leaks(rowText), [], 'no secret in the audit rows or checkpoints')
  t.strictSame(leaks(logText), [], 'no secret in the log')
})

/** Starts a proxy whose only sink is broken, and checks it refuses keys but keeps answering the heartbeat. */
async function expectFailClosed (
  t: Test, env: Record<string, string>, servedKey: { kid: string, key: Buffer } | undefined
): Promise<RunningProxy> {
  const proxy = await startProxy({ KMS_URL: 'local', LOCAL_KMS_SECRET, AUDIT_HMAC_KEY: HMAC_KEY.toString('base64'), AUDIT_WRITE_TIMEOUT_MS: '1000', ...env })
  t.teardown(async () => { await proxy.close() })
  const call = okV1(DEMO_TOKEN, 'DEMO', 'e2e-fail-closed')
  const res = await send(proxy, call, 0)
  t.equal(res.status, 503, 'the key request is refused with 503')
  t.match(res.text, /^Key request refused: audit trail unavailable, so no key can be served/, 'the body says why, without sink details')
  t.notMatch(res.text, /PlainValue|ContentKey/, 'the body is no CPIX document')
  if (servedKey !== undefined) {
    for (const form of [...keySpellings(servedKey.key), servedKey.key.toString('base64')]) t.notOk(res.text.includes(form), `the body does not hold the key (${form})`)
  }
  const anevia = await send(proxy, mixedRun().find((c) => c.name === 'Anevia dash ok') as Call, 1)
  t.equal(anevia.status, 503, 'Anevia key requests are refused too')
  const hb = await request(`${proxy.url}/cpix/getKey/heartbeat`)
  t.equal(hb.statusCode, 200)
  t.equal(await hb.body.text(), 'SUCCESS', 'the heartbeat still answers SUCCESS')
  const ready = await request(`${proxy.url}/readyz`)
  const readyBody = await ready.body.json() as { checks: Record<string, boolean> }
  t.equal(ready.statusCode, 503, '/readyz says not ready')
  t.equal(readyBody.checks.audit, false, '/readyz names the audit check')
  return proxy
}

/** The key the embedded provider serves for the fail-closed request when auditing works (same LOCAL_KMS_SECRET). */
async function referenceKey (t: Test): Promise<{ kid: string, key: Buffer }> {
  const proxy = await startProxy({ KMS_URL: 'local', LOCAL_KMS_SECRET, AUDIT: 'off' })
  try {
    const res = await send(proxy, okV1(DEMO_TOKEN, 'DEMO', 'e2e-fail-closed'), 0)
    t.equal(res.status, 200, 'with auditing off the same request is served')
    t.equal(res.keys.length, 1)
    return res.keys[0]
  } finally {
    await proxy.close()
  }
}

t.test('fail-closed: the file sink cannot write (read-only directory)', async (t) => {
  const key = await referenceKey(t)
  const { dir, how, restore } = unwritableDir(t, t.testdir())
  t.comment(`audit directory made unwritable by ${how}`)
  const proxy = await expectFailClosed(t, { AUDIT_DIR: dir }, key)
  t.notMatch(readdirSync(dir).join(','), /\.jsonl/, 'nothing was written')
  t.match(proxy.logs.join(''), /audit sink failed to record/, 'the failure is logged')

  // Once the directory is writable again the next request is recorded and served, and readiness recovers.
  restore()
  const again = await send(proxy, okV1(DEMO_TOKEN, 'DEMO', 'e2e-fail-closed'), 2)
  t.equal(again.status, 200, 'served again once the sink works')
  t.strictSame(again.keys, [key], 'the same key as with auditing off')
  const ready = await request(`${proxy.url}/readyz`)
  t.equal(ready.statusCode, 200, '/readyz is ready again')
  await ready.body.text()
  const records = fileRecords(dir)
  t.equal(records.length, 1, 'only the served request is on disk: refused ones left no record')
  const { outcome, status, content_id: contentId, key_fingerprints: prints } = records[0]
  t.strictSame({ outcome, status, contentId, prints }, { outcome: 'ok', status: 200, contentId: 'e2e-fail-closed', prints: [hmacValue(HMAC_KEY, key.key)] })
})

t.test('fail-closed: the audit directory cannot be created (a path under a regular file)', async (t) => {
  const key = await referenceKey(t)
  const file = join(t.testdir(), 'plain-file')
  writeFileSync(file, 'not a directory')
  await expectFailClosed(t, { AUDIT_DIR: join(file, 'audit') }, key)
})

t.test('fail-closed: PostgreSQL is the only sink and cannot be reached', async (t) => {
  const key = await referenceKey(t)
  const dataDir = join(t.testdir(), 'data')
  const proxy = await expectFailClosed(t, { DATA_DIR: dataDir, AUDIT_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test' }, key)
  t.notOk(existsSync(join(dataDir, 'audit')), 'no file sink was opened (no DATA_DIR/audit): PostgreSQL was the only sink')
  t.match(proxy.logs.join(''), /"sink":"postgres"/, 'the failing sink is named in the log')
  t.notMatch(proxy.logs.join(''), /"sink":"file"/, 'and no file sink is mentioned')
})

t.test('AUDIT_FAIL_OPEN=true: with the only sink broken the key is served anyway', async (t) => {
  const key = await referenceKey(t)
  const file = join(t.testdir(), 'plain-file')
  writeFileSync(file, 'not a directory')
  const proxy = await startProxy({ KMS_URL: 'local', LOCAL_KMS_SECRET, AUDIT_DIR: join(file, 'audit'), AUDIT_FAIL_OPEN: 'true', AUDIT_HMAC_KEY: HMAC_KEY.toString('base64') })
  t.teardown(async () => { await proxy.close() })
  const res = await send(proxy, okV1(DEMO_TOKEN, 'DEMO', 'e2e-fail-closed'), 0)
  t.equal(res.status, 200, 'served')
  t.strictSame(res.keys, [key], 'with the key')
  t.match(proxy.logs.join(''), /no audit sink recorded the request; serving it anyway/, 'the unaudited key is logged as such')
  const ready = await request(`${proxy.url}/readyz`)
  t.equal(ready.statusCode, 503, '/readyz still reports the broken sink')
  await ready.body.text()
})
