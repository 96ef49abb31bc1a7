// What a KMS reply may carry back: secrets found in every spelling and charset, only allow-listed JSON fields quoted,
// keys bound to the credential.

import t from 'tap'
import { randomBytes } from 'node:crypto'
import { localProvider } from '../../src/kms/local/provider.js'
import { redactUrl, secretScrubber } from '../../src/redact.js'
import { rejectNonCpix, replyCharset } from '../../src/pipeline/kms-reply.js'
import { decodeXmlBytes } from '../../src/cpix/decode.js'
import { parseCpix } from '../../src/cpix/parse.js'
import { fixture } from '../helpers/fixtures.js'

// '?xy~' in the access key puts '/' and '+' into the token's base64 (see test/security/secret-echo.test.ts).
const ACCESS_KEY = 'k3Yq8/Zr+T0pWm5?xy~Hn2Lb7VcXs4RdQe'
const TOKEN = Buffer.from(JSON.stringify({ site_id: 'ACME', access_key: ACCESS_KEY })).toString('base64')

t.test('the token and its access key are found in every spelling; ordinary text is left alone', async t => {
  t.ok(/[+/]/.test(TOKEN) && TOKEN.endsWith('='), 'the token has the characters URL encoding changes')
  const scrubber = secretScrubber([TOKEN])
  const hex = (s: string, lower: boolean): string => s.split('').map(c => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).map(e => lower ? e : e.toUpperCase()).join('')
  const spellings = [
    TOKEN, TOKEN.replace(/\+/g, '%2B'), TOKEN.replace(/\+/g, '%2b').replace(/\//g, '%2F'), TOKEN.replace(/\+/g, ' '), encodeURIComponent(TOKEN),
    encodeURIComponent(encodeURIComponent(TOKEN)), hex(TOKEN, true), hex(TOKEN, false), TOKEN.toLowerCase(), TOKEN.replace(/\//g, '\\/'),
    TOKEN.split('').map(c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`).join(''), TOKEN.replace(/=/g, '&#61;'),
    Buffer.from(TOKEN).toString('base64'), Buffer.from(`ab${TOKEN}`).toString('base64url'), TOKEN.replace(/=+$/, ''),
    ACCESS_KEY, encodeURIComponent(ACCESS_KEY).toLowerCase(), Buffer.from(ACCESS_KEY).toString('base64url').replace(/=+$/, ''), ACCESS_KEY.replace(/\//g, '\\/'),
    TOKEN.slice(30, 50) // a cut-off copy
  ]
  for (const spelling of spellings) {
    const out = scrubber.scrub(`before ${spelling} after`)
    t.match(out, /^before .*\[redacted\].* after$/, `scrubbed: ${spelling.slice(0, 30)}…`)
    t.notOk(out.toLowerCase().includes(spelling.slice(4, 20).toLowerCase()), `nothing of it left: ${spelling.slice(0, 30)}…`)
    if (spelling.length > 30) t.ok(scrubber.contains(`<x a="${spelling}"/>`), `found in a large body: ${spelling.slice(0, 30)}…`)
  }
  for (const ordinary of ['Cannot find the Site ID.', 'Invalid request parameter: kid 0b8f1a2c-3d4e-5f60-7182-93a4b5c6d7e8', 'content id abc123 %2B &amp; \\u0041']) {
    t.equal(scrubber.scrub(ordinary), ordinary, `left alone: ${ordinary}`)
  }
})

t.test('log URLs: the token position of every spelling of a key URL is hidden', async t => {
  const up = TOKEN.replace(/\+/g, '%2B')
  const cases: Array<[string, string]> = [
    [`/cpix/getKey?enc-token=${up}&x=1`, '/cpix/getKey?enc-token=[redacted]&x=1'],
    [`/cpix/get%4Bey?Enc%2Dtoken=${up}`, '/cpix/get%4Bey?Enc%2Dtoken=[redacted]'],
    [`/cpix/getKey#?enc-token=${up}`, '/cpix/getKey#?enc-token=[redacted]'],
    [`/v2/cpix/pallycon/get%4Bey/${TOKEN}?key-rotation=true`, '/v2/cpix/pallycon/get%4Bey/[redacted]/[redacted]?key-rotation=true'],
    ['/V1/CPIX/PALLYCON/GETKEY/some-proxy-credential', '/V1/CPIX/PALLYCON/GETKEY/[redacted]'],
    ['/cpix/anevia/dash/some-proxy-credential/cid-1', '/cpix/anevia/dash/[redacted]/cid-1'],
    ['/cpix/anevia/dash/some-proxy-credential', '/cpix/anevia/dash/[redacted]'],
    [`/nothing/${encodeURIComponent(TOKEN)}/here`, '/nothing/[redacted]/here'],
    [`/cpix/getKey?${TOKEN}`, '/cpix/getKey?[redacted]'],
    [`/cpix/getKey?token=${up}`, '/cpix/getKey?token=[redacted]']
  ]
  for (const [url, expected] of cases) t.equal(redactUrl(url), expected, url.slice(0, 40))
})

t.test('reply charset: BOM, then Content-Type, then the XML declaration, then the NUL pattern', async t => {
  const le = (s: string): Buffer => Buffer.from(s, 'utf16le')
  t.equal(replyCharset(Buffer.concat([Buffer.from([0xfe, 0xff]), le('{}').swap16()]), 'application/json; charset=utf-8'), 'utf-16be', 'a BOM wins')
  t.equal(replyCharset(le('{"a":1}'), 'application/json; charset="UTF-16LE"'), 'UTF-16LE')
  t.equal(replyCharset(le('<?xml version="1.0" encoding="UTF-16"?><a/>'), 'application/xml'), 'utf-16le', 'declared UTF-16, byte order from the NULs')
  t.equal(replyCharset(le('<?xml version="1.0" encoding="UTF-16"?><a/>').swap16(), undefined), 'utf-16be')
  t.equal(replyCharset(Buffer.from('{"a":1}'), 'application/json; charset=bogus-9'), 'utf-8', 'an unknown charset is ignored')
})

t.test('KMS errors: allow-listed JSON fields only, scrubbed and cut; the embedded provider\'s own refusals quoted', async t => {
  const reply = (status: number, contentType: string, body: string | Buffer, refusal?: string) => (
    { status, contentType, body: Buffer.isBuffer(body) ? body : Buffer.from(body), latencyMs: 1, refusal }
  )
  const error = (r: ReturnType<typeof reply>): { status: number, message: string } => {
    try {
      rejectNonCpix(r, [TOKEN])
    } catch (err) {
      return { status: (err as { status: number }).status, message: (err as Error).message }
    }
    return { status: 0, message: 'passed' }
  }
  const long = error(reply(200, 'application/json', JSON.stringify({ error_code: 1003, error_message: `Cannot find the Site ID. ${'y'.repeat(300)}`, trace: 'at Foo.bar' })))
  t.equal(long.status, 403)
  t.match(long.message, /^KMS error \(HTTP 200\): 1003 Cannot find the Site ID\. y+…$/)
  t.equal(long.message.length, 'KMS error (HTTP 200): '.length + 201, 'cut to 200 characters and an ellipsis')
  const utf16 = error(reply(400, 'application/json; charset=utf-16', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(JSON.stringify({ error_code: 'E1', error_message: `invalid parameter ${TOKEN}` }), 'utf16le')])))
  t.same(utf16, { status: 400, message: 'KMS error (HTTP 400): E1 invalid parameter [redacted]' }, 'a UTF-16 JSON error is read, classified and scrubbed')
  const code = error(reply(500, 'application/json', JSON.stringify({ error_code: '<script>', message: 'boom' })))
  t.equal(code.message, 'KMS error (HTTP 500): boom', 'an error code that is not a code is dropped')
  const plain = error(reply(404, 'text/plain', `no route for ${TOKEN}`))
  t.same(plain, { status: 404, message: 'KMS refused the request (HTTP 404): the KMS has no such URL (check KMS_URL) (the KMS\'s own text is not passed on)' })
  const own = error(reply(422, 'text/plain', 'ignored', 'The embedded key provider delivers keys in the clear only: remove DeliveryDataList'))
  t.same(own, { status: 422, message: 'KMS refused the request (HTTP 422): The embedded key provider delivers keys in the clear only: remove DeliveryDataList' })
  const cpix = error(reply(200, 'application/xml', Buffer.from(`<?xml version="1.0" encoding="UTF-16"?><cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" id="${encodeURIComponent(TOKEN).toLowerCase()}"/>`, 'utf16le')))
  t.equal(cpix.status, 502, 'a CPIX reply quoting the token (UTF-16, lower-case escapes) is withheld')
  t.same(error(reply(200, 'application/xml', '<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" id="abc"/>')), { status: 0, message: 'passed' }, 'a clean CPIX reply goes on')
})

t.test('a CPIX reply quoting the token is withheld whatever the spelling of its charset label, and in the byte order the label does not name', async t => {
  const withheld = (contentType: string, body: Buffer): boolean => {
    try {
      rejectNonCpix({ status: 200, contentType, body, latencyMs: 1 }, [TOKEN])
      return false
    } catch (err) {
      return (err as { code?: string }).code === 'KMS_REPLY_QUOTES_SECRET'
    }
  }
  const cpix = (id: string): string => `<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" id="${id}"/>`
  for (const label of ['utf-8', 'UTF-8', 'utf8', 'unicode-1-1-utf-8', 'bogus-9']) {
    t.ok(withheld(`application/xml; charset=${label}`, Buffer.from(cpix(TOKEN))), `UTF-8 body labelled ${label}`)
    t.ok(withheld('application/xml', Buffer.from(`<?xml version="1.0" encoding="${label}"?>${cpix(TOKEN)}`)), `UTF-8 body declared ${label}`)
    t.notOk(withheld(`application/xml; charset=${label}`, Buffer.from(cpix('abc'))), `a clean reply labelled ${label} goes on`)
  }
  // Labelled little-endian (in any spelling), the token written big-endian inside: the reading the label names shows a
  // CPIX document without it, the other byte order shows it.
  const le = (text: string): Buffer => Buffer.from(text, 'utf16le')
  const [head, tail] = cpix('\u0000').split('\u0000')
  const mixed = Buffer.concat([le(head), le(TOKEN).swap16(), le(tail)])
  for (const label of ['utf-16le', 'UTF-16LE', 'csunicode', 'ucs-2']) {
    t.ok(withheld(`application/xml; charset=${label}`, mixed), `UTF-16LE body labelled ${label}, the token big-endian`)
  }
  t.ok(withheld('application/xml; charset=UTF-8', Buffer.from(cpix(TOKEN), 'utf16le')), 'UTF-16LE body labelled UTF-8')
})

t.test('embedded provider: keys belong to the whole credential, whatever spelling of the token', async t => {
  const provider = localProvider({ secret: randomBytes(32), playReadyLaUrl: 'https://pr.example.com', hlsKeyUrlBase: 'https://keys.example.com', widevineProvider: 'test' })
  const body = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
  const keys = async (token: string): Promise<string[]> => {
    const reply = await provider.getKeys({ route: 'speke', dialect: 'speke-v1', token, body }, AbortSignal.timeout(5000))
    t.equal(reply.status, 200)
    return parseCpix(decodeXmlBytes(reply.body)).contentKeys.map(k => `${k.kid}=${k.plainValue ?? ''}/${k.explicitIV ?? ''}`)
  }
  const real = await keys(TOKEN)
  t.same(await keys(TOKEN.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')), real, 'the url-safe unpadded spelling is the same credential')
  const other = await keys(Buffer.from(JSON.stringify({ site_id: 'ACME', access_key: 'guess' })).toString('base64'))
  t.same(other.filter(k => real.includes(k)), [], 'the same site with another access key shares no key')
  const otherSite = await keys(Buffer.from(JSON.stringify({ site_id: 'ACMF', access_key: ACCESS_KEY })).toString('base64'))
  t.same(otherSite.filter(k => real.includes(k)), [], 'the same access key under another site shares no key')
})
