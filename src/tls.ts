// In-process TLS: read the certificate and key files, and reload them (SIGHUP) without dropping connections.

import { readFileSync } from 'node:fs'
import type { SecureContextOptions } from 'node:tls'
import { ConfigError } from './config.js'

export function readTlsFiles (files: { certFile: string, keyFile: string }): SecureContextOptions & { minVersion: 'TLSv1.2' } {
  try {
    return { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile), minVersion: 'TLSv1.2' }
  } catch (err) {
    throw new ConfigError(`TLS_CERT_FILE/TLS_KEY_FILE cannot be read: ${(err as Error).message}`)
  }
}
