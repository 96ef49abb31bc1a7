// The product's name and version as it presents itself to callers and the KMS, read once from package.json.

import { readFileSync } from 'node:fs'

/** package.json sits one level above both src/ (tests) and dist/ (the built server). */
const manifest: unknown = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))

function versionOf (value: unknown): string {
  if (typeof value === 'object' && value !== null && 'version' in value && typeof value.version === 'string') return value.version
  throw new Error('package.json has no version')
}

export const VERSION = versionOf(manifest)
export const USER_AGENT = `speke-proxy/${VERSION}`
