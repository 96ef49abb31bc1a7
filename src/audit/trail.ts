// Audit trail: builds one record per request, hands it to every sink, and fails closed (503) when none confirms in time.

import { ProxyError } from '../errors.js'
import { openFileSink } from './file-sink.js'
import { openPgSink } from './pg-sink.js'
import type { AuditSource } from './query.js'
import { buildRecordBody, type AuditEvent } from './record.js'
import { MIN_HMAC_KEY_BYTES } from './hmac-key.js'
import { abortReason, errorText, silentLog, type AuditLog, type AuditSink } from './sink.js'

export interface AuditSettings {
  /** File sink when set. */
  dir?: string
  /** PostgreSQL sink when set. */
  databaseUrl?: string
  /** Default 'public'. */
  databaseSchema?: string
  /** >= 32 bytes. */
  hmacKey: Buffer
  instanceId: string
  failOpen: boolean
  /** A sink that does not confirm within this is a failure. */
  writeTimeoutMs: number
  /** File rotation size, default 64 MiB; files also rotate at the UTC day change. */
  rotateBytes?: number
  /** Time source for record times and day rotation (tests). */
  clock?: () => Date
}

export interface AuditTrail {
  /**
   * Writes to every sink and waits for each to confirm, fail or pass writeTimeoutMs. Resolves when at least one confirmed
   * durably; rejects with ProxyError 503 AUDIT_UNAVAILABLE when none did and !failOpen.
   */
  record (event: AuditEvent): Promise<void>
  /** False after the last write failed on every sink. */
  healthy (): boolean
  /** Waits for writes in flight, then closes files and the pool. */
  close (): Promise<void>
  /** Where GET /admin/audit reads from: PostgreSQL when configured, else the files. */
  readonly source: AuditSource
}

/** Runs one append with a deadline; on the deadline the sink is told (abort) so it can drop or roll back the record. */
async function appendWithin (sink: AuditSink, body: Parameters<AuditSink['append']>[0], timeoutMs: number): Promise<void> {
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      controller.abort(new Error(`did not confirm within ${timeoutMs} ms`))
      reject(abortReason(controller.signal))
    }, timeoutMs)
  })
  try {
    await Promise.race([sink.append(body, controller.signal), deadline])
  } finally {
    clearTimeout(timer)
  }
}

const PROBE_INTERVAL_MS = 2000

async function withinDeadline (work: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs) })
  try {
    await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
  }
}

async function initWithin (sink: AuditSink, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`not ready within ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    await Promise.race([sink.init(), deadline])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Opens the configured sinks, creating directories and tables and resuming each chain from this instance's last record.
 * A sink that cannot start is logged and retried on each write, so requests fail closed rather than the process.
 */
export async function openAuditTrail (settings: AuditSettings, log: AuditLog = silentLog): Promise<AuditTrail> {
  if (settings.hmacKey.length < MIN_HMAC_KEY_BYTES) throw new Error(`the audit HMAC key must be at least ${MIN_HMAC_KEY_BYTES} bytes (AUDIT_HMAC_KEY)`)
  if (settings.instanceId === '') throw new Error('the audit trail needs an instance id')
  if (!(settings.writeTimeoutMs > 0)) throw new Error('the audit write timeout must be positive')
  const timeoutMs = settings.writeTimeoutMs
  const clock = settings.clock ?? (() => new Date())
  const sinks: AuditSink[] = []
  let source: AuditSource | undefined
  if (settings.dir !== undefined) {
    sinks.push(openFileSink({ dir: settings.dir, instanceId: settings.instanceId, rotateBytes: settings.rotateBytes, clock }))
    source = { kind: 'files', dir: settings.dir }
  }
  if (settings.databaseUrl !== undefined) {
    const pgSink = openPgSink({ databaseUrl: settings.databaseUrl, schema: settings.databaseSchema, instanceId: settings.instanceId, timeoutMs, log })
    sinks.push(pgSink)
    source = { kind: 'postgres', pool: pgSink.pool, schema: pgSink.schema }
  }
  if (source === undefined) throw new Error('the audit trail needs a directory (AUDIT_DIR) or a database (AUDIT_DATABASE_URL)')
  if (settings.failOpen) log.warn({ audit: 'fail-open' }, 'AUDIT_FAIL_OPEN=true: keys are served even when no audit sink can record the request')

  const started = await Promise.all(sinks.map(async (sink) => {
    try {
      await initWithin(sink, timeoutMs)
      await withinDeadline(sink.probe(), timeoutMs)
      return true
    } catch (err) {
      log.error({ sink: sink.name, err: errorText(err) }, 'audit sink not ready at startup; retrying on each request')
      return false
    }
  }))

  // Healthy while at least one sink works: from startup, then by each write, and after a failure by a probe
  // (at most every PROBE_INTERVAL_MS) so an instance held out of rotation by /readyz can come back by itself.
  let lastOk = started.some(Boolean)
  let probing = false
  let lastProbe = 0
  function probe (): void {
    if (probing || closed || Date.now() - lastProbe < PROBE_INTERVAL_MS) return
    probing = true
    lastProbe = Date.now()
    void Promise.allSettled(sinks.map(async (sink) => await withinDeadline(sink.probe(), timeoutMs)))
      .then((results) => { if (results.some(r => r.status === 'fulfilled')) lastOk = true })
      .finally(() => { probing = false })
  }
  let closed = false
  const inFlight = new Set<Promise<void>>()

  /** Every sink gets the record and its own deadline; the request proceeds when at least one confirmed. */
  async function write (event: AuditEvent): Promise<void> {
    const body = buildRecordBody(event, settings.hmacKey, settings.instanceId, clock())
    const results = await Promise.allSettled(sinks.map(async (sink) => await appendWithin(sink, body, timeoutMs)))
    const failures: string[] = []
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return
      failures.push(`${sinks[i].name}: ${errorText(r.reason)}`)
      log.error({ sink: sinks[i].name, requestId: body.request_id, recordId: body.id, err: errorText(r.reason) }, 'audit sink failed to record')
    })
    lastOk = failures.length < sinks.length
    if (lastOk) return
    if (settings.failOpen) {
      log.error({ requestId: body.request_id, recordId: body.id }, 'no audit sink recorded the request; serving it anyway (AUDIT_FAIL_OPEN=true)')
      return
    }
    throw new ProxyError(503, 'AUDIT_UNAVAILABLE', `audit trail unavailable: ${failures.join('; ')}`)
  }

  async function record (event: AuditEvent): Promise<void> {
    if (closed) throw new ProxyError(503, 'AUDIT_UNAVAILABLE', 'audit trail unavailable: closed')
    const pending = write(event)
    const settled = pending.then(() => {}, () => {})
    inFlight.add(settled)
    try {
      await pending
    } finally {
      inFlight.delete(settled)
    }
  }

  return {
    record,
    healthy: () => {
      if (!lastOk) probe()
      return lastOk
    },
    source,
    close: async () => {
      closed = true
      await Promise.allSettled([...inFlight])
      const results = await Promise.allSettled(sinks.map(async (s) => await s.close()))
      for (const r of results) if (r.status === 'rejected') log.error({ err: errorText(r.reason) }, 'audit sink did not close cleanly')
    }
  }
}
