// Specification of the metrics: bounded labels whatever callers send, managed tenants only, error kinds from codes, the README's names.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ERROR_CODES } from '../src/error-codes.js'
import type { ErrorCode } from '../src/error-codes.js'
import { PASSTHROUGH_LABEL, createMetrics } from '../src/metrics.js'
import type { Metrics } from '../src/metrics.js'
import { PROJECT_ROOT } from './helpers/fixtures.js'

type KeyRequestRecord = Parameters<Metrics['observe']>[0]

const record = (overrides: Partial<KeyRequestRecord> = {}): KeyRequestRecord =>
  ({ route: 'speke', tenant: 'acme', authenticated: true, outcome: 'ok', status: 200, keysReturned: 1, ...overrides })

interface Sample { labels: Record<string, string | number>, value: number, metricName?: string }

async function samples (metrics: Metrics, name: string): Promise<Sample[]> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find(m => m.name === name)
  return (metric?.values ?? []) as Sample[]
}

async function labelValues (metrics: Metrics, name: string, label: string): Promise<string[]> {
  return [...new Set((await samples(metrics, name)).map(s => String(s.labels[label])))].sort()
}

t.test('a managed tenant is its own label; pass-through sites, unknown tenants and requests without a caller are not', async t => {
  const metrics = createMetrics(['acme', 'globex'])
  metrics.observe(record({ tenant: 'acme' }), { total: 0.01 })
  metrics.observe(record({ tenant: 'globex' }), { total: 0.01 })
  metrics.observe(record({ tenant: 'site:DEMO' }), { total: 0.01 })
  metrics.observe(record({ tenant: 'site:ANOTHER' }), { total: 0.01 })
  metrics.observe(record({ tenant: 'initech' }), { total: 0.01 })
  metrics.observe(record({ tenant: undefined, authenticated: false, outcome: 'rejected', status: 401, errorCode: 'MISSING_TOKEN' }), { total: 0.01 })
  t.same(await labelValues(metrics, 'speke_proxy_key_requests_total', 'tenant'), ['acme', 'globex', 'none', 'other', PASSTHROUGH_LABEL].sort())
  const passthrough = (await samples(metrics, 'speke_proxy_key_requests_total')).filter(s => s.labels.tenant === PASSTHROUGH_LABEL)
  t.same(passthrough.map(s => s.value), [2], 'every pass-through site counts under one label: site ids are unverified caller input')
})

t.test('labels stay bounded however many tenants and SPEKE versions callers make up', async t => {
  const metrics = createMetrics(['acme'])
  for (let i = 0; i < 500; i++) {
    metrics.observe(record({ tenant: `site:${i}`, spekeVersion: `${i}.0` }), { total: 0.01 })
    metrics.observe(record({ tenant: `made-up-${i}`, spekeVersion: ` 2.${i % 2} ` }), { total: 0.01 })
  }
  metrics.observe(record({ route: 'pallycon-v2', spekeVersion: undefined }), { total: 0.01 })
  metrics.observe(record({ spekeVersion: undefined }), { total: 0.01 })
  t.same(await labelValues(metrics, 'speke_proxy_key_requests_total', 'tenant'), ['acme', 'other', PASSTHROUGH_LABEL].sort())
  t.same(await labelValues(metrics, 'speke_proxy_key_requests_total', 'speke_version'), ['1.0', '2.0', '2.1', 'invalid', 'none'],
    'SPEKE v1 on the SPEKE route, the two v2 versions (trimmed), invalid, and none for the other URL families')
  t.ok((await samples(metrics, 'speke_proxy_key_requests_total')).length <= 8, 'a handful of series, not a thousand')
})

t.test('upstream errors count by the metric kind of their code, never by their message', async t => {
  const metrics = createMetrics([])
  const fail = (errorCode: ErrorCode | undefined, error = 'whatever the message says'): void => {
    const status = errorCode === undefined ? 502 : ERROR_CODES[errorCode].status
    metrics.observe(record({ outcome: 'upstream_error', status: typeof status === 'number' ? status : 400, error, errorCode }), { total: 0.01 })
  }
  fail('KMS_TIMEOUT', 'KMS connection failed (a message that would mislead a regex)')
  fail('KMS_UNREACHABLE')
  fail('KMS_ERROR', 'KMS refused the request (HTTP 500): …')
  fail('KMS_NO_CPIX')
  fail('KMS_REPLY_NOT_CPIX')
  fail('KMS_REPLY_INVALID', 'KMS reply: content id is "b", the request asked for "a"')
  fail('AUDIT_UNAVAILABLE')
  fail('BAD_TOKEN')
  fail(undefined)
  const counted = Object.fromEntries((await samples(metrics, 'speke_proxy_upstream_errors_total')).map(s => [s.labels.kind, s.value]))
  t.same(counted, { timeout: 1, connection: 1, kms_error: 1, not_cpix: 2, invalid_reply: 1, audit: 1, other: 2 })
})

t.test('refusals and successes are no upstream errors', async t => {
  const metrics = createMetrics([])
  metrics.observe(record({ outcome: 'rejected', status: 401, errorCode: 'MISSING_TOKEN' }), { total: 0.01 })
  metrics.observe(record({ outcome: 'rejected', status: 403, errorCode: 'KMS_REFUSED' }), { total: 0.01 })
  metrics.observe(record(), { total: 0.01 })
  t.same((await samples(metrics, 'speke_proxy_upstream_errors_total')).filter(s => s.value !== 0), [])
})

t.test('every error kind and code is a series from startup, at 0, so that increase() sees the first failure', async t => {
  const metrics = createMetrics([])
  const kinds = await samples(metrics, 'speke_proxy_upstream_errors_total')
  t.same(kinds.map(s => s.labels.kind).sort(), [...new Set(Object.values(ERROR_CODES).map(s => s.kind))].sort())
  const codes = await samples(metrics, 'speke_proxy_key_request_errors_total')
  t.same(codes.map(s => s.labels.code).sort(), Object.keys(ERROR_CODES).sort(), 'one series per code: a bounded label')
  t.ok([...kinds, ...codes].every(s => s.value === 0))
})

t.test('refusals and failures count by their code; successes have none', async t => {
  const metrics = createMetrics([])
  metrics.observe(record({ outcome: 'rejected', status: 503, errorCode: 'OVERLOADED' }), { total: 0.001 })
  metrics.observe(record({ outcome: 'rejected', status: 429, errorCode: 'RATE_LIMITED_ADDRESS' }), { total: 0.001 })
  metrics.observe(record({ outcome: 'rejected', status: 429, errorCode: 'RATE_LIMITED' }), { total: 0.001 })
  metrics.observe(record({ outcome: 'rejected', status: 429, errorCode: 'RATE_LIMITED' }), { total: 0.001 })
  metrics.observe(record({ outcome: 'upstream_error', status: 503, errorCode: 'AUDIT_UNAVAILABLE' }), { total: 0.001 })
  metrics.observe(record(), { total: 0.01 })
  const counted = Object.fromEntries((await samples(metrics, 'speke_proxy_key_request_errors_total')).filter(s => s.value !== 0).map(s => [s.labels.code, s.value]))
  t.same(counted, { OVERLOADED: 1, RATE_LIMITED_ADDRESS: 1, RATE_LIMITED: 2, AUDIT_UNAVAILABLE: 1 })
})

t.test('audit write failures count each sink failure', async t => {
  const metrics = createMetrics([])
  t.same((await samples(metrics, 'speke_proxy_audit_write_failures_total')).map(s => s.value), [0], 'present at 0 before any failure')
  metrics.auditWriteFailed()
  metrics.auditWriteFailed()
  t.same((await samples(metrics, 'speke_proxy_audit_write_failures_total')).map(s => s.value), [2])
})

t.test('readiness and certificate expiry are read at each scrape; neither is shown before it is watched', async t => {
  const metrics = createMetrics([])
  const names = async (): Promise<string[]> => (await metrics.registry.getMetricsAsJSON()).map(m => m.name)
  t.notOk((await names()).includes('speke_proxy_ready'), 'no gauge at 0 (not ready) before anything says so')
  let ready = true
  let notAfter: number | undefined
  metrics.watch({ ready: () => ready, certificateNotAfter: () => notAfter })
  t.same((await samples(metrics, 'speke_proxy_ready')).map(s => s.value), [1])
  ready = false
  t.same((await samples(metrics, 'speke_proxy_ready')).map(s => s.value), [0], 'the current verdict, not the one at startup')
  notAfter = 1_900_000_000
  t.same((await samples(metrics, 'speke_proxy_tls_certificate_expiry_timestamp_seconds')).map(s => s.value), [1_900_000_000])
  notAfter = 1_950_000_000
  t.same((await samples(metrics, 'speke_proxy_tls_certificate_expiry_timestamp_seconds')).map(s => s.value), [1_950_000_000], 'a reloaded certificate shows')

  const plain = createMetrics([])
  plain.watch({ ready: () => true })
  t.notOk((await plain.registry.getMetricsAsJSON()).some(m => m.name === 'speke_proxy_tls_certificate_expiry_timestamp_seconds'), 'no TLS: no expiry gauge')
})

t.test('every kind label the counter can show is a kind some code declares', async t => {
  const kinds = new Set(Object.values(ERROR_CODES).map(s => s.kind))
  t.same([...kinds].sort(), ['audit', 'connection', 'invalid_reply', 'kms_error', 'not_cpix', 'other', 'timeout'])
})

t.test('the metrics the README says to watch exist, with the type their names promise', async t => {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8')
  const watch = /\*\*Watch in `\/metrics`\*\*[^]*?(?=\n- \*\*|\n\n)/.exec(readme)?.[0] ?? ''
  const named = [...new Set([...watch.matchAll(/`(speke_proxy_[a-z_]+)`/g)].map(m => m[1]))]
  t.ok(named.length >= 4, `the README names metrics: ${named.join(', ')}`)
  const metrics = createMetrics([])
  metrics.watch({ ready: () => true, certificateNotAfter: () => 0 })
  const registered = new Map((await metrics.registry.getMetricsAsJSON()).map(m => [m.name, String(m.type)]))
  for (const name of named) {
    const type = name.endsWith('_timestamp_seconds') ? 'gauge' : name.endsWith('_seconds') ? 'histogram' : name.endsWith('_total') ? 'counter' : 'gauge'
    t.equal(registered.get(name), type, `${name} is a ${type}`)
  }
  t.equal(registered.get('speke_proxy_request_duration_seconds'), 'histogram', 'and the whole-request latency')
  t.ok(registered.has('speke_proxy_process_cpu_seconds_total'), 'process metrics under the same prefix')
})

t.test('the latency histograms observe what the record and the audit timing say', async t => {
  const metrics = createMetrics([])
  metrics.observe(record({ upstreamMs: 120 }), { total: 0.2, audit: 0.003 })
  metrics.observe(record({ outcome: 'rejected', status: 400, errorCode: 'MALFORMED_XML' }), { total: 0.001 })
  const count = async (name: string): Promise<number | undefined> =>
    (await samples(metrics, name)).find(s => s.metricName === `${name}_count`)?.value
  const sum = async (name: string): Promise<number | undefined> =>
    (await samples(metrics, name)).find(s => s.metricName === `${name}_sum`)?.value
  t.equal(await count('speke_proxy_request_duration_seconds'), 2, 'every key request')
  t.equal(await count('speke_proxy_kms_duration_seconds'), 1, 'only requests that reached the key provider')
  t.equal(await sum('speke_proxy_kms_duration_seconds'), 0.12, 'in seconds')
  t.equal(await count('speke_proxy_audit_write_duration_seconds'), 1, 'only requests that were audited')
})
