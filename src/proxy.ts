// Assembles the proxy from a Config (not yet listening): logger, key provider, tenants, audit trail, reply checks, and the Fastify app.

import type { KeyObject } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { buildApp } from './app.js'
// The audit modules one by one, not audit/index.js: that also holds the CLI's verify and prune, and with them pg.
import { loadOrCreateHmacKey } from './audit/hmac-key.js'
import { loadOrCreateInstanceId } from './audit/instance-id.js'
import { loadSigningKey } from './audit/signing-key.js'
import { openAuditTrail, type AuditTrail } from './audit/trail.js'
import type { Config } from './config.js'
import type { KeyProvider } from './kms/provider.js'
import { createLogger } from './logger.js'
import { createMetrics } from './metrics.js'
import { createUpstreamHealth } from './upstream-health.js'
import { verifyAndRepair } from './pipeline/check-reply.js'
import { loadTenantsFile } from './tenants/registry.js'
import type { TenantRegistry } from './tenants/registry.js'
import { USER_AGENT } from './version.js'

export interface ProxyAssembly {
  app: FastifyInstance
  provider: KeyProvider
  audit?: AuditTrail
  logger: Logger
  /** Stop accepting, finish in-flight requests, flush the audit, close the upstream pool. */
  close: () => Promise<void>
}

export interface AssemblyOptions {
  env?: NodeJS.ProcessEnv
  logStream?: NodeJS.WritableStream
}

export async function assembleProxy (config: Config, options: AssemblyOptions = {}): Promise<ProxyAssembly> {
  const logger = createLogger(config.logLevel, options.logStream)
  const tenants: TenantRegistry = {
    tenants: config.tenantsFile === undefined ? [] : loadTenantsFile(config.tenantsFile, options.env ?? process.env),
    allowPassthrough: config.allowPassthrough
  }
  const provider = await createProvider(config)
  if (provider.name === 'local') {
    logger.warn({ provider: 'local' }, 'KMS_URL=local: content keys are GENERATED LOCALLY by the embedded key provider; PallyCon does not know them. Never use this in production.')
  } else {
    logger.info({ provider: 'pallycon', kms: config.kmsUrl === 'local' ? 'local' : config.kmsUrl.origin }, 'forwarding key requests to the PallyCon KMS')
  }

  const metrics = createMetrics(tenants.tenants.map(t => t.id))
  let audit: AuditTrail | undefined
  let hmacKey: Buffer | undefined
  let checkpointKey: KeyObject | undefined
  if (config.audit.enabled) {
    hmacKey = loadOrCreateHmacKey(config.dataDir, config.audit.hmacKey)
    const signingKey = loadSigningKey(config.dataDir, config.audit.signingKey, options.env ?? process.env)
    if (signingKey.generated) {
      logger.warn({ audit: 'signing-key', keyId: signingKey.keyId, file: signingKey.source }, 'audit checkpoints are signed with a key kept in DATA_DIR: in production supply AUDIT_SIGNING_KEY from a secret store, and give auditors the public key (speke-proxy audit public-key)')
    }
    checkpointKey = signingKey.publicKey
    const instanceId = config.audit.instanceIdSet ? config.instanceId : loadOrCreateInstanceId(config.dataDir)
    audit = await openAuditTrail({
      dir: config.audit.dir,
      databaseUrl: config.audit.databaseUrl,
      databaseSchema: config.audit.databaseSchema,
      hmacKey,
      instanceId,
      checkpoints: {
        signer: signingKey,
        everyRecords: config.audit.checkpointRecords,
        intervalMs: config.audit.checkpointIntervalS * 1000
      },
      databaseMigrateUrl: config.audit.databaseMigrateUrl,
      failOpen: config.audit.failOpen,
      writeTimeoutMs: config.audit.writeTimeoutMs,
      minFreeBytes: config.audit.minFreeMb * 1024 * 1024,
      onWriteFailure: metrics.auditWriteFailed
    }, logger)
  }
  const trail = audit
  const key = hmacKey

  const upstream = createUpstreamHealth()
  let shuttingDown = false
  const app = await buildApp({
    config,
    provider,
    tenants,
    logger,
    checkReply: config.responseMode === 'repair' ? verifyAndRepair() : undefined,
    audit: trail === undefined ? undefined : async (event) => { await trail.record(event) },
    metrics,
    observe: (record, seconds) => { metrics.observe(record, seconds); upstream.note(record) },
    readiness: () => ({
      audit: trail === undefined || trail.healthy() || (trail.problem() ?? false),
      upstream: upstream.healthy(),
      accepting: !shuttingDown
    }),
    plugins: trail === undefined || key === undefined || config.adminToken === undefined
      ? []
      : [async (instance) => {
          // Loaded only when used: the admin API reads the audit (and PostgreSQL when configured).
          const { adminRoutes } = await import('./routes/admin.js')
          await adminRoutes(instance, { source: trail.source, hmacKey: key, adminToken: config.adminToken, publicKey: checkpointKey })
        }]
  })
  return {
    app,
    provider,
    audit: trail,
    logger,
    async close () {
      shuttingDown = true
      await app.close()
      await provider.close()
      await trail?.close()
    }
  }
}

async function createProvider (config: Config): Promise<KeyProvider> {
  if (config.kmsUrl === 'local') {
    const { createLocalProvider } = await import('./kms/local/provider.js')
    return createLocalProvider(config)
  }
  // Loaded only when used, like the local provider: undici's import is a good part of startup.
  const { createPallyConProvider } = await import('./kms/pallycon.js')
  return createPallyConProvider({
    baseUrl: config.kmsUrl,
    timeoutMs: config.kmsTimeoutMs,
    userAgent: USER_AGENT,
    connections: config.kmsMaxConcurrency
  })
}
