// Retention: removes whole old files (or rows) of a verified chain up to a checkpoint, after a signed "pruned through seq N, head H" entry.

import { open, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import { GENESIS_HASH } from './chain.js'
import { signEntry, type SignedEntry, type Signer } from './checkpoint.js'
import { appendSideLog, listSegments, readLines, sideLogName, type Segment } from './file-sink.js'
import { quoteSchema } from './pg-schema.js'
import { chainLockKey, insertSideEntrySql, sideEntryParams } from './pg-sink.js'
import type { AuditRecord } from './record.js'
import { verifyAuditDatabase, verifyAuditFiles } from './verify.js'
import type { KeyObject } from 'node:crypto'

export interface PruneSigner extends Signer { publicKey: KeyObject }

export interface Pruned { instance: string, through: number, head: string, removed: string[] }

export class PruneRefused extends Error {}

interface SegmentSummary { seg: Segment, instance?: string, lastSeq: number, lastHash: string, maxTime: string }

function prunedEntry (signer: Signer, store: 'file' | 'postgres', instance: string, seq: number, head: string, prevCheckpoint: string, before: Date): SignedEntry {
  return signEntry(signer, { kind: 'pruned', store, instance_id: instance, seq, head, time: new Date().toISOString(), prev_checkpoint: prevCheckpoint, before: before.toISOString() })
}

/**
 * Files: per chain, the longest run of its oldest files whose records are all before `before` and all covered by a
 * checkpoint written before `before`; never a chain's last file. Refuses when the directory does not verify.
 */
export async function pruneAuditFiles (dir: string, before: Date, signer: PruneSigner): Promise<Pruned[]> {
  const verified = await verifyAuditFiles(dir, { publicKey: signer.publicKey })
  if (!verified.ok) throw new PruneRefused(`refusing to prune: the directory does not verify: ${verified.firstProblem ?? ''}`)
  const byTag = new Map<string, Segment[]>()
  for (const seg of await listSegments(dir)) byTag.set(seg.tag, [...(byTag.get(seg.tag) ?? []), seg])
  const done: Pruned[] = []
  for (const [tag, segs] of byTag) {
    if (segs.length < 2) continue
    const summaries: SegmentSummary[] = []
    const checkpoints: Array<{ seq: number, hash: string, time: string }> = []
    for (const seg of segs) {
      const sum: SegmentSummary = { seg, lastSeq: 0, lastHash: GENESIS_HASH, maxTime: '' }
      for await (const { line, torn } of readLines(join(dir, seg.name))) {
        if (torn === true) break
        const r = JSON.parse(line) as AuditRecord
        sum.instance = r.instance_id
        sum.lastSeq = r.seq
        sum.lastHash = r.hash
        if (r.time > sum.maxTime) sum.maxTime = r.time
        if (r.checkpoint !== undefined && r.checkpoint.kind === 'checkpoint') checkpoints.push({ seq: r.seq, hash: r.hash, time: r.time })
      }
      summaries.push(sum)
    }
    const cutoff = before.toISOString()
    const covered = checkpoints.filter((c) => c.time < cutoff).reduce((max, c) => Math.max(max, c.seq), 0)
    let k = 0
    while (k < summaries.length - 1 && summaries[k].lastSeq > 0 && summaries[k].lastSeq <= covered && summaries[k].maxTime < cutoff) k++
    if (k === 0) continue
    const last = summaries[k - 1]
    const instance = last.instance as string
    const prev = checkpoints.filter((c) => c.seq <= last.lastSeq).pop()?.hash ?? GENESIS_HASH
    // The signed entry is durable before any file goes: a crash in between leaves files the entry already allows to go.
    await appendSideLog(join(dir, sideLogName(tag)), [{ checkpoint: prunedEntry(signer, 'file', instance, last.lastSeq, last.lastHash, prev, before) }])
    for (const s of summaries.slice(0, k)) await unlink(join(dir, s.seg.name))
    const fh = await open(dir, 'r')
    try { await fh.sync() } finally { await fh.close() }
    done.push({ instance, through: last.lastSeq, head: last.lastHash, removed: summaries.slice(0, k).map((s) => s.seg.name) })
  }
  return done
}

/**
 * PostgreSQL: per chain, the rows up to its latest checkpoint written before `before` (never its last record), deleted
 * in one transaction with the signed entry. Needs the owner role: the append-only trigger lets only the owner delete,
 * and only with speke_proxy.audit_prune set for the transaction.
 */
export async function pruneAuditDatabase (ownerUrl: string, schema: string, before: Date, signer: PruneSigner): Promise<Pruned[]> {
  const verified = await verifyAuditDatabase(ownerUrl, schema, { publicKey: signer.publicKey })
  if (!verified.ok) throw new PruneRefused(`refusing to prune: the database does not verify: ${verified.firstProblem ?? ''}`)
  const s = quoteSchema(schema)
  const client = new pg.Client({ connectionString: ownerUrl, application_name: 'speke-proxy-audit-prune', connectionTimeoutMillis: 10_000 })
  await client.connect()
  const done: Pruned[] = []
  try {
    const instances = await client.query<{ instance_id: string }>(`SELECT DISTINCT instance_id FROM ${s}.audit_records ORDER BY instance_id`)
    for (const { instance_id: instance } of instances.rows) {
      await client.query('BEGIN')
      try {
        await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [chainLockKey(schema, instance)])
        const cp = await client.query<{ seq: string, hash: string }>(
          `SELECT seq, hash FROM ${s}.audit_records
            WHERE instance_id = $1 AND checkpoint IS NOT NULL AND checkpoint->>'kind' = 'checkpoint' AND "time" < $2
              AND seq < (SELECT max(seq) FROM ${s}.audit_records WHERE instance_id = $1)
            ORDER BY seq DESC LIMIT 1`, [instance, before])
        const first = await client.query<{ n: string }>(`SELECT min(seq) AS n FROM ${s}.audit_records WHERE instance_id = $1`, [instance])
        const target = cp.rows[0]
        if (target === undefined || Number(first.rows[0].n) > Number(target.seq)) { await client.query('COMMIT'); continue }
        const entry = prunedEntry(signer, 'postgres', instance, Number(target.seq), target.hash, target.hash, before)
        await client.query(insertSideEntrySql(s), sideEntryParams({ checkpoint: entry }))
        await client.query("SELECT set_config('speke_proxy.audit_prune', 'on', true)")
        const removed = await client.query(`DELETE FROM ${s}.audit_records WHERE instance_id = $1 AND seq <= $2`, [instance, target.seq])
        await client.query('COMMIT')
        done.push({ instance, through: Number(target.seq), head: target.hash, removed: [`${removed.rowCount ?? 0} rows`] })
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      }
    }
  } finally {
    await client.end().catch(() => {})
  }
  return done
}
