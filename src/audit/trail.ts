// Audit trail: a record per authenticated request, a per-minute summary of refusals without a credential, signed checkpoints; fails closed.

import { statfs } from 'node:fs/promises'
import { ProxyError } from '../errors.js'
import { openFileSink } from './file-sink.js'
import type { AuditSource } from './query.js'
import { buildRecordBody, buildSummaryBody, type AuditEvent, type AuditRecordBody, type RefusalSummary } from './record.js'
import { createRefusalCounter } from './refusals.js'
import { MIN_HMAC_KEY_BYTES } from './hmac-key.js'
import { abortReason, errorText, silentLog, type AuditLog, type AuditSink } from './sink.js'
import { ANCHOR_MESSAGE, type CheckpointLine, type CheckpointSettings, type Signer } from './checkpoint.js'

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
  /** Readiness fails while the file sink's volume has less free space than this (AUDIT_MIN_FREE_MB); 0 or unset: no check. */
  minFreeBytes?: number
  /** Window of the refusal summary, default one minute (tests). */
  summaryWindowMs?: number
  /** Signed checkpoints (AUDIT_SIGNING_KEY and friends); without them the chains are plain hash chains. */
  checkpoints?: { signer: Signer, everyRecords: number, intervalMs: number }
  /** Owner role URL for PostgreSQL migrations (AUDIT_DATABASE_MIGRATE_URL). */
  databaseMigrateUrl?: string
  /** Told of each write a sink failed to confirm (the metrics' speke_proxy_audit_write_failures_total). */
  onWriteFailure?: () => void
}

export interface AuditTrail {
  /**
   * Writes to every sink and waits for each to confirm, fail or pass writeTimeoutMs. Resolves when at least one confirmed
   * durably; rejects with ProxyError 503 AUDIT_UNAVAILABLE when none did and !failOpen.
   */
  record (event: AuditEvent): Promise<void>
  /** False after the last write failed on every sink, or while the audit volume is below its free-space floor. */
  healthy (): boolean
  /** Why the trail is not healthy, for /readyz (undefined when it is). */
  problem (): string | undefined
  /** Writes the refusal summary of the current window now (also done at each window end and at close). */
  flushSummary (): Promise<void>
  /** Signs every sink's head now when it has unsigned records (also done every interval and at close). */
  checkpoint (): Promise<void>
  /** Waits for writes in flight, writes the pending refusal summary, then closes files and the pool. */
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
const SPACE_INTERVAL_MS = 5000

/** Bytes free for an unprivileged writer on the volume holding `dir`. */
async function freeBytes (dir: string): Promise<number> {
  const stats = await statfs(dir)
  return Number(stats.bavail) * Number(stats.bsize)
}

const mb = (bytes: number): string => `${Math.floor(bytes / (1024 * 1024))} MB`

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
  // Each sink signs its own chain; every checkpoint is also one log line, an anchor held by whoever ships the log.
  const checkpoints: CheckpointSettings | undefined = settings.checkpoints === undefined
    ? undefined
    : {
        signer: settings.checkpoints.signer,
        everyRecords: settings.checkpoints.everyRecords,
        onCheckpoint: (line: CheckpointLine) => { log.info?.({ audit_checkpoint: line }, ANCHOR_MESSAGE) }
      }
  if (settings.dir !== undefined) {
    sinks.push(openFileSink({ dir: settings.dir, instanceId: settings.instanceId, rotateBytes: settings.rotateBytes, clock, checkpoints }))
    source = { kind: 'files', dir: settings.dir }
  }
  if (settings.databaseUrl !== undefined) {
    // Loaded only when used: pg is a good part of startup.
    const { openPgSink } = await import('./pg-sink.js')
    const pgSink = openPgSink({
      databaseUrl: settings.databaseUrl,
      schema: settings.databaseSchema,
      instanceId: settings.instanceId,
      timeoutMs,
      log,
      migrateUrl: settings.databaseMigrateUrl,
      checkpoints
    })
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
  // Free space on the file sink's volume, checked at startup and then at most every SPACE_INTERVAL_MS when readiness asks.
  const minFree = settings.minFreeBytes ?? 0
  let spaceProblem: string | undefined
  let spaceChecking = false
  let lastSpaceCheck = 0
  async function checkSpace (): Promise<void> {
    if (settings.dir === undefined || minFree <= 0) return
    const dir = settings.dir
    lastSpaceCheck = Date.now()
    try {
      const free = await freeBytes(dir)
      const problem = free < minFree
        ? `audit volume of ${dir} has ${mb(free)} free, below the floor of ${mb(minFree)} (AUDIT_MIN_FREE_MB): free space or move AUDIT_DIR`
        : undefined
      if (problem !== undefined && spaceProblem === undefined) log.error({ dir, freeBytes: free, minFreeBytes: minFree }, 'audit volume below its free-space floor: reporting not ready')
      spaceProblem = problem
    } catch (err) {
      // A directory that cannot be examined is the sinks' problem to report; keep the last verdict.
      log.warn({ dir, err: errorText(err) }, 'cannot read the free space of the audit volume')
    }
  }
  function refreshSpace (): void {
    if (spaceChecking || closed || Date.now() - lastSpaceCheck < SPACE_INTERVAL_MS) return
    spaceChecking = true
    void checkSpace().finally(() => { spaceChecking = false })
  }
  let closed = false
  await checkSpace()
  const inFlight = new Set<Promise<void>>()

  /** Every sink gets the record and its own deadline; resolves when at least one confirmed, else returns what failed. */
  async function writeBody (body: AuditRecordBody): Promise<string[] | undefined> {
    const results = await Promise.allSettled(sinks.map(async (sink) => await appendWithin(sink, body, timeoutMs)))
    const failures: string[] = []
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return
      failures.push(`${sinks[i].name}: ${errorText(r.reason)}`)
      settings.onWriteFailure?.()
      log.error({ sink: sinks[i].name, requestId: body.request_id, recordId: body.id, err: errorText(r.reason) }, 'audit sink failed to record')
    })
    lastOk = failures.length < sinks.length
    return lastOk ? undefined : failures
  }

  async function write (event: AuditEvent): Promise<void> {
    const body = buildRecordBody(event, settings.hmacKey, settings.instanceId, clock())
    const failures = await writeBody(body)
    if (failures === undefined) return
    if (settings.failOpen) {
      log.error({ requestId: body.request_id, recordId: body.id }, 'no audit sink recorded the request; serving it anyway (AUDIT_FAIL_OPEN=true)')
      return
    }
    throw new ProxyError('AUDIT_UNAVAILABLE', `audit trail unavailable: ${failures.join('; ')}`)
  }

  // Refusals without a valid credential cost an attacker nothing, so they are counted, not written one by one:
  // one summary record per window, written when the window ends (timer), when a later refusal arrives, and at close.
  const windowMs = settings.summaryWindowMs ?? 60_000
  const counter = createRefusalCounter(windowMs)
  let summaryTimer: NodeJS.Timeout | undefined

  async function writeSummary (summary: RefusalSummary | undefined): Promise<void> {
    if (summary === undefined) return
    const body = buildSummaryBody(summary, settings.instanceId, clock())
    const failures = await writeBody(body)
    // No key depends on this record: its loss is logged with the counts, and the refusals stay refusals.
    if (failures !== undefined) log.error({ refusals: summary.total, windowStart: summary.window_start, err: failures.join('; ') }, 'refusal summary not recorded by any audit sink')
  }

  function track (work: Promise<void>): void {
    const settled = work.then(() => {}, () => {})
    inFlight.add(settled)
    void settled.finally(() => inFlight.delete(settled))
  }

  function scheduleSummary (): void {
    if (summaryTimer !== undefined || closed) return
    const end = counter.windowEnd()
    if (end === undefined) return
    summaryTimer = setTimeout(() => {
      summaryTimer = undefined
      track(writeSummary(counter.take(clock())))
      scheduleSummary()
    }, Math.max(0, end.getTime() - clock().getTime()) + 50)
    summaryTimer.unref()
  }

  function countRefusal (event: AuditEvent): void {
    const previous = counter.add({ route: event.route, status: event.status, reason: event.errorCode ?? event.error ?? `status ${event.status}`, callerIp: event.callerIp }, clock())
    track(writeSummary(previous))
    if (previous !== undefined && summaryTimer !== undefined) { clearTimeout(summaryTimer); summaryTimer = undefined }
    scheduleSummary()
  }

  async function checkpointAll (): Promise<void> {
    await Promise.all(sinks.map(async (sink) => {
      if (sink.checkpoint === undefined) return
      try {
        await withinDeadline(sink.checkpoint(), timeoutMs)
      } catch (err) {
        log.error({ sink: sink.name, err: errorText(err) }, 'audit checkpoint not written')
      }
    }))
  }
  const checkpointTimer = settings.checkpoints === undefined
    ? undefined
    : setInterval(() => { if (!closed) track(checkpointAll()) }, settings.checkpoints.intervalMs)
  checkpointTimer?.unref()

  async function record (event: AuditEvent): Promise<void> {
    if (closed) throw new ProxyError('AUDIT_UNAVAILABLE', 'audit trail unavailable: closed')
    if (event.outcome === 'rejected' && !event.authenticated && event.returnedKeys.length === 0) {
      countRefusal(event)
      return
    }
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
      refreshSpace()
      return lastOk && spaceProblem === undefined
    },
    problem: () => {
      if (!lastOk) return 'no audit sink can write (see the log)'
      return spaceProblem
    },
    source,
    flushSummary: async () => { await writeSummary(counter.take(clock(), true)) },
    checkpoint: checkpointAll,
    close: async () => {
      closed = true
      clearTimeout(summaryTimer)
      clearInterval(checkpointTimer)
      await Promise.allSettled([...inFlight])
      await writeSummary(counter.take(clock(), true))
      await checkpointAll()
      const results = await Promise.allSettled(sinks.map(async (s) => await s.close()))
      for (const r of results) if (r.status === 'rejected') log.error({ err: errorText(r.reason) }, 'audit sink did not close cleanly')
    }
  }
}
