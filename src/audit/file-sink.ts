// File sink: JSON lines under AUDIT_DIR, group-committed with one write+fsync per batch, rotated by size or UTC day.

import { constants } from 'node:fs'
import { access, mkdir, open, readdir, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { chainRecord, GENESIS, headOf, type ChainHead } from './chain.js'
import { canonicalJson, sha256Hex, type AuditRecord, type AuditRecordBody } from './record.js'
import { abortReason, lazyInit, type AuditSink } from './sink.js'

export const DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024

const SEGMENT_PATTERN = /^audit-(.+)-(\d{8})-(\d{6})\.jsonl$/

export interface Segment { name: string, tag: string, day: string, n: number }

/** The file-name form of an instance id: itself when file-safe, else a hash of it. */
export function instanceTag (instanceId: string): string {
  return /^[A-Za-z0-9._-]{1,64}$/.test(instanceId) ? instanceId : `h${sha256Hex(instanceId).slice(0, 16)}`
}

export function segmentName (tag: string, day: string, n: number): string {
  return `audit-${tag}-${day}-${String(n).padStart(6, '0')}.jsonl`
}

export function utcDay (date: Date): string {
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
async function readTail (path: string): Promise<Tail> {
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
}

interface Entry { body: AuditRecordBody, signal: AbortSignal, resolve: (r: AuditRecord) => void, reject: (e: Error) => void }
interface Current { name: string, day: string, n: number, size: number, fh?: FileHandle }

export function openFileSink (options: FileSinkOptions): AuditSink {
  const { dir, instanceId } = options
  const rotateBytes = options.rotateBytes ?? DEFAULT_ROTATE_BYTES
  const clock = options.clock ?? (() => new Date())
  const tag = instanceTag(instanceId)
  let head: ChainHead = GENESIS
  let current: Current | undefined
  let queue: Entry[] = []
  let draining: Promise<void> | undefined
  let closed = false

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
  })

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

  async function flush (batch: Entry[]): Promise<void> {
    try {
      await state.ready()
      const records: AuditRecord[] = []
      let next = head
      for (const entry of batch) {
        const record = chainRecord(entry.body, next)
        records.push(record)
        next = headOf(record)
      }
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
      head = next
      batch.forEach((entry, i) => entry.resolve(records[i]))
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err))
      for (const entry of batch) entry.reject(error)
    }
  }

  function pump (): void {
    if (draining !== undefined) return
    draining = (async () => {
      while (queue.length > 0) {
        const batch = queue.filter((e) => !e.signal.aborted)
        queue = []
        if (batch.length > 0) await flush(batch)
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
    close: async () => {
      closed = true
      while (draining !== undefined) await draining
      await dropHandle()
    }
  }
}
