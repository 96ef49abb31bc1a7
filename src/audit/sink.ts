// What every audit sink offers the trail, plus the small helpers sinks share (lazy readiness, error text, log shape).

import type { AuditRecord, AuditRecordBody } from './record.js'

export interface AuditSink {
  readonly name: string
  /** Prepares the sink (directories or tables) and finds the head of this instance's chain; safe to call again after a failure. */
  init (): Promise<void>
  /** Chains and stores one record; resolves once it is durable. An abort before the record is committed leaves it unwritten. */
  append (body: AuditRecordBody, signal: AbortSignal): Promise<AuditRecord>
  /** Checks, without writing a record, that the sink could write now (readiness after a failure). */
  probe (): Promise<void>
  /** Signs the chain's head now if any record is unsigned (interval and shutdown checkpoints). */
  checkpoint? (): Promise<void>
  close (): Promise<void>
}

export interface AuditLog {
  /** Anchor lines (signed checkpoints) go here; a logger without it ships no anchors. */
  info? (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

export const silentLog: AuditLog = { warn () {}, error () {} }

export function errorText (err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code
    return code !== undefined && !err.message.includes(code) ? `${code}: ${err.message}` : err.message
  }
  return String(err)
}

/** Runs `init` at most once at a time; after a failure the next call tries again. */
export function lazyInit (init: () => Promise<void>): { ready: () => Promise<void>, reset: () => void, isReady: () => boolean } {
  let done = false
  let running: Promise<void> | undefined
  return {
    ready: async () => {
      if (done) return
      running ??= init().then(() => { done = true }).finally(() => { running = undefined })
      await running
    },
    reset: () => { done = false },
    isReady: () => done
  }
}

export function abortReason (signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('audit write abandoned')
}
