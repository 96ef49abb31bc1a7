// The Grafana dashboard and the Prometheus alert rules against the real /metrics: every metric either names exists in a
// scrape of the real proxy (TLS on, a failing audit sink, a fake KMS that answers 500) after a mixed run of key requests,
// with the labels the queries filter on; the dashboard imports (datasource, targets); the rules are the expected ones.
// The TLS expiry gauge follows the served certificate through a SIGHUP reload, and not a pair that failed to load.

import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { parse as parseYaml } from 'yaml'
import { ERROR_CODES } from '../../src/error-codes.js'
import { localProvider } from '../../src/kms/local/provider.js'
import { OUTCOMES } from '../../src/request-record.js'
import { startChildProxy } from '../helpers/child-proxy.js'
import { replyWith, startFakeKms } from '../helpers/fake-kms.js'
import { DEMO_TOKEN, PROJECT_ROOT, fixture } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

const DASHBOARD_FILE = join(PROJECT_ROOT, 'deploy', 'grafana', 'speke-proxy.json')
const ALERTS_FILE = join(PROJECT_ROOT, 'deploy', 'prometheus', 'alerts.yaml')
/** Series that Prometheus itself makes, not the proxy: the only names allowed to be absent from /metrics. */
const PROMETHEUS_OWN = new Set(['up'])
/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = new Set(['job', 'instance'])

const V1_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
const OTHER_TOKEN = Buffer.from(JSON.stringify({ site_id: 'OTHER', access_key: 'any' })).toString('base64')

// ---- PromQL: which metrics and labels an expression names --------------------------------------------------------

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan'])

interface Selector { metric: string, labels: Array<{ name: string, values: string[] | undefined }> }

/** Metric names of a PromQL expression: identifiers that are not functions (followed by `(`), keywords, label lists, numbers. */
function metricNames (expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\$\{?\w+\}?/g, ' ') // Grafana variables
  const names = new Set<string>()
  for (const m of stripped.matchAll(/(\d[\w.]*)|([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2] === undefined || m[3] !== undefined || KEYWORDS.has(m[2].toLowerCase())) continue
    names.add(m[2])
  }
  return [...names]
}

/** Each `metric{…}` of an expression and its matchers; `values`: the literal alternatives of = and =~ (none for a pattern). */
function selectors (expr: string): Selector[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}/g)].map(m => ({
    metric: m[1],
    labels: [...m[2].matchAll(/(\w+)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"/g)].map(l => ({
      name: l[1],
      values: (l[2] === '=' || l[2] === '=~') && /^[\w|]+$/.test(l[3]) ? l[3].split('|') : undefined
    }))
  }))
}

/** A Grafana variable query: `label_values(selector, label)` names its selector; anything else is PromQL. */
function variableExpr (query: string): string {
  const m = /^\s*label_values\(\s*(.*),\s*\w+\s*\)\s*$/.exec(query)
  if (m !== null) return m[1]
  return /^\s*label_values\(\s*\w+\s*\)\s*$/.test(query) ? '' : query
}

// ---- the Prometheus text of a scrape -------------------------------------------------------------------------

/** The scrape's text, each family's TYPE, and the label names each sample name carries. */
interface Scrape { text: string, types: Map<string, string>, labels: Map<string, Set<string>> }

function parseScrape (text: string): Scrape {
  const types = new Map<string, string>()
  const labels = new Map<string, Set<string>>()
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line)
    if (type !== null) types.set(type[1], type[2])
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+/.exec(line)
    if (sample === null) continue
    const names = labels.get(sample[1]) ?? new Set<string>()
    for (const l of (sample[2] ?? '').matchAll(/(\w+)="(?:[^"\\]|\\.)*"/g)) names.add(l[1])
    labels.set(sample[1], names)
  }
  return { text, types, labels }
}

/** What is wrong with one expression against a scrape: names absent, histogram suffixes on non-histograms, labels the series lack. */
function problemsOf (expr: string, scrape: Scrape): string[] {
  const problems: string[] = []
  for (const name of metricNames(expr)) {
    if (PROMETHEUS_OWN.has(name)) continue
    if (!name.startsWith('speke_proxy_')) problems.push(`${name} is not a speke-proxy metric`)
    if (!scrape.labels.has(name)) { problems.push(`${name} is not in /metrics`); continue }
    const family = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1]
    if (name.endsWith('_bucket') && scrape.types.get(family ?? '') !== 'histogram') problems.push(`${name} is not the bucket of a histogram`)
  }
  for (const { metric, labels } of selectors(expr)) {
    if (PROMETHEUS_OWN.has(metric) || !scrape.labels.has(metric)) continue
    for (const label of labels) {
      if (TARGET_LABELS.has(label.name)) continue
      if (!(scrape.labels.get(metric)?.has(label.name) ?? false)) problems.push(`${metric} has no label ${label.name}`)
    }
  }
  return problems
}

/** Label values the queries filter on that the proxy can never produce (an error code or kind renamed, a typo). */
function impossibleValues (expr: string): string[] {
  const allowed: Record<string, Set<string>> = {
    code: new Set(Object.keys(ERROR_CODES)),
    kind: new Set(Object.values(ERROR_CODES).map(s => s.kind)),
    outcome: new Set(OUTCOMES)
  }
  const problems: string[] = []
  for (const { labels } of selectors(expr)) {
    for (const label of labels) {
      const known = allowed[label.name]
      for (const value of label.values ?? []) if (known !== undefined && !known.has(value)) problems.push(`${label.name}="${value}"`)
    }
  }
  return problems
}

// ---- the files ------------------------------------------------------------------------------------------------

interface Target { expr?: string, datasource?: unknown }
interface Panel { type: string, title: string, datasource?: { type?: string, uid?: string }, targets?: Target[], panels?: Panel[] }
interface Variable { name: string, type: string, query?: string | { query?: string } }
interface Dashboard { title: string, uid: string, schemaVersion: number, panels: Panel[], templating: { list: Variable[] } }
interface Rule {
  alert?: string, record?: string, expr: string, for?: string, labels?: Record<string, string>, annotations?: Record<string, string>
}

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard
const rules = (parseYaml(readFileSync(ALERTS_FILE, 'utf8')) as { groups: Array<{ name: string, rules: Rule[] }> }).groups.flatMap(g => g.rules)
const panels = dashboard.panels.flatMap(p => [p, ...(p.panels ?? [])]).filter(p => p.type !== 'row')

/** Every PromQL expression of both files, named for messages. */
const expressions: Array<{ where: string, expr: string }> = [
  ...panels.flatMap(p => (p.targets ?? []).map((target, i) => ({ where: `panel "${p.title}" target ${i}`, expr: target.expr ?? '' }))),
  ...dashboard.templating.list.filter(v => v.type === 'query').map(v => ({
    where: `variable $${v.name}`,
    expr: variableExpr(typeof v.query === 'string' ? v.query : v.query?.query ?? '')
  })),
  ...rules.map(r => ({ where: `alert ${r.alert ?? r.record ?? '?'}`, expr: r.expr }))
]

t.test('the dashboard imports: recent schema, a datasource variable, tenant and route variables, a datasource and a query in every panel', async t => {
  t.ok(dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion}`)
  t.equal(dashboard.uid, 'speke-proxy')
  const variables = new Map(dashboard.templating.list.map(v => [v.name, v]))
  t.equal(variables.get('datasource')?.type, 'datasource', 'the Prometheus data source is chosen at import')
  for (const name of ['job', 'instance', 'route', 'tenant']) t.equal(variables.get(name)?.type, 'query', `$${name} is a query variable`)
  t.ok(panels.length >= 15, `${panels.length} panels`)
  for (const panel of panels) {
    t.same(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, `"${panel.title}" uses the chosen data source`)
    t.ok((panel.targets ?? []).length >= 1, `"${panel.title}" has a query`)
    for (const target of panel.targets ?? []) t.ok((target.expr ?? '').trim() !== '', `"${panel.title}": no empty query`)
  }
  const titles = panels.map(p => p.title.toLowerCase()).join('\n')
  for (const topic of ['by route', 'by outcome', 'by tenant', 'kms latency', 'whole key request', 'upstream errors by kind', 'audit write latency',
    'audit write failures', 'rate-limit', 'load shedding', 'ready', 'tls certificate']) {
    t.match(titles, topic, `a panel for ${topic}`)
  }
})

t.test('the alert file holds the expected alerts, each with for, severity, summary and description', async t => {
  const names = [...new Set(rules.map(r => r.alert))].sort()
  t.same(names, [
    'SpekeProxy5xxSpike', 'SpekeProxyAuditUnavailable', 'SpekeProxyAuditWriteFailures', 'SpekeProxyAuditWriteSlow', 'SpekeProxyKmsErrorRatioHigh',
    'SpekeProxyKmsLatencyHigh', 'SpekeProxyLoadShedding', 'SpekeProxyNotReady', 'SpekeProxyRateLimited', 'SpekeProxyRequestP99OverDeadline',
    'SpekeProxyRestarting', 'SpekeProxyTargetDown', 'SpekeProxyTargetsMissing', 'SpekeProxyTlsCertificateExpiring'
  ])
  for (const rule of rules) {
    t.match(rule.for, /^\d+[smh]$/, `${rule.alert ?? '?'} waits (for:)`)
    t.match(rule.labels?.severity, /^(warning|critical)$/, `${rule.alert ?? '?'} has a severity`)
    t.ok((rule.annotations?.summary ?? '') !== '' && (rule.annotations?.description ?? '') !== '', `${rule.alert ?? '?'} explains itself`)
  }
  const tls = rules.filter(r => r.alert === 'SpekeProxyTlsCertificateExpiring').map(r => r.labels?.severity).sort()
  t.same(tls, ['critical', 'warning'], 'certificate expiry warns at 14 days and pages at 3')
  const deadline = rules.find(r => r.alert === 'SpekeProxyRequestP99OverDeadline')
  t.match(deadline?.annotations?.mirrors, /KMS_TIMEOUT_MS \(default 10000 ms\): 10 s/, 'the deadline alert says which setting its threshold mirrors')
  t.match(deadline?.expr, /> 10\s*$/, 'and its threshold is that default, in seconds')
  const config = readFileSync(join(PROJECT_ROOT, 'src', 'config.ts'), 'utf8')
  t.match(config, /integer\(env, 'KMS_TIMEOUT_MS', 10000,/, 'the default the alert mirrors is still the default')
  const runbook = readFileSync(join(PROJECT_ROOT, 'deploy', 'README.md'), 'utf8')
  for (const name of names) t.match(runbook, new RegExp(`^\\| \`${name ?? ''}\` \\|`, 'm'), `deploy/README.md has a runbook row for ${name ?? '?'}`)
})

t.test('the name check finds names, and fails on a renamed metric, a label the series lack and an unknown code', async t => {
  t.same(metricNames('histogram_quantile(0.99, sum by (le, route) (rate(speke_proxy_kms_duration_seconds_bucket{job=~"$job", route=~"a|b"}[$__rate_interval])))'),
    ['speke_proxy_kms_duration_seconds_bucket'])
  t.same(metricNames('speke_proxy_x - time() < 14 * 86400 and on (instance) up{job="a"} == 0 offset 5m'), ['speke_proxy_x', 'up'])
  t.same(variableExpr('label_values(speke_proxy_key_requests_total{job=~"$job"}, tenant)'), 'speke_proxy_key_requests_total{job=~"$job"}')
  const scrape = parseScrape([
    '# TYPE speke_proxy_kms_duration_seconds histogram',
    'speke_proxy_kms_duration_seconds_bucket{le="1",route="speke"} 1',
    '# TYPE speke_proxy_key_request_errors_total counter',
    'speke_proxy_key_request_errors_total{code="OVERLOADED"} 0'
  ].join('\n'))
  t.same(problemsOf('rate(speke_proxy_kms_duration_seconds_bucket{route="speke", instance="x"}[5m])', scrape), [])
  t.same(problemsOf('rate(speke_proxy_kms_duration_secs_bucket[5m])', scrape), ['speke_proxy_kms_duration_secs_bucket is not in /metrics'])
  t.same(problemsOf('rate(speke_proxy_kms_duration_seconds_bucket{tenant="a"}[5m])', scrape), ['speke_proxy_kms_duration_seconds_bucket has no label tenant'])
  t.same(problemsOf('node_load1', scrape), ['node_load1 is not a speke-proxy metric', 'node_load1 is not in /metrics'])
  t.same(impossibleValues('speke_proxy_key_request_errors_total{code=~"RATE_LIMITED|RATE_LIMIT_IP"}'), ['code="RATE_LIMIT_IP"'])
})

// ---- the real proxy -------------------------------------------------------------------------------------------

function makeCertificate (dir: string, name: string, days: number): { cert: string, key: string, notAfter: number } {
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', String(days), '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  // openssl's own reading of the certificate, not the one under test.
  const enddate = execFileSync('openssl', ['x509', '-enddate', '-noout', '-in', cert]).toString().trim().replace(/^notAfter=/, '')
  return { cert, key, notAfter: Date.parse(enddate) / 1000 }
}

/** The value of an unlabelled series, or the sum over the series whose labels include `match`. */
function valueOf (scrape: Scrape, name: string, match: Record<string, string> = {}): number | undefined {
  let total: number | undefined
  for (const line of scrape.text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(l => [l[1], l[2]]))
    if (Object.entries(match).every(([k, v]) => labels[k] === v)) total = (total ?? 0) + Number(m[3])
  }
  return total
}

t.test('after a mixed run, every metric the dashboard and the alerts name is in /metrics, with the labels they filter on', async t => {
  const dir = t.testdir()
  const tls = makeCertificate(dir, 'proxy', 20)
  // The fake KMS answers what a key provider would (the embedded one's answer to this request), then 500, then again.
  const answer = (await localProvider({ secret: Buffer.alloc(32, 1), playReadyLaUrl: 'https://license.example.com/pr', hlsKeyUrlBase: 'https://keys.example.com', widevineProvider: 'test' })
    .getKeys({ route: 'speke', dialect: 'speke-v1', token: DEMO_TOKEN, body: V1_REQUEST }, AbortSignal.timeout(5000))).body
  const kms = await startFakeKms(replyWith(200, 'application/xml', answer))
  const proxy = await startProxy({
    DATA_DIR: dir,
    KMS_URL: kms.url,
    KMS_TIMEOUT_MS: '3000',
    TLS_CERT_FILE: tls.cert,
    TLS_KEY_FILE: tls.key,
    AUDIT_DIR: join(dir, 'audit'),
    // A second audit sink that always fails: the files carry every record, and each failure counts.
    AUDIT_DATABASE_URL: 'postgres://speke@127.0.0.1:1/none',
    AUDIT_MIN_FREE_MB: '0',
    RATE_LIMIT_PER_MINUTE: '6',
    RATE_LIMIT_PER_IP_PER_MINUTE: '9'
  })
  const agent = new Agent({ connect: { ca: readFileSync(tls.cert) } })
  t.teardown(async () => { await proxy.close(); await kms.close(); await agent.close() })
  t.match(proxy.url, /^https:/)

  const keyRequest = async (token: string | undefined): Promise<number> => {
    const query = token === undefined ? '' : `?enc-token=${token}`
    const res = await request(`${proxy.url}/cpix/getKey${query}`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: V1_REQUEST, dispatcher: agent })
    await res.body.text()
    return res.statusCode
  }
  const scrape = async (): Promise<Scrape> => {
    const res = await request(`${proxy.url}/metrics`, { dispatcher: agent })
    t.equal(res.statusCode, 200)
    return parseScrape(await res.body.text())
  }

  t.equal(valueOf(await scrape(), 'speke_proxy_ready'), 1, 'ready at start')
  t.equal(await keyRequest(DEMO_TOKEN), 200)
  t.equal(await keyRequest(DEMO_TOKEN), 200)
  t.equal(await keyRequest(undefined), 401, 'refused: no credential')
  kms.handle(replyWith(500, 'text/plain', 'internal error'))
  for (let i = 0; i < 3; i++) t.equal(await keyRequest(DEMO_TOKEN), 502, 'the KMS answers 500')
  t.equal(valueOf(await scrape(), 'speke_proxy_ready'), 0, 'three upstream failures in a row: not ready, as /readyz says')
  const readyz = await request(`${proxy.url}/readyz`, { dispatcher: agent })
  t.equal(readyz.statusCode, 503)
  await readyz.body.text()
  kms.handle(replyWith(200, 'application/xml', answer))
  t.equal(await keyRequest(DEMO_TOKEN), 200, 'the sixth request of the token')
  t.equal(valueOf(await scrape(), 'speke_proxy_ready'), 1, 'one good answer: ready again')
  t.equal(await keyRequest(DEMO_TOKEN), 429, 'the seventh: over RATE_LIMIT_PER_MINUTE for this token')
  t.equal(await keyRequest(OTHER_TOKEN), 200, 'the ninth request from this address')
  t.equal(await keyRequest(OTHER_TOKEN), 429, 'the tenth: over RATE_LIMIT_PER_IP_PER_MINUTE')

  const metrics = await scrape()
  t.equal(valueOf(metrics, 'speke_proxy_key_requests_total', { outcome: 'ok' }), 4)
  t.equal(valueOf(metrics, 'speke_proxy_key_requests_total', { status: '429' }), 2)
  t.equal(valueOf(metrics, 'speke_proxy_key_request_errors_total', { code: 'RATE_LIMITED' }), 1, 'the per-tenant limit, by its code')
  t.equal(valueOf(metrics, 'speke_proxy_key_request_errors_total', { code: 'RATE_LIMITED_ADDRESS' }), 1, 'the per-address limit, by its code')
  t.equal(valueOf(metrics, 'speke_proxy_key_request_errors_total', { code: 'KMS_ERROR' }), 3)
  t.equal(valueOf(metrics, 'speke_proxy_key_request_errors_total', { code: 'OVERLOADED' }), 0, 'a code that did not happen is a series at 0')
  t.equal(valueOf(metrics, 'speke_proxy_upstream_errors_total', { kind: 'kms_error' }), 3)
  const auditFailures = valueOf(metrics, 'speke_proxy_audit_write_failures_total') ?? 0
  t.ok(auditFailures >= 8, `the failing sink counted a failure for each of the 8 authenticated records (${auditFailures})`)
  t.ok((valueOf(metrics, 'speke_proxy_audit_write_duration_seconds_count') ?? 0) >= 8, 'while the files recorded them')
  t.equal(valueOf(metrics, 'speke_proxy_tls_certificate_expiry_timestamp_seconds'), tls.notAfter, 'the served certificate\'s notAfter, as openssl reads it')
  t.notMatch(metrics.text, new RegExp(DEMO_TOKEN.slice(0, 24)), 'no token in the metrics')

  t.ok(expressions.length >= 30, `${expressions.length} expressions`)
  const named = new Set(expressions.flatMap(e => metricNames(e.expr)))
  for (const name of ['speke_proxy_kms_duration_seconds_bucket', 'speke_proxy_ready', 'speke_proxy_tls_certificate_expiry_timestamp_seconds',
    'speke_proxy_audit_write_failures_total', 'speke_proxy_key_request_errors_total', 'up']) {
    t.ok(named.has(name), `the files use ${name}`)
  }
  for (const { where, expr } of expressions) {
    t.same(problemsOf(expr, metrics), [], `${where}: every metric and label exists`)
    t.same(impossibleValues(expr), [], `${where}: every code, kind and outcome it filters on exists`)
  }
})

t.test('without TLS there is no certificate gauge; readiness is there all the same', async t => {
  const proxy = await startProxy({ AUDIT: 'off' })
  t.teardown(async () => { await proxy.close() })
  const res = await request(`${proxy.url}/metrics`)
  const scrape = parseScrape(await res.body.text())
  t.equal(valueOf(scrape, 'speke_proxy_ready'), 1)
  t.notOk(scrape.types.has('speke_proxy_tls_certificate_expiry_timestamp_seconds'), 'absent, so no expiry alert can fire for a proxy behind a TLS terminator')
})

t.test('the expiry gauge follows the certificate served after a SIGHUP reload, not a pair that failed to load', async t => {
  const dir = t.testdir()
  const first = makeCertificate(dir, 'first', 30)
  const second = makeCertificate(dir, 'second', 5)
  const third = makeCertificate(dir, 'third', 90)
  const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') }
  const install = (cert: string, key: string): void => {
    writeFileSync(live.cert, readFileSync(cert))
    writeFileSync(live.key, readFileSync(key))
  }
  install(first.cert, first.key)
  const proxy = await startChildProxy({ DATA_DIR: dir, AUDIT: 'off', TLS_CERT_FILE: live.cert, TLS_KEY_FILE: live.key })
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const expiry = async (): Promise<number | undefined> => {
    const res = await request(`${proxy.url}/metrics`, { dispatcher: new Agent({ connect: { rejectUnauthorized: false } }) })
    return valueOf(parseScrape(await res.body.text()), 'speke_proxy_tls_certificate_expiry_timestamp_seconds')
  }
  const reload = async (pattern: RegExp): Promise<void> => {
    const before = (proxy.output().match(new RegExp(pattern, 'g')) ?? []).length
    proxy.child.kill('SIGHUP')
    for (let i = 0; i < 50 && (proxy.output().match(new RegExp(pattern, 'g')) ?? []).length === before; i++) await delay(100)
    t.match(proxy.output(), pattern)
  }
  t.equal(await expiry(), first.notAfter)
  install(second.cert, second.key)
  await reload(/TLS certificate reloaded/)
  t.equal(await expiry(), second.notAfter, 'the reloaded certificate, 5 days')
  install(third.cert, second.key)
  await reload(/TLS certificate reload failed/)
  t.equal(await expiry(), second.notAfter, 'a certificate whose key does not match is not served, so not reported either')
})
