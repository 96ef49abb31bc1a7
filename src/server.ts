// Assembles a running proxy from a Config: key provider, tenants, audit, reply checks, and the Fastify app.

import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import type { Config } from './config.js'
import { createPallyConProvider } from './kms/pallycon.js'
import type { KeyProvider } from './kms/provider.js'
import { loadTenantsFile } from './tenants/registry.js'
import type { TenantRegistry } from './tenants/registry.js'
import { USER_AGENT } from './version.js'

export interface ProxyServer {
  app: FastifyInstance
  provider: KeyProvider
  /** Stop accepting, finish in-flight requests, close the upstream pool and sinks. */
  close: () => Promise<void>
}

export interface ServerOptions {
  env?: NodeJS.ProcessEnv
  logStream?: NodeJS.WritableStream
}

export async function createServer (config: Config, options: ServerOptions = {}): Promise<ProxyServer> {
  const tenants: TenantRegistry = {
    tenants: config.tenantsFile === undefined ? [] : loadTenantsFile(config.tenantsFile, options.env ?? process.env),
    allowPassthrough: config.allowPassthrough
  }
  const provider = await createProvider(config)
  const app = await buildApp({ config, provider, tenants, logStream: options.logStream })
  if (provider.name === 'local') {
    app.log.warn({ provider: 'local' }, 'KMS_URL=local: content keys are GENERATED LOCALLY by the embedded key provider; PallyCon does not know them. Never use this in production.')
  }
  return {
    app,
    provider,
    async close () {
      await app.close()
      await provider.close()
    }
  }
}

async function createProvider (config: Config): Promise<KeyProvider> {
  if (config.kmsUrl === 'local') {
    const { createLocalProvider } = await import('./kms/local/provider.js')
    return createLocalProvider(config)
  }
  return createPallyConProvider({ baseUrl: config.kmsUrl, timeoutMs: config.kmsTimeoutMs, userAgent: USER_AGENT })
}
