#!/usr/bin/env node
// The speke-proxy command: serve, keyserver, audit verify|public-key|prune|migrate, keys lookup, token inspect, tenant, config check.

import { randomBytes } from 'node:crypto'
import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { runAuditCli } from './audit/index.js'
import { runKeysLookup, type AuditStoreSettings } from './audit/cli-verify.js'
import { ConfigError, loadConfig } from './config.js'
import { decodeEncToken } from './tenants/enc-token.js'
import { TenantsFileError, hashCredential, loadTenantsFile } from './tenants/registry.js'
import { serve } from './serve.js'
import { VERSION } from './version.js'

const HELP = `speke-proxy ${VERSION}: SPEKE v1/v2 and CPIX key-provider proxy for the PallyCon KMS

Usage: speke-proxy <command> [options]

Commands:
  serve                       run the proxy (the default; settings from the environment, see README)
  keyserver                   run only the embedded key provider as a SPEKE test endpoint
                              (KMS_URL=local, port KEYSERVER_PORT or 8090, audit off unless AUDIT=on)
  audit verify --dir D | --database-url U [--schema S] --public-key F [--anchors LOG]
                              verify the audit chains and their signed checkpoints (no secret needed);
                              --anchors: the shipped process log, whose checkpoints the store must still hold
  audit public-key            print the audit signing key's public key (PEM) for auditors
  audit prune --before DATE --dir D | --database-url OWNER_URL [--schema S]
                              remove whole old files (rows) up to a checkpoint, leaving a signed prune record
  audit migrate [--database-url OWNER_URL] [--schema S]
                              create or migrate the PostgreSQL audit tables (as the owner role)
  keys lookup --content-id ID [--tenant T] [--kid KID] [--limit N] [--json]
                              which KIDs the audit shows for a title (or, with --kid alone, where a KID went):
                              DRM systems, tracks, periods, first/last issued, how often, last outcome;
                              reads the server's audit store (AUDIT_DATABASE_URL, else AUDIT_DIR) or --dir / --database-url
  token inspect <enc-token>   print the site id of a PallyCon enc-token (never the access key)
  tenant hash                 read a proxy credential from stdin and print its sha256:<hex> line for TENANTS_FILE
                              (e.g. printf %s "$CREDENTIAL" | speke-proxy tenant hash; never on the command line)
  tenant new                  print a fresh random proxy credential and its sha256:<hex> line
  config check                validate the environment and the tenants file, print the effective settings
  --help, --version
`

export async function runCli (argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream, err: NodeJS.WritableStream, input: NodeJS.ReadableStream = process.stdin): Promise<number | 'serving'> {
  const [command, ...rest] = argv
  switch (command) {
    case undefined:
    case 'serve':
      await serve(env)
      return 'serving'
    case 'keyserver':
      await serve({ ...env, KMS_URL: 'local', PORT: env.KEYSERVER_PORT ?? '8090', AUDIT: env.AUDIT ?? 'off' })
      return 'serving'
    case 'audit': {
      const code = await runAuditCli(rest, env, out, err)
      if (code === undefined) break
      return code
    }
    case 'keys':
      if (rest[0] !== 'lookup') break
      return await keysLookup(rest.slice(1), env, out, err)
    case 'token':
      if (rest[0] !== 'inspect' || rest[1] === undefined) break
      return inspectToken(rest[1], out, err)
    case 'tenant':
      if (rest[0] === 'hash') return await hashFromStdin(rest.slice(1), input, out, err)
      if (rest[0] === 'new' && rest.length === 1) return newCredential(out, err)
      break
    case 'config':
      if (rest[0] !== 'check') break
      return checkConfig(env, out, err)
    case '--help':
    case '-h':
    case 'help':
      out.write(HELP)
      return 0
    case '--version':
      out.write(`${VERSION}\n`)
      return 0
  }
  err.write(`speke-proxy: unknown command "${argv.join(' ')}"\n\n${HELP}`)
  return 2
}

/** `keys lookup` over the store the server reads: its settings (AUDIT_DATABASE_URL first, else AUDIT_DIR), or --dir / --database-url. */
async function keysLookup (
  args: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream, err: NodeJS.WritableStream
): Promise<number> {
  return await runKeysLookup(args, (): AuditStoreSettings | string => {
    try {
      const { audit } = loadConfig(env)
      return audit.databaseUrl !== undefined ? { databaseUrl: audit.databaseUrl, schema: audit.databaseSchema } : { dir: audit.dir }
    } catch (e) {
      if (e instanceof ConfigError) return `configuration error: ${e.message}`
      throw e
    }
  }, out, err)
}

/** Upper bound on what `tenant hash` reads: a credential, not a file. */
const MAX_CREDENTIAL_BYTES = 4096

/** The credential from stdin (one trailing newline dropped); argv would show it to anyone running ps. */
async function hashFromStdin (
  args: string[], input: NodeJS.ReadableStream, out: NodeJS.WritableStream, err: NodeJS.WritableStream
): Promise<number> {
  if (args.length > 0) {
    err.write('tenant hash reads the credential from stdin, not from the command line (where ps and shell history show it):\n  printf %s "$CREDENTIAL" | speke-proxy tenant hash\n')
    return 2
  }
  if ((input as { isTTY?: boolean }).isTTY === true) err.write('credential (end with Ctrl-D): ')
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of input) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk as Buffer
    size += bytes.length
    if (size > MAX_CREDENTIAL_BYTES) {
      err.write(`tenant hash: more than ${MAX_CREDENTIAL_BYTES} bytes on stdin; a credential is one line\n`)
      return 1
    }
    chunks.push(bytes)
  }
  const credential = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  if (credential === '') {
    err.write('tenant hash: no credential on stdin (printf %s "$CREDENTIAL" | speke-proxy tenant hash)\n')
    return 1
  }
  // eslint-disable-next-line no-control-regex -- the point: refuse control characters, as resolveCaller does in an enc-token
  if (/[\s\u0000-\u001f\u007f]/.test(credential)) {
    err.write('tenant hash: the credential contains whitespace or control characters, which the proxy refuses in an enc-token\n')
    return 1
  }
  out.write(`sha256:${hashCredential(credential).toString('hex')}\n`)
  return 0
}

/** A new credential: 32 random bytes, base64url (URL-safe, so it can stand in the enc-token position as is). */
function newCredential (out: NodeJS.WritableStream, err: NodeJS.WritableStream): number {
  const credential = `spk_${randomBytes(32).toString('base64url')}`
  out.write(`credential: ${credential}\nhash: sha256:${hashCredential(credential).toString('hex')}\n`)
  err.write('Give the credential to the tenant (it is not stored anywhere); add the hash line to the tenant\'s "credentials" in TENANTS_FILE.\n')
  return 0
}

function inspectToken (token: string, out: NodeJS.WritableStream, err: NodeJS.WritableStream): number {
  const decoded = decodeEncToken(token)
  if (decoded === undefined) {
    err.write('not a PallyCon enc-token: expected base64 of JSON {"site_id": …, "access_key": …}\n')
    return 1
  }
  out.write(`site_id: ${decoded.siteId}\naccess_key: present (${decoded.accessKey.length} characters, not shown)\n`)
  return 0
}

function checkConfig (env: NodeJS.ProcessEnv, out: NodeJS.WritableStream, err: NodeJS.WritableStream): number {
  try {
    const config = loadConfig(env)
    const tenants = config.tenantsFile === undefined ? [] : loadTenantsFile(config.tenantsFile, env)
    const lines = [
      `provider: ${config.kmsUrl === 'local' ? 'local (embedded key provider: keys generated locally)' : `pallycon at ${config.kmsUrl.origin}${config.kmsUrl.pathname === '/' ? '' : config.kmsUrl.pathname}`}`,
      `listen: ${config.tls === undefined ? 'http' : 'https'}://${config.host}:${config.port}`,
      `kms timeout: ${config.kmsTimeoutMs} ms, max concurrent upstream calls: ${config.kmsMaxConcurrency}`,
      `tenants: ${tenants.length === 0 ? 'none (pass-through only)' : tenants.map(t => `${t.id} (site ${t.siteId}, ${t.credentialHashes.length} credential${t.credentialHashes.length === 1 ? '' : 's'})`).join(', ')}`,
      `pass-through tokens: ${config.allowPassthrough ? 'allowed' : 'refused'}`,
      `response mode: ${config.responseMode}`,
      `audit: ${!config.audit.enabled ? 'off' : [config.audit.dir === undefined ? undefined : `files in ${config.audit.dir}`, config.audit.databaseUrl === undefined ? undefined : 'PostgreSQL'].filter(Boolean).join(' + ')}${config.audit.failOpen ? ' (fail-open)' : ' (fail-closed)'}`,
      `admin API: ${config.adminToken === undefined ? 'off' : 'on'}`,
      `metrics: ${config.metricsToken === undefined ? 'open (set METRICS_TOKEN to require a bearer token)' : 'bearer token required (METRICS_TOKEN)'}`,
      `data dir: ${config.dataDir}`
    ]
    out.write(`configuration OK\n${lines.map(l => `  ${l}`).join('\n')}\n`)
    return 0
  } catch (e) {
    if (e instanceof ConfigError || e instanceof TenantsFileError) {
      err.write(`configuration error: ${e.message}\n`)
      return 78
    }
    throw e
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const code = await runCli(process.argv.slice(2), process.env, process.stdout, process.stderr)
  if (code !== 'serving') process.exitCode = code
}
