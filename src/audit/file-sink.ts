// File sink: JSON lines under AUDIT_DIR, one write+fsync per batch (group commit), rotated by size or UTC day, with signed checkpoints.

import { constants, createReadStream } from 'node:fs'
import { access, mkdir, open, readdir, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { chainRecord, GENESIS, headOf, type ChainHead } from './chain.js'
import { checkpointBody, entryProblem, lineOf, newEntry, type CheckpointLine, type CheckpointSettings } from './checkpoint.js'
import { canonicalJson, sha256Hex, type AuditRecord, type AuditRecordBody } from './record.js'
import { abortReason, lazyInit, type AuditSink } from './sink.js'

const DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024

const SEGMENT_PATTERN = /^audit-(.+)-(\d{8})-(\d{6})\.jsonl$/

export interface Segment { name: string, tag: string, day: string, n: number }

/** The file-name form of an instance id: itself when file-safe, else a hash of it. */
function instanceTag (instanceId: string): string {
  return /^[A-Za-z0-9._-]{1,64}$/.test(instanceId) ? instanceId : `h${sha256Hex(instanceId).slice(0, 16)}`
}

function segmentName (tag: string, day: string, n: number): string {
  return `audit-${tag}-${day}-${String(n).padStart(6, '0')}.jsonl`
}

/** The side log of one chain's signed entries (checkpoints, restarts, prunes), beside its segments. */
export function sideLogName (tag: string): string {
  return `audit-${tag}.checkpoints`
}

export const SIDE_LOG_PATTERN = /^audit-(.+)\.checkpoints$/

/** Every line of a file with its number; `torn` is set for bytes after the last newline. */
export async function * readLines (path: string): AsyncGenerator<{ line: string, lineNo: number, torn?: boolean }> {
  let lineNo = 0
  let rest = Buffer.alloc(0)
  for await (const chunk of createReadStream(path)) {
    let data = Buffer.concat([rest, chunk as Buffer])
    let nl: number
    while ((nl = data.indexOf(0x0a)) >= 0) {
      lineNo++
      yield { line: data.subarray(0, nl).toString('utf8'), lineNo }
      data = data.subarray(nl + 1)
    }
    rest = data
  }
  if (rest.length > 0) yield { line: rest.toString('utf8'), lineNo: lineNo + 1, torn: true }
}

/** The parseable lines of a side log (a torn or garbled line is verify's business). Missing file: none. */
export async function readSideLog (path: string): Promise<Array<CheckpointLine & { lineNo: number }>> {
  const out: Array<CheckpointLine & { lineNo: number }> = []
  try {
    for await (const { line, lineNo, torn } of readLines(path)) {
      if (torn === true) continue
      let value: unknown
      try { value = JSON.parse(line) } catch { continue }
      const v = value as Partial<CheckpointLine>
      if (typeof v === 'object' && v !== null && entryProblem(v.checkpoint, undefined) === undefined) out.push({ ...(v as CheckpointLine), lineNo })
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out
    throw err
  }
  return out
}

/** Appends lines to a side log and makes them durable. */
export async function appendSideLog (path: string, lines: CheckpointLine[]): Promise<void> {
  if (lines.length === 0) return
  const fh = await open(path, 'a', 0o640)
  try {
    await writeAll(fh, Buffer.from(lines.map((l) => `${canonicalJson(l)}\n`).join(''), 'utf8'))
    await fh.sync()
  } finally {
    await fh.close()
  }
}

function utcDay (date: Date): string {
  return date.toISOString().slice(0, 10).replace(/-/g, '')
}

/** Audit segments in a directory, in write order: by instance tag, then day, then sequence number. */
export async function listSegments (dir: string): Promise<Segment[]> {
  const segments: Segment[] = []
  for (const name of await readdir(dir)) {
    const m = SEGMENT_PATTERN.exec(name)
    if (m !== null) segments.push({ name, tag: m[1], day: m[2], n: Number(m[3]) })
  }
  return segments.sort((a, b) => a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : a.day < b.day ? -1 : a.day > b.day ? 1 : a.n - b.n)
}

interface Tail { size: number, complete: number, lastLine?: string }

/** The last complete line of a file and where the complete lines end (bytes after that are a torn write). */
export async function readTail (path: string): Promise<Tail> {
  const fh = await open(path, 'r')
  try {
    const { size } = await fh.stat()
    let pos = size
    let tail = Buffer.alloc(0)
    while (pos > 0) {
      const len = Math.min(64 * 1024, pos)
      pos -= len
      const chunk = Buffer.alloc(len)
      await fh.read(chunk, 0, len, pos)
      tail = Buffer.concat([chunk, tail])
      const last = tail.lastIndexOf(0x0a)
      if (last < 0) continue
      const prev = last === 0 ? -1 : tail.lastIndexOf(0x0a, last - 1)
      if (prev >= 0 || pos === 0) return { size, complete: pos + last + 1, lastLine: tail.subarray(prev + 1, last).toString('utf8') }
    }
    return { size, complete: 0 }
  } finally {
    await fh.close()
  }
}

function headFromLine (line: string, where: string): ChainHead {
  let value: unknown
  try { value = JSON.parse(line) } catch { value = undefined }
  if (typeof value === 'object' && value !== null) {
    const { seq, hash } = value as { seq?: unknown, hash?: unknown }
    if (typeof seq === 'number' && Number.isSafeInteger(seq) && typeof hash === 'string' && /^[0-9a-f]{64}$/.test(hash)) return { seq, hash }
  }
  throw new Error(`cannot resume the audit chain: the last record of ${where} is unreadable (run "speke-proxy audit verify")`)
}

async function syncDir (dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

async function writeAll (fh: FileHandle, bytes: Buffer): Promise<void> {
  let off = 0
  while (off < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, off, bytes.length - off)
    if (bytesWritten <= 0) throw new Error('audit file write made no progress')
    off += bytesWritten
  }
}

export interface FileSinkOptions {
  dir: string
  instanceId: string
  rotateBytes?: number
  clock?: () => Date
  /** Signed checkpoints (absent: a plain hash chain, as library callers and old tests use it). */
  checkpoints?: CheckpointSettings
}

/** What resuming found about the chain's last checkpoint. */
interface Resume { lastCheckpoint?: string, since: number, repair: CheckpointLine[], lost?: { seq: number, hash: string } }

/**
 * Meets the chain's last checkpoint: the record the side log names must be in its segment with its hash, and every
 * record after it must link up to the last one. Returns what to resume with, or `lost` when the chain does not reach it.
 */
async function meetCheckpoint (dir: string, segments: Segment[], side: CheckpointLine[], head: ChainHead): Promise<Resume> {
  const signed = side.filter((l) => l.checkpoint.kind !== 'pruned' && l.record_seq !== undefined && l.record_hash !== undefined)
  const last = signed[signed.length - 1]
  if (last === undefined) return { since: head.seq, repair: [] }
  const target = { seq: last.record_seq as number, hash: last.record_hash as string }
  const pruned = side.filter((l) => l.checkpoint.kind === 'pruned').reduce((max, l) => Math.max(max, l.checkpoint.seq), 0)
  const start = segments.findIndex((s) => s.name === last.file)
  if (start < 0) {
    // Its file was pruned: the chain must still go on past the prune point.
    return pruned >= target.seq && head.seq > pruned
      ? { lastCheckpoint: target.hash, since: head.seq - target.seq, repair: [] }
      : { since: 0, repair: [], lost: target }
  }
  let at: ChainHead | undefined
  let lastCheckpoint = target.hash
  let since = 0
  const repair: CheckpointLine[] = []
  for (const seg of segments.slice(start)) {
    for await (const { line, torn } of readLines(join(dir, seg.name))) {
      if (torn === true) break
      let r: AuditRecord
      try { r = JSON.parse(line) as AuditRecord } catch { return { since: 0, repair: [], lost: target } }
      if (at === undefined) {
        if (r.seq < target.seq) continue
        if (r.seq !== target.seq || r.hash !== target.hash) return { since: 0, repair: [], lost: target }
        at = headOf(r)
        continue
      }
      if (r.seq !== at.seq + 1 || r.prev_hash !== at.hash) return { since: 0, repair: [], lost: target }
      at = headOf(r)
      if (r.checkpoint !== undefined) {
        lastCheckpoint = r.hash
        since = 0
        repair.push(lineOf(r, seg.name))
      } else {
        since++
      }
    }
  }
  if (at === undefined || at.seq !== head.seq || at.hash !== head.hash) return { since: 0, repair: [], lost: target }
  return { lastCheckpoint, since, repair }
}

interface Entry { body: AuditRecordBody, signal: AbortSignal, resolve: (r: AuditRecord) => void, reject: (e: Error) => void }
interface Current { name: string, day: string, n: number, size: number, fh?: FileHandle }

export function openFileSink (options: FileSinkOptions): AuditSink {
  const { dir, instanceId } = options
  const rotateBytes = options.rotateBytes ?? DEFAULT_ROTATE_BYTES
  const clock = options.clock ?? (() => new Date())
  const tag = instanceTag(instanceId)
  const cp = options.checkpoints
  const sidePath = join(dir, sideLogName(tag))
  let head: ChainHead = GENESIS
  let current: Current | undefined
  let queue: Entry[] = []
  let draining: Promise<void> | undefined
  let closed = false
  /** Hash of this chain's last checkpoint record, and how many records followed it. */
  let lastCheckpoint: string | undefined
  let since = 0
  let wantCheckpoint = false
  let checkpointWaiters: Array<(ok: boolean) => void> = []

  const state = lazyInit(async () => {
    await mkdir(dir, { recursive: true, mode: 0o750 })
    const mine = (await listSegments(dir)).filter((s) => s.tag === tag)
    current = undefined
    head = GENESIS
    for (let i = mine.length - 1; i >= 0; i--) {
      const seg = mine[i]
      const path = join(dir, seg.name)
      const tail = await readTail(path)
      if (tail.complete < tail.size) {
        // Bytes after the last newline were never fsynced and acknowledged: drop the torn write.
        const fh = await open(path, 'r+')
        try { await fh.truncate(tail.complete); await fh.sync() } finally { await fh.close() }
      }
      current ??= { name: seg.name, day: seg.day, n: seg.n, size: tail.complete }
      if (tail.lastLine !== undefined) {
        head = headFromLine(tail.lastLine, seg.name)
        break
      }
    }
    if (cp === undefined) return
    const side = await readSideLog(sidePath)
    const resume = await meetCheckpoint(dir, mine, side, head)
    if (resume.lost === undefined) {
      lastCheckpoint = resume.lastCheckpoint
      since = resume.since
      // Checkpoints that reached the chain but not the side log (a crash between the two fsyncs) are added now.
      const known = new Set(side.map((l) => l.record_hash))
      await appendSideLog(sidePath, resume.repair.filter((l) => !known.has(l.record_hash)))
      return
    }
    // The chain does not reach its own last checkpoint: say so in a signed record before writing anything else.
    const entry = newEntry(cp.signer, 'restart', 'file', instanceId, head, resume.lost.hash, clock(), resume.lost)
    await commit([chainRecord(checkpointBody(entry, clock()), head)])
  })

  /** Writes chained records with one write+fsync; on failure nothing of them stays. Then logs their checkpoints. */
  async function commit (records: AuditRecord[]): Promise<void> {
    const bytes = Buffer.from(records.map((r) => `${canonicalJson(r)}\n`).join(''), 'utf8')
    const seg = await segmentFor(clock(), bytes.length)
    const before = seg.size
    try {
      await writeAll(seg.fh, bytes)
      await seg.fh.sync()
    } catch (err) {
      // Undo a partial batch so no unacknowledged record stays in the chain, then re-read the file before the next write.
      await seg.fh.truncate(before).then(async () => await seg.fh.sync()).catch(() => {})
      await dropHandle()
      state.reset()
      throw err
    }
    seg.size += bytes.length
    head = headOf(records[records.length - 1])
    for (const r of records) {
      if (r.checkpoint === undefined) { since++; continue }
      since = 0
      lastCheckpoint = r.hash
    }
  }

  /** After a commit: the side log and the anchor line for each checkpoint record (the chain already holds them). */
  async function publish (records: AuditRecord[], file: string): Promise<void> {
    const lines = records.filter((r) => r.checkpoint !== undefined).map((r) => lineOf(r, file))
    if (lines.length === 0) return
    // A side log that cannot be written now is repaired from the chain at the next start.
    await appendSideLog(sidePath, lines).catch(() => {})
    for (const l of lines) cp?.onCheckpoint?.(l)
  }

  async function dropHandle (): Promise<void> {
    const fh = current?.fh
    if (current !== undefined) current.fh = undefined
    if (fh !== undefined) await fh.close().catch(() => {})
  }

  /** The open segment to append `incoming` bytes to, rotating first when it is full or the UTC day has changed. */
  async function segmentFor (now: Date, incoming: number): Promise<Current & { fh: FileHandle }> {
    const today = utcDay(now)
    if (current === undefined) {
      current = { name: segmentName(tag, today, 1), day: today, n: 1, size: 0 }
    } else if (today > current.day || (current.size > 0 && current.size + incoming > rotateBytes)) {
      await dropHandle()
      const day = today > current.day ? today : current.day
      const n = day === current.day ? current.n + 1 : 1
      current = { name: segmentName(tag, day, n), day, n, size: 0 }
    }
    if (current.fh === undefined) {
      const fh = await open(join(dir, current.name), 'a', 0o640)
      const { size } = await fh.stat()
      if (size === 0) await syncDir(dir)
      current.fh = fh
      current.size = size
    }
    return current as Current & { fh: FileHandle }
  }

  /** One group commit: the batch, and a checkpoint after it when one is due (or forced and anything is unsigned). */
  async function flush (batch: Entry[], force: boolean): Promise<void> {
    try {
      await state.ready()
      const records: AuditRecord[] = []
      let next = head
      for (const entry of batch) {
        const record = chainRecord(entry.body, next)
        records.push(record)
        next = headOf(record)
      }
      const unsigned = since + records.length
      if (cp !== undefined && unsigned > 0 && (force || unsigned >= cp.everyRecords)) {
        const entry = newEntry(cp.signer, 'checkpoint', 'file', instanceId, next, lastCheckpoint, clock())
        records.push(chainRecord(checkpointBody(entry, clock()), next))
      }
      if (records.length === 0) return
      await commit(records)
      const file = current?.name ?? ''
      batch.forEach((entry, i) => entry.resolve(records[i]))
      await publish(records, file)
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err))
      for (const entry of batch) entry.reject(error)
      if (batch.length === 0) throw error
    }
  }

  function pump (): void {
    if (draining !== undefined) return
    draining = (async () => {
      while (queue.length > 0 || wantCheckpoint) {
        const batch = queue.filter((e) => !e.signal.aborted)
        queue = []
        const force = wantCheckpoint
        const waiters = checkpointWaiters
        wantCheckpoint = false
        checkpointWaiters = []
        let ok = true
        try {
          if (batch.length > 0 || force) await flush(batch, force)
        } catch { ok = false }
        for (const w of waiters) w(ok)
      }
    })().finally(() => { draining = undefined })
  }

  return {
    name: 'file',
    init: state.ready,
    probe: async () => {
      await state.ready()
      await access(dir, constants.W_OK)
    },
    append: async (body, signal) => await new Promise<AuditRecord>((resolve, reject) => {
      if (closed) { reject(new Error('audit file sink is closed')); return }
      if (signal.aborted) { reject(abortReason(signal)); return }
      const entry: Entry = { body, signal, resolve, reject }
      queue.push(entry)
      signal.addEventListener('abort', () => {
        const i = queue.indexOf(entry)
        if (i >= 0) { queue.splice(i, 1); reject(abortReason(signal)) }
      }, { once: true })
      pump()
    }),
    checkpoint: async () => {
      if (cp === undefined || closed) return
      const ok = await new Promise<boolean>((resolve) => {
        checkpointWaiters.push(resolve)
        wantCheckpoint = true
        pump()
      })
      if (!ok) throw new Error('audit file sink: the checkpoint could not be written')
    },
    close: async () => {
      closed = true
      // pump() replaces `draining` while we await it (a batch that arrived meanwhile starts the next drain): wait until none is left.
      // eslint-disable-next-line no-unmodified-loop-condition -- reassigned by pump() and its finally() during the await
      while (draining !== undefined) await draining
      await dropHandle()
    }
  }
}
