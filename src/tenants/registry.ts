// Managed tenants (TENANTS_FILE): proxy credentials, stored as SHA-256 hashes, stand in for each tenant's PallyCon enc-token.

import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ProxyError } from '../errors.js'
import { decodeEncToken } from './enc-token.js'

export interface Tenant {
  id: string
  /** The tenant's real PallyCon enc-token, substituted upstream. */
  encToken: string
  siteId: string
  credentialHashes: Buffer[]
}

export interface TenantRegistry {
  tenants: Tenant[]
  allowPassthrough: boolean
}

/**
 * How a pass-through caller is named in logs, audit records and metrics: `site:` and the token's (unverified) site id.
 * Managed tenant ids cannot contain ':', so a forged site id never reads as a managed tenant.
 */
export const PASSTHROUGH_PREFIX = 'site:'

function passthroughTenant (siteId: string): string {
  return `${PASSTHROUGH_PREFIX}${siteId}`
}

/** Managed tenant ids: letters, digits, '.', '_' and '-' (no ':', which marks pass-through sites). */
const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** Who is calling and which enc-token goes upstream on their behalf. */
export interface Caller {
  /** Managed tenant id, or `site:<site id>` for a pass-through token (see PASSTHROUGH_PREFIX). */
  tenant: string
  upstreamToken: string
  managed: boolean
}

export class TenantsFileError extends Error {}

export function hashCredential (credential: string): Buffer {
  return createHash('sha256').update(credential, 'utf8').digest()
}

/** Read and check a tenants file. `env` resolves `"env:NAME"` tokens. Errors name TENANTS_FILE and the tenant. */
export function loadTenantsFile (file: string, env: NodeJS.ProcessEnv): Tenant[] {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new TenantsFileError(`TENANTS_FILE ${file} cannot be read as JSON: ${(err as Error).message}`)
  }
  const list = (raw as { tenants?: unknown })?.tenants
  if (!Array.isArray(list)) throw new TenantsFileError(`TENANTS_FILE ${file} must hold {"tenants": [...]}`)
  const ids = new Set<string>()
  const owners = new Map<string, string>()
  return list.map((entry: unknown, i: number) => {
    const t = tenantFromJson(entry, `TENANTS_FILE ${file}, tenant #${i + 1}`, env)
    if (ids.has(t.id)) throw new TenantsFileError(`TENANTS_FILE ${file}: tenant id "${t.id}" appears twice`)
    ids.add(t.id)
    // One credential, one tenant: a shared hash would hand the first tenant's keys to the second's caller.
    for (const hash of t.credentialHashes) {
      const hex = hash.toString('hex')
      const owner = owners.get(hex)
      if (owner !== undefined) {
        const where = owner === t.id ? `twice for tenant "${t.id}"` : `for tenants "${owner}" and "${t.id}"`
        throw new TenantsFileError(`TENANTS_FILE ${file}: credential hash sha256:${hex.slice(0, 12)}… is listed ${where}; each credential must belong to exactly one tenant (make a new one with "speke-proxy tenant new")`)
      }
      owners.set(hex, t.id)
    }
    return t
  })
}

function tenantFromJson (entry: unknown, where: string, env: NodeJS.ProcessEnv): Tenant {
  if (typeof entry !== 'object' || entry === null) throw new TenantsFileError(`${where} is not an object`)
  const e = entry as Record<string, unknown>
  if (typeof e.id !== 'string' || e.id.trim() === '') throw new TenantsFileError(`${where} needs a non-empty "id"`)
  if (!TENANT_ID.test(e.id)) {
    throw new TenantsFileError(`${where}: id "${e.id.slice(0, 64)}" must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (no ':', which marks pass-through sites as "site:<id>")`)
  }
  const label = `${where} ("${e.id}")`
  if (typeof e.encToken !== 'string' || e.encToken === '') throw new TenantsFileError(`${label} needs "encToken" (inline or "env:NAME")`)
  const encToken = resolveSecret(e.encToken, label, env)
  const decoded = decodeEncToken(encToken)
  if (decoded === undefined) throw new TenantsFileError(`${label}: encToken is not a PallyCon enc-token (base64 JSON with site_id and access_key)`)
  if (!Array.isArray(e.credentials) || e.credentials.length === 0) {
    throw new TenantsFileError(`${label} needs "credentials": a list of "sha256:<hex>" hashes of its proxy credentials`)
  }
  const credentialHashes = e.credentials.map((c: unknown) => parseCredentialHash(c, label))
  return { id: e.id, encToken, siteId: decoded.siteId, credentialHashes }
}

function resolveSecret (value: string, label: string, env: NodeJS.ProcessEnv): string {
  if (!value.startsWith('env:')) return value
  const name = value.slice(4)
  const resolved = env[name]
  if (resolved === undefined || resolved === '') throw new TenantsFileError(`${label}: encToken refers to environment variable ${name}, which is not set`)
  return resolved
}

function parseCredentialHash (value: unknown, label: string): Buffer {
  const text = typeof value === 'string' ? value.replace(/^sha256:/, '') : ''
  if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new TenantsFileError(`${label}: each credential must be "sha256:" followed by 64 hex digits`)
  return Buffer.from(text, 'hex')
}

/**
 * Map the enc-token a caller presented to a tenant and the token to send upstream.
 * Every stored hash is compared in constant time, whether or not an earlier one matched.
 */
export function resolveCaller (presented: string | undefined, registry: TenantRegistry): Caller {
  if (presented === undefined || presented.trim() === '') {
    throw new ProxyError('MISSING_TOKEN', 'Missing enc-token: put your PallyCon KMS token or proxy credential in the URL')
  }
  // eslint-disable-next-line no-control-regex -- the point: a token with a control character is refused, never looked up or forwarded
  if (/[\s\u0000-\u001f\u007f]/.test(presented)) {
    throw new ProxyError('BAD_TOKEN', 'The enc-token contains whitespace or control characters: copy it again without them')
  }
  const digest = hashCredential(presented)
  let match: Tenant | undefined
  for (const tenant of registry.tenants) {
    for (const hash of tenant.credentialHashes) {
      if (timingSafeEqual(hash, digest) && match === undefined) match = tenant
    }
  }
  if (match !== undefined) return { tenant: match.id, upstreamToken: match.encToken, managed: true }

  const decoded = decodeEncToken(presented)
  if (!registry.allowPassthrough) {
    throw new ProxyError('PASSTHROUGH_REFUSED', 'This proxy accepts only proxy credentials issued for a tenant (ALLOW_PASSTHROUGH=false); raw PallyCon enc-tokens are refused')
  }
  if (decoded === undefined) {
    throw new ProxyError('BAD_TOKEN', 'The enc-token is neither a known proxy credential nor a PallyCon KMS token (base64 of JSON with site_id and access_key)')
  }
  return { tenant: passthroughTenant(decoded.siteId), upstreamToken: presented, managed: false }
}
