// Typed configuration from the environment; a bad setting stops startup with a message naming it.

import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'

type ResponseMode = 'repair' | 'passthrough'

export interface Config {
  port: number
  host: string
  /** 'local' selects the embedded key provider; otherwise the KMS base URL. */
  kmsUrl: 'local' | URL
  kmsTimeoutMs: number
  /** Smallest RSA key accepted in a DeliveryKey certificate, in bits. */
  deliveryMinRsaBits: number
  tenantsFile?: string
  allowPassthrough: boolean
  bodyLimit: number
  logLevel: string
  dataDir: string
  production: boolean
  responseMode: ResponseMode
  local: {
    secret?: string
    playReadyLaUrl: string
    hlsKeyUrlBase: string
    widevineProvider: string
  }
  audit: {
    dir?: string
    databaseUrl?: string
    hmacKey?: string
    databaseSchema?: string
    failOpen: boolean
    enabled: boolean
    writeTimeoutMs: number
    /** Readiness fails while the file sink's volume has less free space than this (0: no check). */
    minFreeMb: number
    /** AUDIT_SIGNING_KEY as given (PEM, file:PATH or env:NAME); unset: a key generated into DATA_DIR. Never logged. */
    signingKey?: string
    /** Signed checkpoint every this many seconds or records, whichever first. */
    checkpointIntervalS: number
    checkpointRecords: number
    /** Owner role for PostgreSQL migrations; the writer (AUDIT_DATABASE_URL) then needs only INSERT and SELECT. */
    databaseMigrateUrl?: string
    /** True when INSTANCE_ID was set; otherwise the audit uses the id kept in DATA_DIR. */
    instanceIdSet: boolean
  }
  adminToken?: string
  /** When set, GET /metrics needs `Authorization: Bearer` with it. */
  metricsToken?: string
  instanceId: string
  trustProxy: boolean | string
  tls?: { certFile: string, keyFile: string }
  rateLimitPerMinute: number
  rateLimitPerIpPerMinute: number
  maxEventLoopDelayMs: number
  kmsMaxConcurrency: number
  shutdownGraceMs: number
  /** Node's HTTP server deadlines (a trickled body or header block is cut off; idle keep-alive outlives AWS load balancers' 60 s). */
  timeouts: { requestMs: number, headersMs: number, keepAliveMs: number }
}

export class ConfigError extends Error {}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** API Gateway gives up after 29 s: the KMS deadline and the audit write together must leave time to answer. */
const MAX_REQUEST_BUDGET_MS = 28_000

export function loadConfig (env: NodeJS.ProcessEnv = process.env): Config {
  const config = readConfig(env)
  if (config.audit.enabled && config.kmsTimeoutMs + config.audit.writeTimeoutMs > MAX_REQUEST_BUDGET_MS) {
    throw new ConfigError(`KMS_TIMEOUT_MS (${config.kmsTimeoutMs}) + AUDIT_WRITE_TIMEOUT_MS (${config.audit.writeTimeoutMs}) must stay under ${MAX_REQUEST_BUDGET_MS} ms, inside API Gateway's 29 s`)
  }
  for (const name of ['LOCAL_KMS_SECRET', 'AUDIT_HMAC_KEY']) {
    const raw = text(env, name)
    if (raw !== undefined) base64Secret(raw, name)
  }
  bearerToken(config.adminToken, 'ADMIN_TOKEN')
  bearerToken(config.metricsToken, 'METRICS_TOKEN')
  const schema = config.audit.databaseSchema
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new ConfigError(`AUDIT_DATABASE_SCHEMA must be a lower-case SQL identifier, got "${schema}"`)
  const signingKey = config.audit.signingKey
  if (signingKey !== undefined && !/^(file:|env:|-----BEGIN PRIVATE KEY-----)/.test(signingKey)) {
    throw new ConfigError('AUDIT_SIGNING_KEY must be a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----…), file:PATH or env:NAME (make one with: openssl genpkey -algorithm ed25519)')
  }
  if (config.timeouts.headersMs > config.timeouts.requestMs) throw new ConfigError(`HEADERS_TIMEOUT_MS (${config.timeouts.headersMs}) must not exceed REQUEST_TIMEOUT_MS (${config.timeouts.requestMs})`)
  return config
}

/** A bearer token of at least 32 characters, when set: a short one can be guessed. The message never shows the value. */
function bearerToken (value: string | undefined, name: string): void {
  if (value !== undefined && value.length < MIN_BEARER_TOKEN_LENGTH) {
    throw new ConfigError(`${name} must be at least ${MIN_BEARER_TOKEN_LENGTH} characters (it is ${value.length}); make one with: openssl rand -base64 32`)
  }
}

const MIN_BEARER_TOKEN_LENGTH = 32

/** Fewest bytes a secret setting (LOCAL_KMS_SECRET, AUDIT_HMAC_KEY) decodes to; also the size of a generated one. */
export const MIN_SECRET_BYTES = 32

/**
 * The bytes of a secret setting, or of the file generated for it (`source`): standard base64 or base64url, padded or
 * not, decoding to at least MIN_SECRET_BYTES. A ConfigError names the setting and the source, never the value.
 */
export function base64Secret (text: string, setting: string, source = setting): Buffer {
  const bytes = decodeSecret(text.trim())
  if (bytes === undefined || bytes.length < MIN_SECRET_BYTES) {
    const problem = bytes === undefined ? 'is not valid base64' : `holds ${bytes.length} bytes`
    throw new ConfigError(`${setting} must be base64 of at least ${MIN_SECRET_BYTES} bytes (e.g. openssl rand -base64 32): ${source} ${problem}`)
  }
  return bytes
}

/** One alphabet (standard or URL-safe), optional padding, and no stray bits: the text must be the bytes' own spelling. */
function decodeSecret (text: string): Buffer | undefined {
  const unpadded = text.replace(/={1,2}$/, '')
  if (unpadded === '' || !/^(?:[A-Za-z0-9+/]+|[A-Za-z0-9_-]+)$/.test(unpadded)) return undefined
  if (unpadded !== text && text.length % 4 !== 0) return undefined
  const bytes = Buffer.from(unpadded, 'base64')
  return bytes.toString('base64url') === unpadded.replace(/\+/g, '-').replace(/\//g, '_') ? bytes : undefined
}

function readConfig (env: NodeJS.ProcessEnv): Config {
  const production = env.NODE_ENV === 'production'
  const dataDir = resolve(text(env, 'DATA_DIR') ?? './data')
  const auditDir = text(env, 'AUDIT_DIR')
  const auditDatabaseUrl = text(env, 'AUDIT_DATABASE_URL')
  const auditSinks = (text(env, 'AUDIT') ?? 'on').toLowerCase()
  if (!['on', 'off'].includes(auditSinks)) throw new ConfigError(`AUDIT must be on or off, got "${auditSinks}"`)
  return {
    port: integer(env, 'PORT', 8080, 0, 65535),
    host: text(env, 'HOST') ?? '0.0.0.0',
    kmsUrl: kmsUrl(env, production),
    kmsTimeoutMs: integer(env, 'KMS_TIMEOUT_MS', 10000, 100, 28000),
    deliveryMinRsaBits: integer(env, 'DELIVERY_MIN_RSA_BITS', 2048, 2048, 16384),
    tenantsFile: text(env, 'TENANTS_FILE'),
    allowPassthrough: boolean(env, 'ALLOW_PASSTHROUGH', true),
    bodyLimit: integer(env, 'BODY_LIMIT', 256 * 1024, 1024, 64 * 1024 * 1024),
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    dataDir,
    production,
    responseMode: oneOf(env, 'RESPONSE_MODE', ['repair', 'passthrough'], 'repair') as ResponseMode,
    local: {
      secret: text(env, 'LOCAL_KMS_SECRET'),
      playReadyLaUrl: url(env, 'PLAYREADY_LA_URL', 'https://license.pallycon.com/ri/licenseManager.do'),
      hlsKeyUrlBase: url(env, 'HLS_KEY_URL_BASE', 'https://localhost:8080/hls/key'),
      widevineProvider: text(env, 'WIDEVINE_PROVIDER') ?? 'inkaentworks'
    },
    audit: {
      enabled: auditSinks === 'on',
      dir: auditDatabaseUrl !== undefined && auditDir === undefined ? undefined : resolve(auditDir ?? join(dataDir, 'audit')),
      databaseUrl: auditDatabaseUrl,
      databaseSchema: text(env, 'AUDIT_DATABASE_SCHEMA'),
      writeTimeoutMs: integer(env, 'AUDIT_WRITE_TIMEOUT_MS', 2000, 50, 20000),
      hmacKey: text(env, 'AUDIT_HMAC_KEY'),
      failOpen: boolean(env, 'AUDIT_FAIL_OPEN', false),
      minFreeMb: integer(env, 'AUDIT_MIN_FREE_MB', 256, 0, 100_000_000),
      signingKey: text(env, 'AUDIT_SIGNING_KEY'),
      checkpointIntervalS: integer(env, 'AUDIT_CHECKPOINT_INTERVAL_S', 60, 1, 86_400),
      checkpointRecords: integer(env, 'AUDIT_CHECKPOINT_RECORDS', 1000, 1, 10_000_000),
      databaseMigrateUrl: text(env, 'AUDIT_DATABASE_MIGRATE_URL'),
      instanceIdSet: text(env, 'INSTANCE_ID') !== undefined
    },
    adminToken: text(env, 'ADMIN_TOKEN'),
    metricsToken: text(env, 'METRICS_TOKEN'),
    instanceId: text(env, 'INSTANCE_ID') ?? `${hostname()}-${randomUUID().slice(0, 8)}`,
    trustProxy: trustProxy(env),
    tls: tls(env),
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 1200, 0, 1_000_000),
    // One client address gets no more than one tenant's default budget, however many tokens it rotates.
    rateLimitPerIpPerMinute: integer(env, 'RATE_LIMIT_PER_IP_PER_MINUTE', 1200, 0, 1_000_000),
    maxEventLoopDelayMs: integer(env, 'MAX_EVENT_LOOP_DELAY_MS', 1000, 0, 60_000),
    kmsMaxConcurrency: integer(env, 'KMS_MAX_CONCURRENCY', 64, 1, 10_000),
    shutdownGraceMs: integer(env, 'SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
    timeouts: {
      requestMs: integer(env, 'REQUEST_TIMEOUT_MS', 30_000, 500, 600_000),
      headersMs: integer(env, 'HEADERS_TIMEOUT_MS', 10_000, 500, 600_000),
      keepAliveMs: integer(env, 'KEEP_ALIVE_TIMEOUT_MS', 65_000, 1000, 600_000)
    }
  }
}

function text (env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

function integer (env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = text(env, name)
  if (raw === undefined) return fallback
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got "${raw}"`)
  const value = Number(raw)
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`)
  return value
}

function boolean (env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = text(env, name)?.toLowerCase()
  if (raw === undefined) return fallback
  if (['true', '1', 'yes', 'on'].includes(raw)) return true
  if (['false', '0', 'no', 'off'].includes(raw)) return false
  throw new ConfigError(`${name} must be true or false, got "${raw}"`)
}

function oneOf (env: NodeJS.ProcessEnv, name: string, allowed: string[], fallback: string): string {
  const raw = text(env, name)
  if (raw === undefined) return fallback
  if (!allowed.includes(raw)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`)
  return raw
}

function url (env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = text(env, name) ?? fallback
  try {
    return new URL(raw).toString().replace(/\/$/, '')
  } catch {
    throw new ConfigError(`${name} must be an absolute URL, got "${raw}"`)
  }
}

function kmsUrl (env: NodeJS.ProcessEnv, production: boolean): 'local' | URL {
  const raw = text(env, 'KMS_URL')
  if (raw === undefined) {
    if (production) {
      throw new ConfigError('KMS_URL is not set: with NODE_ENV=production set KMS_URL to your PallyCon KMS (https://kms.pallycon.com), or to "local" to serve locally generated test keys on purpose')
    }
    return 'local'
  }
  if (raw === 'local') return 'local'
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    throw new ConfigError(`KMS_URL must be "local" or an http(s) URL such as https://kms.pallycon.com, got "${raw}"`)
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new ConfigError(`KMS_URL must use http or https, got "${parsed.protocol}"`)
  if (parsed.search !== '' || parsed.hash !== '') throw new ConfigError('KMS_URL must be a base URL without query or fragment')
  return parsed
}

function trustProxy (env: NodeJS.ProcessEnv): boolean | string {
  const raw = text(env, 'TRUST_PROXY')
  if (raw === undefined) return false
  if (['true', '1', 'yes', 'on'].includes(raw.toLowerCase())) return true
  if (['false', '0', 'no', 'off'].includes(raw.toLowerCase())) return false
  return raw // addresses or CIDRs of the load balancers, comma-separated
}

function tls (env: NodeJS.ProcessEnv): { certFile: string, keyFile: string } | undefined {
  const certFile = text(env, 'TLS_CERT_FILE')
  const keyFile = text(env, 'TLS_KEY_FILE')
  if (certFile === undefined && keyFile === undefined) return undefined
  if (certFile === undefined || keyFile === undefined) throw new ConfigError('TLS_CERT_FILE and TLS_KEY_FILE must be set together')
  return { certFile: resolve(certFile), keyFile: resolve(keyFile) }
}
