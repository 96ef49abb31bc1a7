// Process entry: read the configuration, start the proxy, and shut down gracefully on SIGTERM/SIGINT.

import { ConfigError, loadConfig } from './config.js'
import { createServer } from './server.js'
import { TenantsFileError } from './tenants/registry.js'

async function main (): Promise<void> {
  let server
  try {
    const config = loadConfig(process.env)
    server = await createServer(config)
    await server.app.listen({ port: config.port, host: config.host })
  } catch (err) {
    if (err instanceof ConfigError || err instanceof TenantsFileError) {
      process.stderr.write(`speke-proxy: configuration error: ${err.message}\n`)
      process.exit(78)
    }
    throw err
  }
  const running = server
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    running.app.log.info({ signal }, 'shutting down')
    running.close().then(() => process.exit(0), (err: unknown) => {
      running.app.log.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

await main()
