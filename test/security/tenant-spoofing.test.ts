// Attack: a pass-through token forging site_id "acme" must not show up as managed tenant "acme" in audit queries or metrics.

import t from 'tap'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { encodeEncToken } from '../../src/tenants/enc-token.js'
import { loadTenantsFile, TenantsFileError } from '../../src/tenants/registry.js'
import { fixture } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

const V1_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
const ADMIN_TOKEN = 'admin-token-for-the-spoofing-test-0123456789'
const CREDENTIAL = 'acme-proxy-credential-5f2c9a'
const FORGED = 3

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

interface AuditPage { records: Array<{ tenant: string | null, route: string, status: number }> }

t.test('a forged pass-through site_id "acme" is never counted as managed tenant "acme"', async t => {
  const dir = t.testdir()
  const tenantsFile = join(dir, 'tenants.json')
  writeFileSync(tenantsFile, JSON.stringify({ tenants: [{ id: 'acme', encToken: encodeEncToken('ACME-REAL-SITE', 'real-access-key'), credentials: [`sha256:${sha256(CREDENTIAL)}`] }] }))
  const proxy = await startProxy({ DATA_DIR: dir, TENANTS_FILE: tenantsFile, ADMIN_TOKEN, KMS_URL: 'local' })
  t.teardown(() => proxy.close())

  const post = async (token: string): Promise<number> => {
    const res = await request(`${proxy.url}/cpix/getKey?enc-token=${encodeURIComponent(token)}`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: V1_REQUEST })
    await res.body.text()
    return res.statusCode
  }
  for (let i = 0; i < FORGED; i++) t.equal(await post(encodeEncToken('acme', `guess-${i}`)), 200, 'the forged pass-through token is served (pass-through is on)')
  t.equal(await post(CREDENTIAL), 200, 'the managed tenant is served')

  const admin = async (query: string): Promise<AuditPage> => {
    const res = await request(`${proxy.url}/admin/audit?${query}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    t.equal(res.statusCode, 200)
    return await res.body.json() as AuditPage
  }
  const managed = await admin('tenant=acme')
  t.equal(managed.records.length, 1, '?tenant=acme returns the managed tenant\'s request only')
  t.same(managed.records.map(r => r.tenant), ['acme'])
  const forged = await admin(`tenant=${encodeURIComponent('site:acme')}`)
  t.equal(forged.records.length, FORGED, 'the forged requests are found as pass-through site "site:acme"')
  t.ok(forged.records.every(r => r.tenant === 'site:acme'))

  const metrics = await request(`${proxy.url}/metrics`)
  const text = await metrics.body.text()
  const count = (tenant: string): number => [...text.matchAll(new RegExp(`^speke_proxy_key_requests_total\\{[^}]*tenant="${tenant}"[^}]*\\} (\\d+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0)
  t.equal(count('acme'), 1, 'tenant="acme" counts the managed request only')
  t.equal(count('passthrough'), FORGED, 'forged requests count under tenant="passthrough"')
  t.notMatch(text, /tenant="(site:)?acme-?\d|tenant="site:/, 'no pass-through site id becomes a label')
})

t.test('a managed tenant id cannot take the pass-through form "site:…" (or any id with a colon)', async t => {
  const dir = t.testdir()
  for (const id of ['site:acme', 'a:b', ' acme', 'x'.repeat(65)]) {
    const file = join(dir, 'tenants.json')
    writeFileSync(file, JSON.stringify({ tenants: [{ id, encToken: encodeEncToken('S', 'k'), credentials: [`sha256:${sha256(id)}`] }] }))
    let error: unknown
    try { loadTenantsFile(file, {}) } catch (e) { error = e }
    t.ok(error instanceof TenantsFileError, `${JSON.stringify(id)} is refused`)
    t.match((error as Error | undefined)?.message, /no ':', which marks pass-through sites/)
  }
})
