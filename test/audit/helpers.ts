// Shared test fixtures for the audit trail: sample events, fixed keys, and a throw-away PostgreSQL schema per test.

import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import type { Test } from 'tap'
import type { AuditEvent } from '../../src/audit/index.js'

export const HMAC_KEY = Buffer.alloc(32, 7)
export const PG_URL = process.env.AUDIT_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

export const KEY_A = Buffer.from('00112233445566778899aabbccddeeff', 'hex')
export const KEY_B = Buffer.from('f0e1d2c3b4a5968778695a4b3c2d1e0f', 'hex')

export function sampleEvent (overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    requestId: `req-${randomBytes(4).toString('hex')}`,
    route: '/speke/v2/copyProtection',
    tenant: 'site-1',
    callerIp: '203.0.113.9',
    userAgent: 'MediaPackage/2.0',
    spekeVersion: '2.0',
    contentId: 'movie-42',
    requestedKids: ['6C5F5206-7D98-4B8A-8D9E-0A4B7C1D2E3F'],
    drmSystems: ['EDEF8BA9-79D6-4ACE-A3C8-27DCD51D21ED'],
    trackTypes: ['SD', 'AUDIO'],
    keyPeriods: [],
    upstreamStatus: 200,
    upstreamLatencyMs: 12.6,
    outcome: 'ok',
    status: 200,
    returnedKeys: [{ kid: '6C5F5206-7D98-4B8A-8D9E-0A4B7C1D2E3F', key: KEY_A }],
    requestBody: Buffer.from('<cpix:CPIX/>'),
    responseBody: Buffer.from('<cpix:CPIX>secret content keys</cpix:CPIX>'),
    ...overrides
  }
}

/**
 * A unique schema name for this test run, dropped at the end. PostgreSQL is required: when it cannot be reached the
 * test FAILS (in CI and locally alike), it never skips. Resolves undefined after failing so the caller can stop.
 */
export async function pgSchema (t: Test): Promise<string | undefined> {
  const schema = `audit_test_${process.pid}_${randomBytes(4).toString('hex')}`
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 })
  try {
    await client.connect()
    await client.query('SELECT 1')
  } catch (err) {
    t.fail(`PostgreSQL is required for this test (${PG_URL}${process.env.CI === undefined ? '' : ', CI=' + process.env.CI}): ${(err as Error).message}`)
    await client.end().catch(() => {})
    return undefined
  }
  await client.end()
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: PG_URL })
    await c.connect()
    try { await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`) } finally { await c.end() }
  })
  return schema
}

/** Runs one statement against the test database. */
export async function sql<R extends pg.QueryResultRow = pg.QueryResultRow> (text: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: PG_URL })
  await c.connect()
  try { return (await c.query<R>(text, params)).rows } finally { await c.end() }
}

/** Every string a key could be spelled as in a record. */
export function keySpellings (key: Buffer): string[] {
  return [key.toString('hex'), key.toString('hex').toUpperCase(), key.toString('base64').replace(/=+$/, ''), key.toString('base64url')]
}

/** True when a file can be created in dir (root ignores permission bits, so this is probed, not assumed). */
function canWrite (dir: string): boolean {
  try {
    writeFileSync(join(dir, '.probe'), '')
    unlinkSync(join(dir, '.probe'))
    return true
  } catch {
    return false
  }
}

/**
 * A directory nobody can write to: chmod 0555, or for root (which ignores modes) chattr +i, or as a last resort a path
 * under a regular file. Call restore() before the test ends so the fixture can be removed.
 */
export function unwritableDir (t: Test, parent: string): { dir: string, how: string, restore: () => void } {
  const dir = join(parent, 'read-only')
  mkdirSync(dir)
  chmodSync(dir, 0o555)
  const restore = (): void => {
    if (!existsSync(dir)) return
    try { execFileSync('chattr', ['-i', dir], { stdio: 'ignore' }) } catch {}
    chmodSync(dir, 0o755)
  }
  t.teardown(restore)
  if (!canWrite(dir)) return { dir, how: 'chmod 0555', restore }
  try { execFileSync('chattr', ['+i', dir], { stdio: 'ignore' }) } catch {}
  if (!canWrite(dir)) return { dir, how: 'chattr +i (running as root)', restore }
  const file = join(parent, 'not-a-directory')
  writeFileSync(file, '')
  return { dir: join(file, 'audit'), how: 'a path under a regular file (running as root without chattr)', restore }
}

/** The lines of every audit file in dir, in name order. */
export function auditLines (dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l !== ''))
}
