// `speke-proxy audit verify|public-key|prune|migrate` and `keys lookup`: the auditor's and the operator's commands, returning exit codes.

import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { migrateAuditDatabase } from './pg-schema.js'
import { pruneAuditDatabase, pruneAuditFiles, PruneRefused, type Pruned } from './prune.js'
import { isProxyError } from '../errors.js'
import { lookupKeys, type KeyEntry } from './key-lookup.js'
import type { AuditSource } from './query.js'
import { errorText } from './sink.js'
import { loadSigningKey, parsePublicKey, publicKeyPem, SigningKeyError } from './signing-key.js'
import { verifyAuditDatabase, verifyAuditFiles, type VerifyOptions, type VerifyResult } from './verify.js'

const USAGE = 'usage: speke-proxy audit verify --dir DIR | --database-url URL [--schema SCHEMA] --public-key FILE [--anchors LOGFILE]\n'
const USAGES = `${USAGE}       speke-proxy audit public-key
       speke-proxy audit prune --before DATE (--dir DIR | --database-url OWNER_URL [--schema SCHEMA])
       speke-proxy audit migrate [--database-url OWNER_URL] [--schema SCHEMA]
`

type Out = NodeJS.WritableStream

function parse<T> (args: string[], options: Record<string, { type: 'string' | 'boolean', short?: string }>, out: Out, usage: string): T | number {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as T
  } catch (err) {
    out.write(`${err instanceof Error ? err.message : String(err)}\n${usage}`)
    return 2
  }
}

/**
 * 0 when every chain verifies, 1 when a record was altered, removed, reordered or cut, a checkpoint is missing or signed by
 * another key (or the store could not be read), 2 on bad usage. Without --public-key only the hash links are checked.
 */
export async function runAuditVerify (argv: string[], out: Out, err: Out = out): Promise<number> {
  const args = [...argv]
  if (args[0] === 'audit') args.shift()
  if (args[0] === 'verify') args.shift()
  const values = parse<{ dir?: string, 'database-url'?: string, schema?: string, 'public-key'?: string, anchors?: string, help?: boolean }>(args,
    { dir: { type: 'string' }, 'database-url': { type: 'string' }, schema: { type: 'string' }, 'public-key': { type: 'string' }, anchors: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, out, USAGE)
  if (typeof values === 'number') return values
  if (values.help === true) { out.write(USAGE); return 0 }
  const dir = values.dir
  const url = values['database-url']
  if (dir === undefined && url === undefined) { out.write(`audit verify needs --dir or --database-url\n${USAGE}`); return 2 }
  if (values.schema !== undefined && url === undefined) { out.write(`--schema goes with --database-url\n${USAGE}`); return 2 }
  const options: VerifyOptions = {}
  if (values['public-key'] !== undefined) {
    try {
      options.publicKey = parsePublicKey(readFileSync(values['public-key'], 'utf8'), values['public-key'])
    } catch (e) {
      out.write(`audit verify: cannot use the public key: ${errorText(e)}\n`)
      return 2
    }
  } else {
    err.write('audit verify: WARNING: no --public-key: checkpoint signatures are not checked, so a forger who recomputes every hash is not found (get the key with "speke-proxy audit public-key")\n')
  }
  if (values.anchors !== undefined) options.anchors = resolve(values.anchors)

  const checks: Array<[string, Promise<VerifyResult>]> = []
  if (dir !== undefined) checks.push([`directory ${dir}`, verifyAuditFiles(dir, options)])
  if (url !== undefined) checks.push([`database schema ${values.schema ?? 'public'}`, verifyAuditDatabase(url, values.schema, options)])
  let code = 0
  for (const [what, pending] of checks) {
    const r = await pending
    const signed = r.checkpoints === undefined ? '' : `, ${r.checkpoints} signed checkpoint${r.checkpoints === 1 ? '' : 's'}`
    if (r.ok) {
      out.write(`audit verify: OK: ${what}: ${r.records} records in ${r.chains} chains${signed}\n`)
    } else {
      out.write(`audit verify: FAILED: ${what}: ${r.firstProblem ?? 'unknown problem'} (${r.records} records verified before it)\n`)
      code = 1
    }
    for (const w of r.warnings ?? []) out.write(`audit verify: WARNING: ${what}: ${w}\n`)
  }
  return code
}

function signingKey (env: NodeJS.ProcessEnv) {
  return loadSigningKey(resolve(env.DATA_DIR ?? './data'), env.AUDIT_SIGNING_KEY, env, false)
}

/** Dispatches `speke-proxy audit <sub>`; undefined for an unknown subcommand. */
export async function runAuditCli (argv: string[], env: NodeJS.ProcessEnv, out: Out, err: Out): Promise<number | undefined> {
  const [sub, ...rest] = argv
  try {
    switch (sub) {
      case 'verify': return await runAuditVerify(rest, out, err)
      case 'public-key': return publicKey(rest, env, out, err)
      case 'prune': return await prune(rest, env, out, err)
      case 'migrate': return await migrate(rest, env, out, err)
      default: return undefined
    }
  } catch (e) {
    if (e instanceof SigningKeyError || e instanceof PruneRefused) { err.write(`audit ${sub}: ${e.message}\n`); return 1 }
    throw e
  }
}

function publicKey (args: string[], env: NodeJS.ProcessEnv, out: Out, err: Out): number {
  if (args.length > 0) { err.write(USAGES); return 2 }
  out.write(publicKeyPem(signingKey(env)))
  return 0
}

async function prune (args: string[], env: NodeJS.ProcessEnv, out: Out, err: Out): Promise<number> {
  const v = parse<{ before?: string, dir?: string, 'database-url'?: string, schema?: string }>(args,
    { before: { type: 'string' }, dir: { type: 'string' }, 'database-url': { type: 'string' }, schema: { type: 'string' } }, err, USAGES)
  if (typeof v === 'number') return v
  const before = v.before === undefined ? undefined : new Date(v.before)
  if (before === undefined || Number.isNaN(before.getTime())) { err.write(`audit prune needs --before DATE (e.g. 2025-01-01 or an ISO time)\n${USAGES}`); return 2 }
  if ((v.dir === undefined) === (v['database-url'] === undefined)) { err.write(`audit prune needs exactly one of --dir or --database-url\n${USAGES}`); return 2 }
  const key = signingKey(env)
  const signer = { privateKey: key.privateKey, publicKey: key.publicKey, keyId: key.keyId }
  let done: Pruned[]
  if (v.dir !== undefined) {
    done = await pruneAuditFiles(v.dir, before, signer)
  } else {
    done = await pruneAuditDatabase(v['database-url'] as string, v.schema ?? 'public', before, signer)
  }
  if (done.length === 0) out.write(`audit prune: nothing before ${before.toISOString()} is covered by a checkpoint; nothing removed\n`)
  for (const p of done) out.write(`audit prune: chain ${JSON.stringify(p.instance)}: pruned through seq ${p.through}, head ${p.head} (removed ${p.removed.join(', ')})\n`)
  return 0
}

async function migrate (args: string[], env: NodeJS.ProcessEnv, out: Out, err: Out): Promise<number> {
  const v = parse<{ 'database-url'?: string, schema?: string }>(args, { 'database-url': { type: 'string' }, schema: { type: 'string' } }, err, USAGES)
  if (typeof v === 'number') return v
  const url = v['database-url'] ?? env.AUDIT_DATABASE_MIGRATE_URL ?? env.AUDIT_DATABASE_URL
  if (url === undefined || url === '') { err.write(`audit migrate needs --database-url, AUDIT_DATABASE_MIGRATE_URL or AUDIT_DATABASE_URL\n${USAGES}`); return 2 }
  const schema = v.schema ?? env.AUDIT_DATABASE_SCHEMA ?? 'public'
  const client = new pg.Client({ connectionString: url, application_name: 'speke-proxy-audit-migrate', connectionTimeoutMillis: 10_000 })
  try {
    await client.connect()
    const applied = await migrateAuditDatabase(client, schema)
    out.write(`audit migrate: schema ${schema}: ${applied.length === 0 ? 'already up to date' : `applied version ${applied.join(', ')}`}\n`)
    return 0
  } catch (e) {
    err.write(`audit migrate: schema ${schema}: ${errorText(e)}\n`)
    return 1
  } finally {
    await client.end().catch(() => {})
  }
}

const KEYS_USAGE = 'usage: speke-proxy keys lookup (--content-id ID | --kid KID) [--tenant T] [--kid KID] [--limit N] [--json]\n' +
  '         [--dir DIR | --database-url URL [--schema SCHEMA]]   (default: the audit store the server would use: AUDIT_DATABASE_URL, else AUDIT_DIR)\n'

/** Where the server's audit lives, from its own settings (AUDIT_DATABASE_URL first, as the server reads). */
export interface AuditStoreSettings { dir?: string, databaseUrl?: string, schema?: string }

const KEY_COLUMNS: Array<[string, (k: KeyEntry) => string]> = [
  ['KID', (k) => k.kid],
  ['CONTENT ID', (k) => k.content_id ?? '-'],
  ['TENANT', (k) => k.tenant ?? '-'],
  ['KIND', (k) => k.tenant_kind],
  ['ISSUED', (k) => String(k.times_issued)],
  ['FIRST ISSUED', (k) => k.first_issued ?? '-'],
  ['LAST ISSUED', (k) => k.last_issued ?? '-'],
  ['LAST', (k) => `${k.last_outcome} ${k.last_status}`],
  ['ENCRYPTED', (k) => k.delivered_encrypted ? 'yes' : 'no'],
  ['TRACKS', (k) => k.track_types.join(',') || '-'],
  ['PERIODS', (k) => k.key_periods.join(',') || '-'],
  ['DRM SYSTEMS', (k) => k.drm_systems.join(',') || '-']
]

/** Control characters (an audited content id is caller input) shown escaped, so a table cell cannot move the terminal's cursor. */
// eslint-disable-next-line no-control-regex -- the point: find control characters
const printable = (text: string): string => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)

function keyTable (keys: KeyEntry[]): string {
  const rows = [KEY_COLUMNS.map(([h]) => h), ...keys.map((k) => KEY_COLUMNS.map(([, cell]) => printable(cell(k))))]
  const widths = KEY_COLUMNS.map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows.map((r) => r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i])).join('  ')).join('\n') + '\n'
}

/**
 * `speke-proxy keys lookup`: the entries of GET /admin/keys, every page, as a table or (--json) as {"keys": [...]}.
 * 0 with entries, 1 when none match or the store cannot be read, 2 on bad usage, 78 when the server's settings
 * (`defaults`, which answers a message when they are bad) cannot be read.
 */
export async function runKeysLookup (args: string[], defaults: () => AuditStoreSettings | string, out: Out, err: Out): Promise<number> {
  const v = parse<{ 'content-id'?: string, kid?: string, tenant?: string, limit?: string, json?: boolean, dir?: string, 'database-url'?: string, schema?: string, help?: boolean }>(args, {
    'content-id': { type: 'string' },
    kid: { type: 'string' },
    tenant: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
    dir: { type: 'string' },
    'database-url': { type: 'string' },
    schema: { type: 'string' },
    help: { type: 'boolean', short: 'h' }
  }, err, KEYS_USAGE)
  if (typeof v === 'number') return v
  if (v.help === true) { out.write(KEYS_USAGE); return 0 }
  if (v['content-id'] === undefined && v.kid === undefined) { err.write(`keys lookup needs --content-id or --kid\n${KEYS_USAGE}`); return 2 }
  if (v.dir !== undefined && v['database-url'] !== undefined) { err.write(`keys lookup reads one store: --dir or --database-url\n${KEYS_USAGE}`); return 2 }
  const max = v.limit === undefined ? undefined : Number(v.limit)
  if (max !== undefined && (!Number.isSafeInteger(max) || max < 1)) { err.write(`--limit must be a positive integer\n${KEYS_USAGE}`); return 2 }
  const store = v.dir !== undefined || v['database-url'] !== undefined
    ? { dir: v.dir, databaseUrl: v['database-url'], schema: v.schema }
    : defaults()
  if (typeof store === 'string') { err.write(`${store}\n`); return 78 }
  let source: AuditSource
  let pool: pg.Pool | undefined
  if (store.databaseUrl !== undefined) {
    pool = new pg.Pool({ connectionString: store.databaseUrl, max: 1, connectionTimeoutMillis: 10_000, application_name: 'speke-proxy-keys-lookup' })
    source = { kind: 'postgres', pool, schema: store.schema ?? 'public' }
  } else if (store.dir !== undefined) {
    source = { kind: 'files', dir: store.dir }
  } else {
    err.write(`keys lookup: no audit store (AUDIT=off?): give --dir or --database-url\n${KEYS_USAGE}`)
    return 2
  }
  try {
    const keys: KeyEntry[] = []
    let cursor: string | undefined
    const wanted = max ?? Number.MAX_SAFE_INTEGER
    do {
      const page = await lookupKeys(source, { contentId: v['content-id'], kid: v.kid, tenant: v.tenant, limit: Math.min(1000, wanted - keys.length), cursor })
      keys.push(...page.keys)
      cursor = page.nextCursor
    } while (cursor !== undefined && keys.length < wanted)
    out.write(v.json === true ? `${JSON.stringify({ keys }, null, 2)}\n` : keys.length === 0 ? '' : keyTable(keys))
    if (keys.length === 0) err.write('keys lookup: no key in the audit matches\n')
    return keys.length === 0 ? 1 : 0
  } catch (e) {
    if (isProxyError(e) && e.status === 400) { err.write(`keys lookup: ${e.message}\n`); return 2 }
    err.write(`keys lookup: cannot read the audit ${source.kind === 'files' ? `directory ${source.dir}` : `database (schema ${store.schema ?? 'public'})`}: ${errorText(e)}\n`)
    return 1
  } finally {
    await pool?.end().catch(() => {})
  }
}
