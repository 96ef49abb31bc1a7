// Prometheus metrics (prom-client): key requests by route, managed tenant, SPEKE version and outcome; latencies; errors by kind and code;
// audit write failures; readiness and the TLS certificate's expiry (read at each scrape); process.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { ERROR_CODES, errorKind } from './error-codes.js'
import { SPEKE_V1_VERSION, SPEKE_V2_VERSIONS } from './protocol.js'
import type { KeyRequestRecord } from './request-record.js'
import { PASSTHROUGH_PREFIX } from './tenants/registry.js'

export interface Metrics {
  registry: Registry
  observe: (record: KeyRequestRecord, seconds: { total: number, audit?: number }) => void
  /** An audit sink failed to confirm a record, whatever became of the request (another sink confirmed, AUDIT_FAIL_OPEN, 503). */
  auditWriteFailed: () => void
  /**
   * Gauges computed at each scrape, so never stale: `ready` as /readyz decides it (speke_proxy_ready); `certificateNotAfter`,
   * when TLS is on, the notAfter (Unix seconds) of the certificate being served. Call once.
   */
  watch: (sources: { ready: () => boolean, certificateNotAfter?: () => number | undefined }) => void
}

/** The tenant label of pass-through requests: their site ids are unverified caller input, so they never become labels. */
export const PASSTHROUGH_LABEL = 'passthrough'

/**
 * `knownTenants` are the configured (managed) tenant ids, the only tenant labels besides `passthrough` (any pass-through
 * token, whatever its site id), `none` (no credential resolved) and `other`: as many series as there are tenants.
 */
/** Seconds: key requests and KMS waits, and the (much shorter) audit writes. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20]
const AUDIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2]

export function createMetrics (knownTenants: string[]): Metrics {
  const registry = new Registry()
  const registers = [registry]
  collectDefaultMetrics({ register: registry, prefix: 'speke_proxy_' })
  const requests = new Counter({
    name: 'speke_proxy_key_requests_total',
    help: 'Key requests by route, managed tenant (or passthrough/none), SPEKE version and outcome',
    labelNames: ['route', 'tenant', 'speke_version', 'outcome', 'status'] as const,
    registers
  })
  const duration = new Histogram({
    name: 'speke_proxy_request_duration_seconds',
    help: 'Whole key request, from routing to reply',
    labelNames: ['route'] as const,
    buckets: LATENCY_BUCKETS,
    registers
  })
  const kms = new Histogram({
    name: 'speke_proxy_kms_duration_seconds',
    help: 'Time waiting on the key provider',
    labelNames: ['route'] as const,
    buckets: LATENCY_BUCKETS,
    registers
  })
  const audit = new Histogram({
    name: 'speke_proxy_audit_write_duration_seconds',
    help: 'Time to make the audit record durable',
    buckets: AUDIT_BUCKETS,
    registers
  })
  const upstreamErrors = new Counter({
    name: 'speke_proxy_upstream_errors_total',
    help: 'Key provider and audit failures by kind (the metric kind of the error code, docs/errors.md)',
    labelNames: ['kind'] as const,
    registers
  })
  const errorCodes = new Counter({
    name: 'speke_proxy_key_request_errors_total',
    help: 'Key requests refused or failed, by error code (docs/errors.md), e.g. OVERLOADED, RATE_LIMITED_ADDRESS, RATE_LIMITED, KMS_TIMEOUT',
    labelNames: ['code'] as const,
    registers
  })
  // Every kind and code starts at 0, so that increase() and rate() see the first failure (a series born at 1 shows none).
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    errorCodes.inc({ code }, 0)
    upstreamErrors.inc({ kind: spec.kind }, 0)
  }
  const auditFailures = new Counter({
    name: 'speke_proxy_audit_write_failures_total',
    help: 'Audit writes (records and refusal summaries) that a sink failed to confirm in time, counted per sink; the log names the sink',
    registers
  })

  const known = new Set(knownTenants)
  const tenantLabel = (tenant: string | undefined): string => {
    if (tenant === undefined) return 'none'
    if (tenant.startsWith(PASSTHROUGH_PREFIX)) return PASSTHROUGH_LABEL
    return known.has(tenant) ? tenant : 'other'
  }

  return {
    registry,
    observe (record, seconds) {
      const { route, outcome } = record
      const tenant = tenantLabel(record.tenant)
      requests.inc({ route, tenant, speke_version: spekeVersionLabel(record), outcome, status: String(record.status) })
      duration.observe({ route }, seconds.total)
      if (record.upstreamMs !== undefined) kms.observe({ route }, record.upstreamMs / 1000)
      if (seconds.audit !== undefined) audit.observe(seconds.audit)
      if (outcome === 'upstream_error') upstreamErrors.inc({ kind: errorKind(record.errorCode) })
      if (record.errorCode !== undefined) errorCodes.inc({ code: record.errorCode })
    },
    auditWriteFailed () { auditFailures.inc() },
    watch ({ ready, certificateNotAfter }) {
      // Created here, not up front: an unlabelled gauge would show 0 (not ready, certificate expired in 1970) before it is told.
      new Gauge({ // eslint-disable-line no-new
        name: 'speke_proxy_ready',
        help: '1 while /readyz answers ready (audit writable, upstream not failing, not shutting down), else 0',
        registers,
        collect () { this.set(ready() ? 1 : 0) }
      })
      if (certificateNotAfter === undefined) return
      new Gauge({ // eslint-disable-line no-new
        name: 'speke_proxy_tls_certificate_expiry_timestamp_seconds',
        help: 'notAfter of the TLS certificate being served (TLS_CERT_FILE as last loaded, at startup or by SIGHUP), Unix seconds',
        registers,
        collect () {
          const notAfter = certificateNotAfter()
          if (notAfter !== undefined) this.set(notAfter)
        }
      })
    }
  }
}

/** Only known versions become labels: the header is caller input. */
function spekeVersionLabel (record: KeyRequestRecord): string {
  if (record.spekeVersion === undefined) return record.route === 'speke' ? SPEKE_V1_VERSION : 'none'
  const version = record.spekeVersion.trim()
  return Object.hasOwn(SPEKE_V2_VERSIONS, version) ? version : 'invalid'
}
