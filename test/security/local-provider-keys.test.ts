// Attack: with KMS_URL=local, a forged pass-through token naming a managed tenant's site must not get that tenant's keys.

import t from 'tap'
import type { Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { decodeXmlBytes } from '../../src/cpix/decode.js'
import { parseCpix } from '../../src/cpix/parse.js'
import { fixture } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'
import type { RunningProxy } from '../helpers/proxy.js'

const SPEKE_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
const PALLYCON_REQUEST = fixture('pallycon/dash-vod-request.xml')

/** A PallyCon enc-token, built here from its documented shape (base64 of JSON with site_id and access_key). */
const token = (siteId: string, accessKey: string): string => Buffer.from(JSON.stringify({ site_id: siteId, access_key: accessKey })).toString('base64')

const REAL_ACCESS_KEY = randomBytes(36).toString('base64')
const REAL_TOKEN = token('ACME', REAL_ACCESS_KEY)
const FORGED_TOKEN = token('ACME', 'guess')
const PROXY_CREDENTIAL = `cred-${randomBytes(24).toString('hex')}`
const SECRET = randomBytes(32).toString('base64')

type Route = 'speke' | 'pallycon'

/** kid → key (and IV where the reply has one) of every content key in a reply. */
async function keysFor (proxy: RunningProxy, route: Route, encToken: string): Promise<Map<string, string>> {
  const url = route === 'speke'
    ? `${proxy.url}/cpix/getKey?enc-token=${encodeURIComponent(encToken)}`
    : `${proxy.url}/v2/cpix/pallycon/getKey/${encodeURIComponent(encToken)}`
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: route === 'speke' ? SPEKE_REQUEST : PALLYCON_REQUEST })
  const body = Buffer.from(await res.body.arrayBuffer())
  if (res.statusCode !== 200) throw new Error(`${route} answered ${res.statusCode}: ${body.toString('utf8').slice(0, 200)}`)
  const doc = parseCpix(decodeXmlBytes(body))
  return new Map(doc.contentKeys.map(k => [k.kid.toLowerCase(), `${k.plainValue ?? ''}/${k.explicitIV ?? ''}`]))
}

function tenantsFile (dir: string): string {
  const file = join(dir, 'tenants.json')
  const hash = createHash('sha256').update(PROXY_CREDENTIAL).digest('hex')
  writeFileSync(file, JSON.stringify({ tenants: [{ id: 'acme', encToken: REAL_TOKEN, credentials: [`sha256:${hash}`] }] }))
  return file
}

async function startLocal (t: Test, dir: string, secret = SECRET): Promise<RunningProxy> {
  const proxy = await startProxy({ KMS_URL: 'local', LOCAL_KMS_SECRET: secret, TENANTS_FILE: tenantsFile(dir), AUDIT: 'off', ALLOW_PASSTHROUGH: 'true' })
  t.teardown(() => proxy.close())
  return proxy
}

t.test('a forged token naming the managed tenant\'s site gets other keys; the real token gets the tenant\'s keys', async t => {
  const proxy = await startLocal(t, t.testdir())
  for (const route of ['speke', 'pallycon'] as const) {
    const managed = await keysFor(proxy, route, PROXY_CREDENTIAL)
    const forged = await keysFor(proxy, route, FORGED_TOKEN)
    const realPassedThrough = await keysFor(proxy, route, REAL_TOKEN)
    t.ok(managed.size >= 1, `${route}: the managed tenant gets keys`)
    t.equal(forged.size, managed.size, `${route}: the forged token is answered (same request, same number of keys)`)
    const managedKeys = new Set(managed.values())
    t.same([...forged.values()].filter(k => managedKeys.has(k)), [], `${route}: not one of the forged token's keys is a key of the managed tenant`)
    if (route === 'pallycon') t.same([...forged.keys()].filter(kid => managed.has(kid)), [], 'pallycon: the KMS-assigned kids differ too')
    t.same([...realPassedThrough.entries()], [...managed.entries()], `${route}: the real token passed through is the same upstream credential, so the same kids and keys`)
    const otherGuess = await keysFor(proxy, route, token('ACME', `${REAL_ACCESS_KEY.slice(0, -1)}${REAL_ACCESS_KEY.endsWith('x') ? 'y' : 'x'}`))
    t.same([...otherGuess.values()].filter(k => managedKeys.has(k)), [], `${route}: an access key one character off gets other keys as well`)
  }
})

t.test('the same token keeps its keys across two server instances with the same secret, and only with it', async t => {
  const first = await startLocal(t, t.testdir())
  const second = await startLocal(t, t.testdir())
  const otherSecret = await startLocal(t, t.testdir(), randomBytes(32).toString('base64'))
  for (const route of ['speke', 'pallycon'] as const) {
    const a = await keysFor(first, route, PROXY_CREDENTIAL)
    const b = await keysFor(second, route, PROXY_CREDENTIAL)
    t.same([...b.entries()], [...a.entries()], `${route}: managed tenant, same keys on another instance with the same LOCAL_KMS_SECRET`)
    t.same([...(await keysFor(second, route, FORGED_TOKEN)).entries()], [...(await keysFor(first, route, FORGED_TOKEN)).entries()], `${route}: a pass-through token is stable too`)
    const c = await keysFor(otherSecret, route, PROXY_CREDENTIAL)
    t.notSame([...c.values()], [...a.values()], `${route}: another secret gives other keys`)
  }
})

t.test('attack: a track type long enough to overflow the key derivation gets a 422 naming the limit, not a 500', async t => {
  const proxy = await startLocal(t, t.testdir())
  const xml = fixture('pallycon/dash-live-keyrotation-request.xml').toString()
  t.ok(xml.includes('intendedTrackType="HD"'), 'the fixture has a track type')
  for (const length of [65, 1100, 100_000]) {
    const body = xml.replace('intendedTrackType="HD"', `intendedTrackType="${'V'.repeat(length)}"`)
    const res = await request(`${proxy.url}/v2/cpix/pallycon/getKey/${encodeURIComponent(REAL_TOKEN)}`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body })
    const text = await res.body.text()
    t.equal(res.statusCode, 422, `${length} characters: 422`)
    t.equal(text, `A ContentKeyUsageRule@intendedTrackType is ${length} characters long; speke-proxy accepts at most 64`)
  }
})
