// Attack: dodge the rate limit and load shedding by spelling a key URL differently,
// or by rotating forged pass-through tokens from one address.

import t from 'tap'
import { connect } from 'node:net'
import { localProvider } from '../../src/kms/local/provider.js'
import { clientAddressKey } from '../../src/tenants/rate-key.js'
import { encodeEncToken } from '../../src/tenants/enc-token.js'
import { startFakeKms } from '../helpers/fake-kms.js'
import type { FakeKms } from '../helpers/fake-kms.js'
import { DEMO_TOKEN, fixture } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

const V1_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')

/** A fake KMS answering every request with a correct reply to the v1 request (what matters here is whether anything reaches it). */
async function kmsWithKeys (): Promise<FakeKms> {
  const answer = (await localProvider({ secret: Buffer.alloc(32, 7), playReadyLaUrl: 'https://license.example.com/pr', hlsKeyUrlBase: 'https://keys.example.com', widevineProvider: 'test' })
    .getKeys({ route: 'speke', dialect: 'speke-v1', token: DEMO_TOKEN, body: V1_REQUEST }, AbortSignal.timeout(5000))).body
  return await startFakeKms((_req, res) => { res.writeHead(200, { 'content-type': 'application/xml' }); res.end(answer) })
}

/** Sends a request target exactly as written (no client normalises it) and returns the status code. */
async function raw (
  base: string, method: string, target: string, body: Buffer = Buffer.alloc(0), headers: Record<string, string> = {}
): Promise<number> {
  const { hostname, port } = new URL(base)
  return await new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      const head = [`${method} ${target} HTTP/1.1`, `host: ${hostname}:${port}`, 'connection: close', `content-length: ${body.length}`, 'content-type: application/xml',
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', '']
      socket.write(Buffer.concat([Buffer.from(head.join('\r\n'), 'latin1'), body]))
    })
    let text = ''
    socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
    socket.on('end', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text)
      if (m === null) reject(new Error(`no HTTP status in ${JSON.stringify(text.slice(0, 80))}`))
      else resolve(Number(m[1]))
    })
    socket.on('error', reject)
  })
}

/** Every byte as %XX, upper- or lower-case hex. */
function percentAll (text: string, lower: boolean): string {
  const hex = [...Buffer.from(text, 'utf8')].map(b => `%${b.toString(16).padStart(2, '0')}`).join('')
  return lower ? hex : hex.toUpperCase()
}

/**
 * Spellings of key URLs for one token, with what each must get once that token's budget is spent: 429 where the
 * router sends it to a key route (it decodes the path, and the token is read from the parsed URL), otherwise a
 * refusal that never reaches the KMS (no route: 404; no readable token: 401; the token twice: 400).
 */
function spellings (token: string): Array<[string, string, string, number]> {
  return [
    ['POST', `/cpix/get%4Bey?enc-token=${token}`, 'percent-encoded K', 429],
    ['POST', `/cpix/get%4bey?enc-token=${token}`, 'percent-encoded K, lower-case hex', 429],
    ['POST', `/%63pix/%67et%4B%65y?enc-token=${token}`, 'several path characters encoded', 429],
    ['POST', `/cpix/getKey?enc-token=${encodeURIComponent(token)}`, 'token with = encoded', 429],
    ['POST', `/cpix/getKey?enc-token=${percentAll(token, false)}`, 'every token byte encoded, upper-case hex', 429],
    ['POST', `/cpix/getKey?enc-token=${percentAll(token, true)}`, 'every token byte encoded, lower-case hex', 429],
    ['POST', `/cpix/getKey?x=1&enc-token=${token}&y=2`, 'token among other parameters', 429],
    ['POST', `/cpix/getKey?enc-token=${token}&enc-token=${token}`, 'token given twice', 400],
    ['POST', `/cpix/getKey#?enc-token=${token}`, 'fragment mark before the query', 401],
    ['POST', `/cpix/getKey%23?enc-token=${token}`, 'encoded fragment mark', 404],
    ['POST', `//cpix/getKey?enc-token=${token}`, 'double slash', 404],
    ['POST', `/cpix/getKey/?enc-token=${token}`, 'trailing slash', 404],
    ['POST', `/cpix/getKey;x=1?enc-token=${token}`, 'semicolon parameter', 404],
    ['POST', `/CPIX/GETKEY?enc-token=${token}`, 'upper case', 404],
    ['POST', `/cpix/./getKey?enc-token=${token}`, 'dot segment', 404],
    ['POST', `/cpix/getKey%3Fenc-token=${token}`, 'encoded question mark', 404],
    ['POST', `/v2/cpix/pallycon/getKey/${token}`, 'PallyCon path', 429],
    ['POST', `/v2/cpix/pallycon/get%4Bey/${token}`, 'PallyCon path, encoded K', 429],
    ['POST', `/v1/cpix/pallycon/getKey/${percentAll(token, true)}`, 'PallyCon v1 path, token fully encoded', 429],
    ['POST', `/v2/keys?enc-token=${token}`, 'JSON key API', 429],
    ['POST', `/v2/k%65ys?enc-token=${token}`, 'JSON key API, encoded e', 429],
    ['GET', `/cpix/anevia/dash/${token}/cid`, 'Anevia', 429],
    ['GET', `/cpix/%61nevia/dash/${token}/cid`, 'Anevia, encoded a', 429],
    ['GET', `/cpix/anevia/d%61sh/${percentAll(token, false)}/cid`, 'Anevia, format and token encoded', 429]
  ]
}

t.test('after the plain URL gets 429, no other spelling of a key URL reaches the KMS', async t => {
  const kms = await kmsWithKeys()
  const proxy = await startProxy({ KMS_URL: kms.url, AUDIT: 'off', RATE_LIMIT_PER_MINUTE: '2', RATE_LIMIT_PER_IP_PER_MINUTE: '0' })
  t.teardown(async () => { await proxy.close(); await kms.close() })
  const plain = `/cpix/getKey?enc-token=${DEMO_TOKEN}`
  const first = [await raw(proxy.url, 'POST', plain, V1_REQUEST), await raw(proxy.url, 'POST', plain, V1_REQUEST), await raw(proxy.url, 'POST', plain, V1_REQUEST)]
  t.same(first, [200, 200, 429], 'the plain URL is limited')
  t.equal(kms.received.length, 2)
  for (const [method, target, name, expected] of spellings(DEMO_TOKEN)) {
    t.equal(await raw(proxy.url, method, target, method === 'POST' ? V1_REQUEST : undefined), expected, name)
  }
  t.equal(kms.received.length, 2, 'not one of them reached the KMS')
})

t.test('while the event loop lags, every spelling routed to a key route is shed; health still answers', async t => {
  const kms = await kmsWithKeys()
  const proxy = await startProxy({ KMS_URL: kms.url, AUDIT: 'off', MAX_EVENT_LOOP_DELAY_MS: '20' })
  // Hog the event loop (the proxy runs in this process): 50 ms busy, then a turn for everything else.
  const hog = setInterval(() => { const end = Date.now() + 50; while (Date.now() < end); }, 10)
  t.teardown(async () => { clearInterval(hog); await proxy.close(); await kms.close() })
  await new Promise(resolve => setTimeout(resolve, 2500))
  for (const [method, target, name, expected] of spellings(DEMO_TOKEN).filter(s => s[3] === 429)) {
    t.equal(await raw(proxy.url, method, target, method === 'POST' ? V1_REQUEST : undefined), 503, `${name} (would be ${expected} by the limit)`)
  }
  t.equal(kms.received.length, 0, 'nothing reached the KMS')
  t.equal(await raw(proxy.url, 'GET', '/healthz'), 200, 'health is not shed')
})

t.test('rotating forged pass-through tokens from one address hits the per-address limit', async t => {
  const kms = await kmsWithKeys()
  const proxy = await startProxy({ KMS_URL: kms.url, AUDIT: 'off', RATE_LIMIT_PER_MINUTE: '100', RATE_LIMIT_PER_IP_PER_MINUTE: '3' })
  t.teardown(async () => { await proxy.close(); await kms.close() })
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) {
    // A new token each time, and a forged X-Forwarded-For that must not count (TRUST_PROXY is off).
    statuses.push(await raw(proxy.url, 'POST', `/cpix/getKey?enc-token=${encodeEncToken('DEMO', `forged-${i}`)}`, V1_REQUEST, { 'x-forwarded-for': `203.0.113.${i}` }))
  }
  t.same(statuses, [200, 200, 200, 429, 429, 429])
  t.equal(kms.received.length, 3, 'three forwarded, then none')
  t.equal(await raw(proxy.url, 'POST', '/cpix/getKey', V1_REQUEST), 429, 'a request without a token counts against its address too')
})

t.test('with TRUST_PROXY the address comes from X-Forwarded-For, so each client behind the balancer has its own budget', async t => {
  const kms = await kmsWithKeys()
  const proxy = await startProxy({ KMS_URL: kms.url, AUDIT: 'off', TRUST_PROXY: 'true', RATE_LIMIT_PER_IP_PER_MINUTE: '2' })
  t.teardown(async () => { await proxy.close(); await kms.close() })
  const from = async (ip: string, i: number): Promise<number> => await raw(proxy.url, 'POST', `/cpix/getKey?enc-token=${encodeEncToken('DEMO', `rot-${ip}-${i}`)}`, V1_REQUEST, { 'x-forwarded-for': ip })
  t.same([await from('198.51.100.1', 0), await from('198.51.100.1', 1), await from('198.51.100.1', 2)], [200, 200, 429])
  t.equal(await from('198.51.100.2', 0), 200, 'another client is not affected')
  t.same([await from('2001:db8:1:2::1', 0), await from('2001:db8:1:2:ffff::9', 1), await from('2001:db8:1:2:aaaa:bbbb:cccc:dddd', 2)], [200, 200, 429], 'an IPv6 client counts by its /64')
})

t.test('client address buckets', async t => {
  t.equal(clientAddressKey('192.0.2.7'), 'ip:192.0.2.7')
  t.equal(clientAddressKey('::ffff:192.0.2.7'), 'ip:192.0.2.7', 'IPv4-mapped is the IPv4 address')
  t.equal(clientAddressKey('2001:db8::1'), clientAddressKey('2001:0db8:0000:0000:ffff:0:0:2'), 'same /64')
  t.not(clientAddressKey('2001:db8:0:1::1'), clientAddressKey('2001:db8:0:2::1'), 'another /64')
  t.equal(clientAddressKey('fe80::1%eth0'), 'ip6:fe80:0:0:0::/64')
})
