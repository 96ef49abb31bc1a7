// Specification of the tenant registry: the tenants file, and who a presented enc-token or proxy credential is.

import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ProxyError } from '../../src/errors.js'
import { encodeEncToken } from '../../src/tenants/enc-token.js'
import { TenantsFileError, hashCredential, loadTenantsFile, resolveCaller } from '../../src/tenants/registry.js'
import type { TenantRegistry } from '../../src/tenants/registry.js'

const ACME_TOKEN = encodeEncToken('ACME', 'acme-access-key')
const CREDENTIAL = 'spk_acme-credential-0123456789'
const OTHER_CREDENTIAL = 'spk_acme-second-credential-0123'
const hashLine = (credential: string): string => `sha256:${hashCredential(credential).toString('hex')}`

function tenantsFile (t: Parameters<Parameters<typeof t.test>[1]>[0], tenants: unknown): string {
  const file = join(t.testdir(), 'tenants.json')
  writeFileSync(file, JSON.stringify({ tenants }))
  return file
}

function thrown (work: () => unknown): Error | undefined {
  try {
    work()
    return undefined
  } catch (err) {
    return err instanceof Error ? err : undefined
  }
}

t.test('a tenants file: id, enc-token (inline or from the environment), credential hashes', async t => {
  const file = tenantsFile(t, [
    { id: 'acme', encToken: ACME_TOKEN, credentials: [hashLine(CREDENTIAL), hashLine(OTHER_CREDENTIAL).toUpperCase().replace('SHA256:', 'sha256:')] },
    { id: 'globex', encToken: 'env:GLOBEX_TOKEN', credentials: [hashLine('spk_globex-credential-0123456')] }
  ])
  const tenants = loadTenantsFile(file, { GLOBEX_TOKEN: encodeEncToken('GLOBEX', 'globex-key') })
  t.same(tenants.map(x => [x.id, x.siteId, x.credentialHashes.length]), [['acme', 'ACME', 2], ['globex', 'GLOBEX', 1]])
  t.equal(tenants[1].encToken, encodeEncToken('GLOBEX', 'globex-key'))
})

t.test('a tenants file that cannot be used names the file, the tenant and the fix', async t => {
  const ok = { id: 'acme', encToken: ACME_TOKEN, credentials: [hashLine(CREDENTIAL)] }
  const cases: Array<[unknown, RegExp]> = [
    [{ ...ok, id: 'site:ACME' }, /must be 1 to 64 letters/],
    [{ ...ok, id: '' }, /needs a non-empty "id"/],
    [{ ...ok, encToken: 'not-a-token' }, /encToken is not a PallyCon enc-token/],
    [{ ...ok, encToken: 'env:MISSING' }, /environment variable MISSING, which is not set/],
    [{ ...ok, credentials: [] }, /needs "credentials"/],
    [{ ...ok, credentials: ['sha256:1234'] }, /64 hex digits/]
  ]
  for (const [tenant, message] of cases) {
    const error = thrown(() => loadTenantsFile(tenantsFile(t, [tenant]), {}))
    t.ok(error instanceof TenantsFileError, `a TenantsFileError (configuration error, exit 78): ${String(message)}`)
    t.match(error?.message, message)
  }
  t.throws(() => loadTenantsFile(tenantsFile(t, [ok, { ...ok }]), {}), /tenant id "acme" appears twice/)
  t.throws(() => loadTenantsFile(tenantsFile(t, [ok, { ...ok, id: 'globex' }]), {}), /listed for tenants "acme" and "globex"/, 'one credential, one tenant')
  const notJson = join(t.testdir(), 'broken.json')
  writeFileSync(notJson, '{')
  t.throws(() => loadTenantsFile(notJson, {}), /cannot be read as JSON/)
})

t.test('a proxy credential resolves to its tenant, and the tenant\'s own token goes upstream', async t => {
  const registry: TenantRegistry = { tenants: loadTenantsFile(tenantsFile(t, [{ id: 'acme', encToken: ACME_TOKEN, credentials: [hashLine(CREDENTIAL), hashLine(OTHER_CREDENTIAL)] }]), {}), allowPassthrough: false }
  t.same(resolveCaller(CREDENTIAL, registry), { tenant: 'acme', upstreamToken: ACME_TOKEN, managed: true })
  t.same(resolveCaller(OTHER_CREDENTIAL, registry), { tenant: 'acme', upstreamToken: ACME_TOKEN, managed: true })
})

t.test('a raw enc-token passes through only when allowed, as the site it names', async t => {
  const token = encodeEncToken('DEMO', 'demo-key')
  t.same(resolveCaller(token, { tenants: [], allowPassthrough: true }), { tenant: 'site:DEMO', upstreamToken: token, managed: false })
  t.throws(() => resolveCaller(token, { tenants: [], allowPassthrough: false }), { code: 'PASSTHROUGH_REFUSED', status: 403 })
})

t.test('refusals are ProxyErrors with a code: missing, malformed, unknown', async t => {
  const registry: TenantRegistry = { tenants: [], allowPassthrough: true }
  const refusal = (presented: string | undefined): ProxyError | undefined => {
    try {
      resolveCaller(presented, registry)
      return undefined
    } catch (err) {
      return err instanceof ProxyError ? err : undefined
    }
  }
  t.match(refusal(undefined), { code: 'MISSING_TOKEN', status: 401 })
  t.match(refusal('   '), { code: 'MISSING_TOKEN', status: 401 })
  t.match(refusal(`${ACME_TOKEN} `), { code: 'BAD_TOKEN' }, 'whitespace is refused, not trimmed')
  t.match(refusal('spk_unknown-credential-0123456789'), { code: 'BAD_TOKEN' })
})
