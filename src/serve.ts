// Runs the proxy as a process: listen, reload TLS on SIGHUP, and on SIGTERM/SIGINT drain in-flight requests within a grace period.

import { Server as TlsServer } from 'node:tls'
import { ConfigError, loadConfig } from './config.js'
import { assembleProxy } from './proxy.js'
import { TenantsFileError } from './tenants/registry.js'
import { readTlsFiles } from './tls.js'

export async function serve (env: NodeJS.ProcessEnv): Promise<void> {
  let server
  let config
  try {
    config = loadConfig(env)
    server = await assembleProxy(config, { env })
    await server.app.listen({ port: config.port, host: config.host })
  } catch (err) {
    if (err instanceof ConfigError || err instanceof TenantsFileError) {
      process.stderr.write(`speke-proxy: configuration error: ${err.message}\n`)
      process.exit(78)
    }
    throw err
  }
  const running = server
  const settings = config
  const log = running.logger

  if (settings.tls !== undefined) {
    const files = settings.tls
    process.on('SIGHUP', () => {
      try {
        const { cert, key } = readTlsFiles(files)
        const server = running.app.server
        if (!(server instanceof TlsServer)) throw new Error('the proxy is not listening with TLS')
        server.setSecureContext({ cert, key })
        log.info({ cert: files.certFile }, 'TLS certificate reloaded')
      } catch (err) {
        log.error({ err: { message: (err as Error).message } }, 'TLS certificate reload failed; keeping the current one')
      }
    })
  }

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    log.info({ signal, graceMs: settings.shutdownGraceMs }, 'shutting down: no new connections, finishing in-flight requests')
    const timer = setTimeout(() => {
      log.error({ graceMs: settings.shutdownGraceMs }, 'shutdown grace period over; exiting with requests still in flight')
      process.exit(1)
    }, settings.shutdownGraceMs)
    timer.unref()
    running.close().then(() => {
      log.info('shut down cleanly')
      log.flush?.()
      process.exit(0)
    }, (err: unknown) => {
      log.error({ err: { message: (err as Error).message } }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}
