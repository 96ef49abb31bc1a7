// In-process TLS: read the certificate and key files (reloaded on SIGHUP by serve.ts), and remember the served certificate's expiry.

import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import type { SecureContextOptions } from 'node:tls'
import { ConfigError } from './config.js'

/** notAfter (Unix seconds) of the certificate last read, and checked against its key, from each certificate file. */
const loadedNotAfter = new Map<string, number>()

/**
 * Reads the pair and checks that the key matches the certificate, so a pair that fails here is never served and never
 * counted as loaded; on success remembers the certificate's notAfter for the expiry gauge.
 */
export function readTlsFiles (files: { certFile: string, keyFile: string }): SecureContextOptions & { minVersion: 'TLSv1.2' } {
  let pair: { cert: Buffer, key: Buffer }
  try {
    pair = { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) }
  } catch (err) {
    throw new ConfigError(`TLS_CERT_FILE/TLS_KEY_FILE cannot be read: ${(err as Error).message}`)
  }
  let notAfter: number
  try {
    createSecureContext(pair)
    // The first certificate of the file is the one presented; any others are its chain.
    notAfter = Date.parse(new X509Certificate(pair.cert).validTo) / 1000
  } catch (err) {
    throw new ConfigError(`TLS_CERT_FILE/TLS_KEY_FILE are not a usable certificate and key: ${(err as Error).message}`)
  }
  if (Number.isFinite(notAfter)) loadedNotAfter.set(files.certFile, notAfter)
  return { ...pair, minVersion: 'TLSv1.2' }
}

/** notAfter (Unix seconds) of the certificate last loaded from `certFile` by readTlsFiles; undefined before any. */
export function loadedCertificateNotAfter (certFile: string): number | undefined {
  return loadedNotAfter.get(certFile)
}
