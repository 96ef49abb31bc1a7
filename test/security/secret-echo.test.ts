// Attack: a KMS (or a WAF in front of it) that echoes the request URL or the enc-token, in any spelling and charset,
// must not leak a tenant's secret.

import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ServerResponse } from 'node:http'
import { request } from 'undici'
import { localProvider } from '../../src/kms/local/provider.js'
import { startFakeKms } from '../helpers/fake-kms.js'
import type { Received } from '../helpers/fake-kms.js'
import { fixture } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

const V1_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
const MARKER = 'WAF-ECHO-7Q'

// ---------------------------------------------------------------------------------------------
// The secrets, and every spelling of them, built here from first principles (not by the code under test)
// ---------------------------------------------------------------------------------------------

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64')
const b64url = (text: string): string => Buffer.from(text, 'utf8').toString('base64url')

/**
 * An enc-token whose base64 has '+', '/' and '=' padding, so that every URL spelling of it differs. ASCII JSON
 * gives '/' only from a '?' and '+' only from a '~' or '>' in the last byte of a 3-byte group: the access key
 * carries '?xy~', at an offset that varies with i, until both land there (a few tries).
 */
function awkwardToken (siteId: string): { token: string, accessKey: string } {
  for (let i = 0; i < 10_000; i++) {
    const h = createHash('sha256').update(`${siteId}-${i}`).digest('base64')
    const accessKey = `${h.slice(0, 20 + (i % 3))}?xy~${h.slice(20, 40)}`
    const token = b64(JSON.stringify({ site_id: siteId, access_key: accessKey }))
    if (token.includes('+') && token.includes('/') && token.endsWith('=') && accessKey.includes('+') && accessKey.includes('/')) return { token, accessKey }
  }
  throw new Error(`no awkward token for ${siteId}`)
}

const pct = (c: string): string => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`
const allPercent = (s: string): string => s.split('').map(pct).join('')

function spellings (secret: string): string[] {
  const encoded = encodeURIComponent(secret)
  return [...new Set([
    secret,
    secret.replace(/=+$/, ''),
    secret.replace(/\+/g, '%2B'), // what the proxy sends upstream in a query
    secret.replace(/\+/g, '%2b'),
    secret.replace(/\+/g, ' '), // '+' decoded as a space by a form parser
    secret.replace(/\+/g, '%20'),
    encoded,
    encoded.replace(/%[0-9A-F]{2}/g, m => m.toLowerCase()),
    secret.replace(/\//g, '%2f'), // partially encoded
    secret.replace(/=/g, '%3D'),
    encodeURIComponent(encoded), // encoded twice
    allPercent(secret),
    allPercent(secret).toLowerCase(),
    secret.replace(/\//g, '\\/'), // JSON with escaped solidus
    secret.split('').map(c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
    secret.split('').map(c => `&#${c.charCodeAt(0)};`).join(''),
    b64(secret), b64(secret).replace(/=+$/, ''), b64url(secret), b64url(secret).replace(/=+$/, ''),
    b64(`xy${secret}`), b64url(`z${secret}`) // inside a larger base64 blob, at another alignment
  ])]
}

const REAL = awkwardToken('ACME')
const PROXY_CREDENTIAL = `pxc-${randomBytes(24).toString('base64url')}`
const PASSTHROUGH = awkwardToken('OTHER')
const SITE_CREDENTIAL = JSON.stringify({ site_id: 'ACME', access_key: REAL.accessKey })

/** What must appear nowhere: whole spellings, and a slice from the middle of each secret (a cut-off echo). */
function forbidden (token: string, accessKey: string): string[] {
  return [
    ...spellings(token), ...spellings(accessKey), ...spellings(SITE_CREDENTIAL).slice(0, 1),
    token.slice(20, 52), accessKey.slice(6, 30), ...spellings(PROXY_CREDENTIAL)
  ]
}

/** Where a spelling was found in a text (also case-changed, also in UTF-16 read as bytes). */
function leaks (text: string, secrets: string[]): string[] {
  const flat = text.replaceAll('\u0000', '').toLowerCase()
  return secrets.filter(s => flat.includes(s.toLowerCase())).map(s => s.slice(0, 24))
}

// ---------------------------------------------------------------------------------------------
// The echoing KMS
// ---------------------------------------------------------------------------------------------

/** The token as the KMS received it (the exact upstream spelling), read from the request path. */
function receivedToken (req: Received): string {
  const query = /[?&]enc-token=([^&]*)/.exec(req.url)?.[1]
  if (query !== undefined) return query
  return /\/getKey\/([^?]*)|\/anevia\/[^/]+\/(.*)\/[^/]*$/.exec(req.url)?.slice(1).find(v => v !== undefined) ?? ''
}

interface Echo {
  name: string
  status: number
  type?: string
  body: (req: Received) => Buffer | Promise<Buffer>
  header?: (req: Received) => Record<string, string>
}

const keyServer = localProvider({ secret: randomBytes(32), playReadyLaUrl: 'https://license.example.com/pr', hlsKeyUrlBase: 'https://keys.example.com/hls', widevineProvider: 'widevine_test' })

/** A complete, correct CPIX reply to what the KMS received (from the embedded key server), with the URL in a comment. */
async function cpixWithComment (req: Received): Promise<Buffer> {
  const anevia = /\/cpix\/anevia\/(dash|hls)\/.*\/([^/]*)$/.exec(req.url)
  const route = anevia !== null ? 'anevia' : req.url.includes('/pallycon/') ? 'pallycon-v2' : 'speke'
  const reply = await keyServer.getKeys({
    route,
    dialect: route === 'speke' ? 'speke-v1' : 'pallycon',
    token: decodedToken(req),
    anevia: anevia !== null ? { format: anevia[1] as 'dash' | 'hls', contentId: decodeURIComponent(anevia[2]) } : undefined,
    body: req.body.length > 0 ? req.body : undefined
  }, AbortSignal.timeout(5000))
  if (reply.status !== 200) throw new Error(`the embedded key server answered ${reply.status}`)
  return Buffer.from(reply.body.toString('utf8').replace(/(<\?xml[^>]*\?>)?/, `$1<!-- ${MARKER} ${req.url} -->`))
}

const utf16be = (text: string): Buffer => Buffer.from(text, 'utf16le').swap16()
const decodedToken = (req: Received): string => decodeURIComponent(receivedToken(req))

const ECHOES: Echo[] = [
  { name: 'text 403 quoting the URL', status: 403, type: 'text/plain', body: r => Buffer.from(`${MARKER} forbidden: ${r.method} ${r.url}`) },
  { name: 'text 400 quoting the token in every spelling', status: 400, type: 'text/plain', body: r => Buffer.from(`${MARKER} ${spellings(decodedToken(r)).join(' | ')}`) },
  { name: 'HTML 500 quoting the URL', status: 500, type: 'text/html', body: r => Buffer.from(`<html><body><h1>${MARKER}</h1><p>${r.url}</p><p>${allPercent(decodedToken(r))}</p></body></html>`) },
  { name: 'UTF-16LE (BOM) text 403', status: 403, type: 'text/plain; charset=utf-16', body: r => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`${MARKER} denied ${r.url}`, 'utf16le')]) },
  { name: 'XML error 400 quoting the URL', status: 400, type: 'application/xml', body: r => Buffer.from(`<?xml version="1.0"?><Error><Code>${MARKER}</Code><Message>${r.url}</Message><Token>${decodedToken(r)}</Token></Error>`) },
  { name: 'a complete CPIX reply (200) with the URL in a comment', status: 200, type: 'application/xml', body: cpixWithComment },
  { name: 'XML with status 200 quoting the token', status: 200, type: 'application/xml', body: r => Buffer.from(`<?xml version="1.0"?><Error><Code>${MARKER}</Code><Message>${r.url}</Message></Error>`) },
  { name: 'UTF-16BE XML (no BOM, declared) with status 200', status: 200, type: 'application/xml', body: r => utf16be(`<?xml version="1.0" encoding="UTF-16"?><cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" id="${decodedToken(r)}"/>`) },
  { name: 'CPIX-looking 200 with the token in a content type', status: 200, type: undefined, body: () => Buffer.from('<?xml version="1.0"?><cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" id="x"/>'), header: r => ({ 'content-type': `application/xml; token=${decodedToken(r)}` }) },
  { name: 'JSON error (200) with the URL in error_message', status: 200, type: 'application/json', body: r => Buffer.from(JSON.stringify({ error_code: '1001', error_message: `invalid token ${r.url}` })) },
  { name: 'JSON error (500) with the access key base64 and JSON-escaped', status: 500, type: 'application/json', body: r => { const key = (JSON.parse(Buffer.from(decodedToken(r), 'base64').toString('utf8')) as { access_key: string }).access_key; return Buffer.from(JSON.stringify({ error_code: 1002, error_message: `bad access_key ${b64(key)} / ${key.replace(/\//g, '\\/')} / ${encodeURIComponent(key).toLowerCase()}` })) } },
  { name: 'JSON error (403) in UTF-16LE with charset, no BOM, the token lower-case percent-encoded', status: 403, type: 'application/json; charset=UTF-16LE', body: r => Buffer.from(JSON.stringify({ error_code: '1003', error_message: `site token ${allPercent(decodedToken(r)).toLowerCase()} rejected` }), 'utf16le') },
  { name: 'JSON error (400) with the token \\u-escaped after 180 characters', status: 400, type: 'application/json', body: r => Buffer.from(JSON.stringify({ error_code: '1004', error_message: `${'x'.repeat(180)} request ${decodedToken(r)}` }).replace(decodedToken(r).slice(0, 12), decodedToken(r).slice(0, 12).split('').map(c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''))) },
  { name: 'JSON with raw text outside the allow-list', status: 400, type: 'application/json', body: r => Buffer.from(JSON.stringify({ detail: `${MARKER} ${r.url}`, trace: r.url })) }
]

function serve (echo: Echo) {
  return (req: Received, res: ServerResponse): void => {
    const headers: Record<string, string> = echo.header?.(req) ?? {}
    if (echo.type !== undefined) headers['content-type'] = echo.type
    Promise.resolve(echo.body(req)).then(body => {
      res.writeHead(echo.status, headers)
      res.end(body)
    }, (err: Error) => {
      res.writeHead(599, { 'content-type': 'text/plain' })
      res.end(`the fake KMS failed: ${err.message}`)
    })
  }
}

// ---------------------------------------------------------------------------------------------
// The attack through the real server: callers, responses, audit records, log lines
// ---------------------------------------------------------------------------------------------

function filesUnder (dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [path]
  })
}

t.test('a KMS echoing the URL or the token in any spelling leaks no secret to the caller, the audit or the log', async t => {
  const dir = t.testdir()
  const auditDir = join(dir, 'audit')
  const tenants = join(dir, 'tenants.json')
  writeFileSync(tenants, JSON.stringify({ tenants: [{ id: 'acme', encToken: REAL.token, credentials: [`sha256:${createHash('sha256').update(PROXY_CREDENTIAL).digest('hex')}`] }] }))
  const kms = await startFakeKms(serve(ECHOES[0]))
  const proxy = await startProxy({ KMS_URL: kms.url, TENANTS_FILE: tenants, AUDIT: 'on', AUDIT_DIR: auditDir, AUDIT_MIN_FREE_MB: '0', RATE_LIMIT_PER_MINUTE: '100000', KMS_TIMEOUT_MS: '5000' })
  let closed = false
  t.teardown(async () => { if (!closed) await proxy.close(); await kms.close() })

  const managedSecrets = forbidden(REAL.token, REAL.accessKey)
  const passthroughSecrets = forbidden(PASSTHROUGH.token, PASSTHROUGH.accessKey)
  const callers = [
    { name: 'managed, SPEKE', secrets: managedSecrets, call: async () => await request(`${proxy.url}/cpix/getKey?enc-token=${encodeURIComponent(PROXY_CREDENTIAL)}`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: V1_REQUEST }) },
    { name: 'managed, PallyCon API', secrets: managedSecrets, call: async () => await request(`${proxy.url}/v2/cpix/pallycon/getKey/${encodeURIComponent(PROXY_CREDENTIAL)}`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: V1_REQUEST }) },
    { name: 'managed, Anevia', secrets: managedSecrets, call: async () => await request(`${proxy.url}/cpix/anevia/dash/${encodeURIComponent(PROXY_CREDENTIAL)}/cid-1`) },
    { name: 'pass-through, SPEKE', secrets: passthroughSecrets, call: async () => await request(`${proxy.url}/cpix/getKey?enc-token=${encodeURIComponent(PASSTHROUGH.token)}`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: V1_REQUEST }) },
    { name: 'pass-through, PallyCon API', secrets: passthroughSecrets, call: async () => await request(`${proxy.url}/v2/cpix/pallycon/getKey/${encodeURIComponent(PASSTHROUGH.token)}`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: V1_REQUEST }) }
  ]

  let asked = 0
  for (const echo of ECHOES) {
    kms.handle(serve(echo))
    for (const caller of callers) {
      const res = await caller.call()
      const text = Buffer.from(await res.body.arrayBuffer()).toString('utf8')
      const label = `${echo.name} → ${caller.name}`
      asked++
      t.equal(kms.received.length, asked, `${label}: the request reached the echoing KMS`)
      t.ok(res.statusCode >= 400, `${label}: an error (${res.statusCode}), not keys`)
      t.same(leaks(text, caller.secrets), [], `${label}: no secret in the body "${text.slice(0, 90)}"`)
      t.same(leaks(JSON.stringify(res.headers), caller.secrets), [], `${label}: no secret in the headers`)
      t.notOk(text.includes(MARKER), `${label}: none of the KMS's raw text`)
      t.ok(text.length <= 300, `${label}: a short message (${text.length} characters)`)
    }
  }
  const last = await callers[0].call()
  t.match(await last.body.text(), /^KMS error \(HTTP 400\): the KMS answered a JSON error without error_message/, 'a JSON error outside the allow-list is summarised, not quoted')

  // The allow-listed JSON message is quoted, scrubbed (not dropped) and cut.
  kms.handle(serve(ECHOES.find(e => e.name.startsWith('JSON error (200)')) ?? ECHOES[0]))
  const quoted = await (await callers[0].call()).body.text()
  t.match(quoted, /^KMS error \(HTTP 200\): 1001 invalid token \/cpix\/getKey\?enc-token=\[redacted\]$/, 'error_code and error_message, with the token scrubbed')

  closed = true
  await proxy.close()
  const audit = filesUnder(auditDir).map(f => readFileSync(f, 'utf8')).join('\n')
  t.ok(audit.includes('acme'), 'the audit holds records of the managed tenant')
  const logs = proxy.logs.join('')
  t.ok(logs.includes('"msg":"key request"') || logs.includes('key request'), 'the log holds the key request lines')
  for (const [name, secrets] of [['managed tenant', managedSecrets], ['pass-through caller', passthroughSecrets]] as const) {
    t.same(leaks(audit, secrets), [], `${name}: no secret in any audit file`)
    t.same(leaks(logs, secrets), [], `${name}: no secret in any log line`)
  }
  t.same(kms.received.filter(r => r.url.includes(PROXY_CREDENTIAL)).length, 0, 'the proxy credential itself never went upstream')
})
