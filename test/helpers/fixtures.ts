// Reads the test fixtures under test/fixtures (real documents copied into the repository; see test/fixtures/SOURCES.md).

import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
export const PROJECT_ROOT = resolve(here, '..', '..')
export const FIXTURES = join(PROJECT_ROOT, 'test', 'fixtures')

export function fixture (path: string): Buffer {
  return readFileSync(join(FIXTURES, path))
}

export function fixtureText (path: string): string {
  return fixture(path).toString('utf8')
}

/** The body of a captured HTTP request file (headers, blank line, body). */
export function capturedBody (path: string): Buffer {
  const raw = fixture(path)
  const sep = raw.indexOf('\r\n\r\n') !== -1 ? raw.indexOf('\r\n\r\n') + 4 : raw.indexOf('\n\n') + 2
  return raw.subarray(sep)
}

/** PallyCon's public DEMO site token (pallycon-kms.md §3). */
export const DEMO_TOKEN = 'eyJhY2Nlc3Nfa2V5IjoiZHNJb2xjN2gxRzhUVW1JMTdiWXd4aFV1TkZvRmNlNzJjeDllTU9rNjJ3YjhWTjJQZGdwV1lISXhTRVg5ZjBIaSIsInNpdGVfaWQiOiJERU1PIn0='
export const DEMO_ACCESS_KEY = 'dsIolc7h1G8TUmI17bYwxhUuNFoFce72cx9eMOk62wb8VN2PdgpWYHIxSEX9f0Hi'

/** The user agent the proxy must present: its name and the version in package.json (read here, not from src/version.ts). */
export const EXPECTED_USER_AGENT = `speke-proxy/${(JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version}`
