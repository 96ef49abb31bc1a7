// `npm test`: runs tap with TEST_DATABASE_URL set, starting one embedded PostgreSQL for the run when none is named.

import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { startTestDatabase } from './test-database.mjs'

const tapPackage = createRequire(import.meta.url).resolve('tap/package.json')
const tapBin = join(dirname(tapPackage), JSON.parse(readFileSync(tapPackage, 'utf8')).bin.tap)
const args = process.argv.slice(2)

let database
if (process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '') {
  const started = Date.now()
  database = await startTestDatabase()
  process.env.TEST_DATABASE_URL = database.url
  console.log(`# embedded PostgreSQL ready on ${new URL(database.url).host} in ${Date.now() - started} ms`)
} else {
  console.log('# PostgreSQL from TEST_DATABASE_URL')
}

const child = spawn(process.execPath, [tapBin, ...args], { stdio: 'inherit', env: process.env })
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
const code = await new Promise(resolve => child.on('close', (status, signal) => resolve(status ?? (signal === null ? 1 : 128))))
await database?.stop()
process.exit(code)
