// Specification of the configuration: the defaults, every range and form each setting accepts, and refusals that
// name the setting (a ConfigError, exit 78 at startup) without ever quoting a secret's value.

import t from 'tap'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { writeFileSync } from 'node:fs'
import { ConfigError, MIN_SECRET_BYTES, base64Secret, loadConfig } from '../src/config.js'
import type { Config } from '../src/config.js'
import { loadOrCreateHmacKey } from '../src/audit/index.js'
import { loadOrCreateSecret } from '../src/kms/local/secret.js'

/** The ConfigError `fn` stops with; undefined when it returns (any other error fails the test). */
function configErrorOf (fn: () => unknown): ConfigError | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
}

/** The ConfigError loading `env` stops with. */
function refusal (env: NodeJS.ProcessEnv): ConfigError {
  const err = configErrorOf(() => loadConfig(env))
  if (err === undefined) throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`)
  return err
}

t.test('with no setting at all: the embedded provider, port 8080, audit on, limits and deadlines at their defaults', async t => {
  const config = loadConfig({})
  const dataDir = resolve('./data')
  t.match(config, {
    port: 8080,
    host: '0.0.0.0',
    kmsUrl: 'local',
    kmsTimeoutMs: 10_000,
    tenantsFile: undefined,
    allowPassthrough: true,
    bodyLimit: 256 * 1024,
    logLevel: 'info',
    dataDir,
    production: false,
    responseMode: 'repair',
    local: { secret: undefined, playReadyLaUrl: 'https://license.pallycon.com/ri/licenseManager.do', hlsKeyUrlBase: 'https://localhost:8080/hls/key', widevineProvider: 'inkaentworks' },
    audit: {
      enabled: true,
      dir: join(dataDir, 'audit'),
      databaseUrl: undefined,
      hmacKey: undefined,
      databaseSchema: undefined,
      failOpen: false,
      writeTimeoutMs: 2000,
      minFreeMb: 256,
      signingKey: undefined,
      checkpointIntervalS: 60,
      checkpointRecords: 1000,
      databaseMigrateUrl: undefined,
      instanceIdSet: false
    },
    adminToken: undefined,
    metricsToken: undefined,
    trustProxy: false,
    tls: undefined,
    rateLimitPerMinute: 1200,
    rateLimitPerIpPerMinute: 1200,
    maxEventLoopDelayMs: 1000,
    kmsMaxConcurrency: 64,
    shutdownGraceMs: 10_000,
    timeouts: { requestMs: 30_000, headersMs: 10_000, keepAliveMs: 65_000 }
  })
  t.ok(config.instanceId.startsWith(`${hostname()}-`), 'instance id: the host name…')
  t.match(config.instanceId, /-[0-9a-f]{8}$/, '…and a random suffix')
  t.not(loadConfig({}).instanceId, config.instanceId, 'a new suffix each start')
})

t.test('empty and white-space values count as unset; values are trimmed', async t => {
  t.equal(loadConfig({ PORT: '', HOST: '   ' }).port, 8080)
  t.equal(loadConfig({ HOST: '   ' }).host, '0.0.0.0')
  t.equal(loadConfig({ PORT: ' 9000\n' }).port, 9000)
  t.equal(loadConfig({ KMS_URL: ' local ' }).kmsUrl, 'local')
})

t.test('every whole-number setting: its bounds are accepted, one past them and anything not a whole number refused', async t => {
  // Settings whose cross-checks would fire at a bound get the neighbour that keeps them apart.
  const ranges: Array<[string, number, number, (c: Config) => number, NodeJS.ProcessEnv?]> = [
    ['PORT', 0, 65535, c => c.port],
    ['KMS_TIMEOUT_MS', 100, 28_000, c => c.kmsTimeoutMs],
    ['BODY_LIMIT', 1024, 64 * 1024 * 1024, c => c.bodyLimit],
    ['AUDIT_WRITE_TIMEOUT_MS', 50, 20_000, c => c.audit.writeTimeoutMs],
    ['AUDIT_MIN_FREE_MB', 0, 100_000_000, c => c.audit.minFreeMb],
    ['AUDIT_CHECKPOINT_INTERVAL_S', 1, 86_400, c => c.audit.checkpointIntervalS],
    ['AUDIT_CHECKPOINT_RECORDS', 1, 10_000_000, c => c.audit.checkpointRecords],
    ['RATE_LIMIT_PER_MINUTE', 0, 1_000_000, c => c.rateLimitPerMinute],
    ['RATE_LIMIT_PER_IP_PER_MINUTE', 0, 1_000_000, c => c.rateLimitPerIpPerMinute],
    ['MAX_EVENT_LOOP_DELAY_MS', 0, 60_000, c => c.maxEventLoopDelayMs],
    ['KMS_MAX_CONCURRENCY', 1, 10_000, c => c.kmsMaxConcurrency],
    ['SHUTDOWN_GRACE_MS', 0, 600_000, c => c.shutdownGraceMs],
    ['REQUEST_TIMEOUT_MS', 500, 600_000, c => c.timeouts.requestMs, { HEADERS_TIMEOUT_MS: '500' }],
    ['HEADERS_TIMEOUT_MS', 500, 600_000, c => c.timeouts.headersMs, { REQUEST_TIMEOUT_MS: '600000' }],
    ['KEEP_ALIVE_TIMEOUT_MS', 1000, 600_000, c => c.timeouts.keepAliveMs]
  ]
  for (const [name, min, max, read, neighbours] of ranges) {
    const env = (value: string): NodeJS.ProcessEnv => ({ AUDIT: 'off', ...neighbours, [name]: value })
    t.equal(read(loadConfig(env(String(min)))), min, `${name}=${min}`)
    t.equal(read(loadConfig(env(String(max)))), max, `${name}=${max}`)
    t.equal(refusal(env(String(max + 1))).message, `${name} must be between ${min} and ${max}, got ${max + 1}`)
    if (min > 0) t.equal(refusal(env(String(min - 1))).message, `${name} must be between ${min} and ${max}, got ${min - 1}`)
    for (const bad of ['-1', '1.5', '1e3', 'ten', '0x10']) t.equal(refusal(env(bad)).message, `${name} must be a whole number, got "${bad}"`)
  }
})

t.test('true/false settings take the usual words in any case, and nothing else', async t => {
  for (const [word, value] of [['true', true], ['1', true], ['YES', true], ['On', true], ['false', false], ['0', false], ['no', false], ['OFF', false]] as const) {
    t.equal(loadConfig({ ALLOW_PASSTHROUGH: word }).allowPassthrough, value, `ALLOW_PASSTHROUGH=${word}`)
    t.equal(loadConfig({ AUDIT_FAIL_OPEN: word }).audit.failOpen, value, `AUDIT_FAIL_OPEN=${word}`)
    t.equal(loadConfig({ TRUST_PROXY: word }).trustProxy, value, `TRUST_PROXY=${word}`)
  }
  t.equal(refusal({ ALLOW_PASSTHROUGH: 'maybe' }).message, 'ALLOW_PASSTHROUGH must be true or false, got "maybe"')
  t.equal(refusal({ AUDIT_FAIL_OPEN: 'sometimes' }).message, 'AUDIT_FAIL_OPEN must be true or false, got "sometimes"')
  t.equal(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.7' }).trustProxy, '10.0.0.0/8, 192.168.1.7', 'TRUST_PROXY also takes the load balancers\' addresses')
})

t.test('settings with a fixed list of values', async t => {
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) t.equal(loadConfig({ LOG_LEVEL: level }).logLevel, level)
  t.equal(refusal({ LOG_LEVEL: 'verbose' }).message, 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"')
  t.equal(loadConfig({ RESPONSE_MODE: 'passthrough' }).responseMode, 'passthrough')
  t.equal(refusal({ RESPONSE_MODE: 'fix' }).message, 'RESPONSE_MODE must be one of repair, passthrough, got "fix"')
  t.equal(loadConfig({ AUDIT: 'OFF' }).audit.enabled, false, 'AUDIT in any case')
  t.equal(refusal({ AUDIT: 'maybe' }).message, 'AUDIT must be on or off, got "maybe"')
})

t.test('KMS_URL: "local", or an http(s) base URL; production must say which', async t => {
  const url = loadConfig({ KMS_URL: 'https://kms.pallycon.com' }).kmsUrl
  t.ok(url instanceof URL && url.href === 'https://kms.pallycon.com/')
  t.equal(refusal({ KMS_URL: 'ftp://kms.example' }).message, 'KMS_URL must use http or https, got "ftp:"')
  t.equal(refusal({ KMS_URL: 'kms.pallycon.com' }).message, 'KMS_URL must be "local" or an http(s) URL such as https://kms.pallycon.com, got "kms.pallycon.com"')
  t.equal(refusal({ KMS_URL: 'https://kms.pallycon.com/?enc-token=abc' }).message, 'KMS_URL must be a base URL without query or fragment', 'a query is refused without quoting it')
  t.equal(refusal({ KMS_URL: 'https://kms.pallycon.com/#x' }).message, 'KMS_URL must be a base URL without query or fragment')

  const production = refusal({ NODE_ENV: 'production' })
  t.match(production.message, /^KMS_URL is not set: with NODE_ENV=production set KMS_URL to your PallyCon KMS \(https:\/\/kms\.pallycon\.com\), or to "local"/)
  t.match(loadConfig({ NODE_ENV: 'production', KMS_URL: 'local' }), { production: true, kmsUrl: 'local' }, 'production may choose the embedded provider on purpose')
  t.match(loadConfig({ NODE_ENV: 'production', KMS_URL: 'https://kms.pallycon.com' }), { production: true })
  t.equal(loadConfig({ NODE_ENV: 'development' }).kmsUrl, 'local', 'outside production the embedded provider is the default')
})

t.test('the KMS deadline and the audit write together stay inside API Gateway\'s 29 s', async t => {
  t.doesNotThrow(() => loadConfig({ KMS_TIMEOUT_MS: '26000', AUDIT_WRITE_TIMEOUT_MS: '2000' }), '28000 ms exactly fits')
  t.equal(refusal({ KMS_TIMEOUT_MS: '26001', AUDIT_WRITE_TIMEOUT_MS: '2000' }).message,
    'KMS_TIMEOUT_MS (26001) + AUDIT_WRITE_TIMEOUT_MS (2000) must stay under 28000 ms, inside API Gateway\'s 29 s')
  t.match(refusal({ KMS_TIMEOUT_MS: '27000' }).message, /^KMS_TIMEOUT_MS \(27000\) \+ AUDIT_WRITE_TIMEOUT_MS \(2000\)/, 'with the default audit deadline')
  t.doesNotThrow(() => loadConfig({ KMS_TIMEOUT_MS: '28000', AUDIT_WRITE_TIMEOUT_MS: '20000', AUDIT: 'off' }), 'no audit, no audit write to wait for')
})

t.test('URLs for the embedded provider: absolute, kept without a trailing slash', async t => {
  t.match(loadConfig({ PLAYREADY_LA_URL: 'https://pr.example.com/rightsmanager.asmx', HLS_KEY_URL_BASE: 'https://keys.example.com/hls/' }).local, {
    playReadyLaUrl: 'https://pr.example.com/rightsmanager.asmx',
    hlsKeyUrlBase: 'https://keys.example.com/hls'
  })
  t.equal(refusal({ PLAYREADY_LA_URL: '/relative' }).message, 'PLAYREADY_LA_URL must be an absolute URL, got "/relative"')
  t.equal(refusal({ HLS_KEY_URL_BASE: 'keys' }).message, 'HLS_KEY_URL_BASE must be an absolute URL, got "keys"')
})

t.test('paths and the audit store', async t => {
  const config = loadConfig({ DATA_DIR: '/srv/proxy', TENANTS_FILE: '/etc/tenants.json', INSTANCE_ID: 'eu-1' })
  t.match(config, { dataDir: '/srv/proxy', tenantsFile: '/etc/tenants.json', instanceId: 'eu-1', audit: { dir: '/srv/proxy/audit', instanceIdSet: true } })
  t.equal(loadConfig({ AUDIT_DATABASE_URL: 'postgres://db/audit' }).audit.dir, undefined, 'with PostgreSQL only, no file sink')
  t.equal(loadConfig({ AUDIT_DATABASE_URL: 'postgres://db/audit', AUDIT_DIR: '/var/audit' }).audit.dir, '/var/audit', 'both when both are set')
  t.equal(loadConfig({ AUDIT_DATABASE_SCHEMA: 'speke_audit' }).audit.databaseSchema, 'speke_audit')
  t.equal(refusal({ AUDIT_DATABASE_SCHEMA: 'x; drop table y' }).message, 'AUDIT_DATABASE_SCHEMA must be a lower-case SQL identifier, got "x; drop table y"')
  t.equal(refusal({ AUDIT_DATABASE_SCHEMA: 'Audit' }).message, 'AUDIT_DATABASE_SCHEMA must be a lower-case SQL identifier, got "Audit"')
})

t.test('TLS: certificate and key together, as absolute paths', async t => {
  t.same(loadConfig({ TLS_CERT_FILE: 'certs/a.crt', TLS_KEY_FILE: '/k/a.key' }).tls, { certFile: resolve('certs/a.crt'), keyFile: '/k/a.key' })
  t.equal(refusal({ TLS_CERT_FILE: '/a.crt' }).message, 'TLS_CERT_FILE and TLS_KEY_FILE must be set together')
  t.equal(refusal({ TLS_KEY_FILE: '/a.key' }).message, 'TLS_CERT_FILE and TLS_KEY_FILE must be set together')
})

t.test('HEADERS_TIMEOUT_MS may not exceed REQUEST_TIMEOUT_MS', async t => {
  t.equal(refusal({ HEADERS_TIMEOUT_MS: '20000', REQUEST_TIMEOUT_MS: '10000' }).message, 'HEADERS_TIMEOUT_MS (20000) must not exceed REQUEST_TIMEOUT_MS (10000)')
  t.match(loadConfig({ HEADERS_TIMEOUT_MS: '10000', REQUEST_TIMEOUT_MS: '10000' }).timeouts, { headersMs: 10000, requestMs: 10000 })
})

t.test('secrets: a bad one is refused by name, and its value is never quoted', async t => {
  const marker = 'Sup3rS3cr3tV4lu3'
  const bad: Array<[string, string, RegExp]> = [
    ['LOCAL_KMS_SECRET', `${marker}!`, /^LOCAL_KMS_SECRET must be base64 of at least 32 bytes \(e\.g\. openssl rand -base64 32\): LOCAL_KMS_SECRET is not valid base64$/],
    ['LOCAL_KMS_SECRET', marker, /^LOCAL_KMS_SECRET must be base64 of at least 32 bytes .*: LOCAL_KMS_SECRET holds 12 bytes$/],
    ['AUDIT_HMAC_KEY', `${marker} ${marker}`, /^AUDIT_HMAC_KEY must be base64 of at least 32 bytes .*: AUDIT_HMAC_KEY is not valid base64$/],
    ['AUDIT_HMAC_KEY', Buffer.from(marker).toString('base64'), /^AUDIT_HMAC_KEY must be base64 of at least 32 bytes .*: AUDIT_HMAC_KEY holds 16 bytes$/],
    ['ADMIN_TOKEN', marker, /^ADMIN_TOKEN must be at least 32 characters \(it is 16\); make one with: openssl rand -base64 32$/],
    ['METRICS_TOKEN', marker, /^METRICS_TOKEN must be at least 32 characters \(it is 16\)/],
    ['AUDIT_SIGNING_KEY', marker, /^AUDIT_SIGNING_KEY must be a PKCS#8 PEM private key/]
  ]
  for (const [name, value, message] of bad) {
    const err = refusal({ [name]: value })
    t.match(err.message, message, `${name} named`)
    t.notOk(err.message.includes(marker) || err.message.includes(value), `${name}: the value is not quoted`)
  }
  const good = 'a'.repeat(32)
  t.match(loadConfig({ ADMIN_TOKEN: good, METRICS_TOKEN: good }), { adminToken: good, metricsToken: good })
  for (const form of ['file:/run/secrets/signing.pem', 'env:SIGNING_PEM', '-----BEGIN PRIVATE KEY-----\nMC4CAQ…']) {
    t.equal(loadConfig({ AUDIT_SIGNING_KEY: form }).audit.signingKey, form, `AUDIT_SIGNING_KEY as ${form.slice(0, 12)}`)
  }
})

/** 48 bytes whose base64 has '+' and '/' (URL-safe: '-' and '_'); 32 bytes end in one '=', 34 bytes in two. */
const KEY = Buffer.alloc(48, 0xfb)
const KEY32 = Buffer.alloc(32, 0x5a)
const KEY34 = Buffer.alloc(34, 7)
const SPELLINGS: Array<[string, string, Buffer | undefined]> = [
  ['standard, padded', KEY32.toString('base64'), KEY32],
  ['standard, unpadded', KEY32.toString('base64').replace(/=+$/, ''), KEY32],
  ['base64url, unpadded', KEY32.toString('base64url'), KEY32],
  ['base64url, padded', `${KEY32.toString('base64url')}=`, KEY32],
  ['standard with + and /', KEY.toString('base64'), KEY],
  ['base64url with - and _', KEY.toString('base64url'), KEY],
  ['with a trailing newline, as a file holds it', `${KEY32.toString('base64')}\n`, KEY32],
  ['31 bytes', Buffer.alloc(31, 1).toString('base64'), undefined],
  ['empty', '', undefined],
  ['both alphabets at once', KEY.toString('base64').replace('+', '-'), undefined],
  ['white space inside', `${KEY.toString('base64').slice(0, 20)} ${KEY.toString('base64').slice(20)}`, undefined],
  ['two padding characters', KEY34.toString('base64'), KEY34],
  ['half the padding', KEY34.toString('base64').slice(0, -1), undefined],
  ['padding on a length that needs none', `${KEY.toString('base64')}=`, undefined],
  ['stray bits in the last character (o becomes p)', `${KEY32.toString('base64').slice(0, 42)}p=`, undefined],
  ['a character outside base64', `${KEY32.toString('base64').slice(0, 40)}*AA=`, undefined]
]

t.test('one rule for secrets: config, the audit HMAC key and the embedded provider\'s secret accept the same spellings', async t => {
  t.equal(MIN_SECRET_BYTES, 32)
  for (const [what, text, bytes] of SPELLINGS) {
    const dir = t.testdir()
    const viaValidator = (): Buffer => base64Secret(text, 'AUDIT_HMAC_KEY')
    const viaConfig = (): Config => loadConfig({ AUDIT_HMAC_KEY: text, LOCAL_KMS_SECRET: text })
    const viaHmacKey = (): Buffer => loadOrCreateHmacKey(dir, text)
    const viaLocalSecret = (): Buffer => loadOrCreateSecret(dir, text)
    if (bytes === undefined) {
      t.ok(configErrorOf(viaValidator), `${what}: refused by the validator`)
      // An empty setting is an unset one (a key is generated), so only the validator and the secret file see ''.
      if (text !== '') t.ok(configErrorOf(viaConfig), `${what}: refused by the configuration`)
      if (text !== '') t.ok(configErrorOf(viaHmacKey), `${what}: refused as AUDIT_HMAC_KEY`)
      t.ok(configErrorOf(viaLocalSecret), `${what}: refused as LOCAL_KMS_SECRET`)
    } else {
      t.same(viaValidator(), bytes, `${what}: accepted by the validator`)
      t.doesNotThrow(viaConfig, `${what}: accepted by the configuration`)
      t.same(viaHmacKey(), bytes, `${what}: accepted as AUDIT_HMAC_KEY`)
      t.same(viaLocalSecret(), bytes, `${what}: accepted as LOCAL_KMS_SECRET`)
    }
  }
})

t.test('a damaged generated secret file is a ConfigError naming the file and the setting that would replace it', async t => {
  const dir = t.testdir()
  writeFileSync(join(dir, 'local-kms.secret'), 'c2hvcnQ=\n')
  t.match(configErrorOf(() => loadOrCreateSecret(dir, undefined))?.message, /^LOCAL_KMS_SECRET must be base64 of at least 32 bytes .*: .*local-kms\.secret \(used because LOCAL_KMS_SECRET is unset\) holds 5 bytes$/)
  writeFileSync(join(dir, 'audit-hmac.key'), 'c2hvcnQ=\n')
  t.match(configErrorOf(() => loadOrCreateHmacKey(dir))?.message, /^AUDIT_HMAC_KEY must be .*audit-hmac\.key \(used because AUDIT_HMAC_KEY is unset\) holds 5 bytes$/)
})
