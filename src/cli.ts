#!/usr/bin/env node
// The speke-proxy command: serve, keyserver, audit verify, token inspect, tenant hash, config check.

import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { runAuditVerify } from './audit/index.js'
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
  audit verify --dir D        verify the audit hash chains in a directory of audit files
  audit verify --database-url U [--schema S]
                              verify the audit hash chains in PostgreSQL
  token inspect <enc-token>   print the site id of a PallyCon enc-token (never the access key)
  tenant hash <credential>    print the sha256:<hex> line for a proxy credential in TENANTS_FILE
  config check                validate the environment and the tenants file, print the effective settings
  --help, --version
`

export async function runCli (argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number | 'serving'> {
  const [command, ...rest] = argv
  switch (command) {
    case undefined:
    case 'serve':
      await serve(env)
      return 'serving'
    case 'keyserver':
      await serve({ ...env, KMS_URL: 'local', PORT: env.KEYSERVER_PORT ?? '8090', AUDIT: env.AUDIT ?? 'off' })
      return 'serving'
    case 'audit':
      if (rest[0] !== 'verify') break
      return await runAuditVerify(rest.slice(1), out)
    case 'token':
      if (rest[0] !== 'inspect' || rest[1] === undefined) break
      return inspectToken(rest[1], out, err)
    case 'tenant':
      if (rest[0] !== 'hash' || rest[1] === undefined) break
      out.write(`sha256:${hashCredential(rest[1]).toString('hex')}\n`)
      return 0
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
