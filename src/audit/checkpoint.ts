// Signed checkpoints: Ed25519 signatures over a chain's head, so a verifier holding only the public key finds rewrites, cuts and gaps.
//
// Design. A checkpoint is a record IN the chain (route "audit-checkpoint", its signed entry in the `checkpoint` field),
// written by each sink for its own chain every AUDIT_CHECKPOINT_RECORDS records or AUDIT_CHECKPOINT_INTERVAL_S seconds
// and at shutdown. Its entry signs { store, instance_id, seq, head, time, prev_checkpoint, key_id }: `seq`/`head` are the
// record just before it (so `head` must equal the checkpoint record's own prev_hash), `prev_checkpoint` is the hash of
// the chain's previous checkpoint record. The same signed entry is also kept OUTSIDE the chain, in an append-only side
// log (files: audit-<tag>.checkpoints; PostgreSQL: audit_checkpoints), and logged as one pino line ("audit checkpoint",
// field audit_checkpoint) for whoever ships the process log off the host.
//
// What the verifier concludes, with the public key only:
//  - a record edited with every hash recomputed: the next checkpoint's signed head no longer equals the chain's hash
//    there (re-signing needs the private key; a checkpoint signed by another key is named as such);
//  - a record or file deleted in the middle: a sequence gap, or (renumbered and re-hashed) a checkpoint whose signed
//    seq/head no longer fits;
//  - deleted first files: the chain begins after seq 1 with no signed "pruned through seq N, head H" entry for it;
//  - a cut tail (the last file deleted, the last rows removed): the side log or the anchor log holds a checkpoint the
//    chain no longer holds. A cut of chain AND side log together is found only with the shipped anchor log.
//  - records after the last checkpoint carry no signature yet: reported as "N unanchored" (a warning).
// A writer that finds its chain does not reach its own last checkpoint (lost or cut state) does not resume silently:
// it writes a signed "restart" record naming the last head it could read and the checkpoint it could not meet, and
// `audit verify` names that record as a loss.

import { sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto'
import { GENESIS_HASH } from './chain.js'
import { canonicalJson, trailRecordBody, type AuditRecord, type AuditRecordBody } from './record.js'

type CheckpointKind = 'checkpoint' | 'restart' | 'pruned'
export type CheckpointStore = 'file' | 'postgres'

/** What a checkpoint signs (and the signature, base64, over the canonical JSON of every other field). */
export type SignedEntry = {
  kind: CheckpointKind
  store: CheckpointStore
  instance_id: string
  /** The last record covered (for a checkpoint or restart record: the record just before it). */
  seq: number
  /** That record's hash. */
  head: string
  time: string
  /** Hash of the chain's previous checkpoint record (GENESIS_HASH for the first). */
  prev_checkpoint: string
  key_id: string
  /** restart: the checkpoint record (seq, hash) the writer expected and could not find; null when it knew none. */
  expected?: { seq: number, hash: string } | null
  /** pruned: records before this time were removed. */
  before?: string
  signature: string
}

/** One line of a side log or of the anchor log: the entry, and the record that carries it (absent for "pruned"). */
export type CheckpointLine = { checkpoint: SignedEntry, record_seq?: number, record_hash?: string, file?: string }

const CHECKPOINT_ROUTES: Record<Exclude<CheckpointKind, 'pruned'>, string> = { checkpoint: 'audit-checkpoint', restart: 'audit-restart' }
/** The pino message of an anchor line. */
export const ANCHOR_MESSAGE = 'audit checkpoint'

export interface Signer { privateKey: KeyObject, keyId: string }
export interface Verifier { publicKey: KeyObject, keyId: string }

export type UnsignedEntry = Omit<SignedEntry, 'signature' | 'key_id'>

export function signEntry (signer: Signer, entry: UnsignedEntry): SignedEntry {
  const withKey = { ...entry, key_id: signer.keyId }
  const signature = edSign(null, Buffer.from(canonicalJson(withKey), 'utf8'), signer.privateKey).toString('base64')
  return { ...withKey, signature }
}

const HEX64 = /^[0-9a-f]{64}$/

function isEntry (value: unknown): value is SignedEntry {
  if (typeof value !== 'object' || value === null) return false
  const e = value as Record<string, unknown>
  return ['checkpoint', 'restart', 'pruned'].includes(e.kind as string) && (e.store === 'file' || e.store === 'postgres') &&
    typeof e.instance_id === 'string' && typeof e.seq === 'number' && Number.isSafeInteger(e.seq) && e.seq >= 0 &&
    typeof e.head === 'string' && HEX64.test(e.head) && typeof e.time === 'string' && typeof e.prev_checkpoint === 'string' &&
    typeof e.key_id === 'string' && typeof e.signature === 'string'
}

/** What is wrong with a signed entry (shape, key, signature), or undefined. Without a verifier only the shape is checked. */
export function entryProblem (value: unknown, verifier: Verifier | undefined): string | undefined {
  if (!isEntry(value)) return 'not a signed checkpoint entry'
  if (verifier === undefined) return undefined
  if (value.key_id !== verifier.keyId) return `signed by another key (key id ${value.key_id}, the given public key is ${verifier.keyId})`
  const { signature, ...signed } = value
  let ok = false
  try {
    ok = edVerify(null, Buffer.from(canonicalJson(signed), 'utf8'), verifier.publicKey, Buffer.from(signature, 'base64'))
  } catch { ok = false }
  return ok ? undefined : 'signature does not verify with the given public key (entry altered, or signed by another key)'
}

/** The body of a checkpoint or restart record: no request, the signed entry in `checkpoint`, a sentence in `error`. */
export function checkpointBody (entry: SignedEntry & { kind: 'checkpoint' | 'restart' }, now: Date): AuditRecordBody {
  const sentence = entry.kind === 'checkpoint'
    ? `signed checkpoint of seq ${entry.seq}`
    : `chain restarted after lost state: continuing after seq ${entry.seq}${entry.expected == null ? '' : `; its last checkpoint (record seq ${entry.expected.seq}) could not be found`}`
  const facts = { instanceId: entry.instance_id, requestId: `${entry.kind}-${entry.seq}`, route: CHECKPOINT_ROUTES[entry.kind], outcome: 'ok' as const, error: sentence, now }
  return { ...trailRecordBody(facts), checkpoint: entry }
}

/** The signed entry for a checkpoint/restart record placed after `head`. */
export function newEntry (signer: Signer, kind: 'checkpoint' | 'restart', store: CheckpointStore, instanceId: string, head: { seq: number, hash: string }, prevCheckpoint: string | undefined, now: Date, expected?: { seq: number, hash: string } | null): SignedEntry & { kind: 'checkpoint' | 'restart' } {
  const entry = signEntry(signer, {
    kind,
    store,
    instance_id: instanceId,
    seq: head.seq,
    head: head.hash,
    time: now.toISOString(),
    prev_checkpoint: prevCheckpoint ?? GENESIS_HASH,
    ...(kind === 'restart' ? { expected: expected ?? null } : {})
  })
  return entry as SignedEntry & { kind: 'checkpoint' | 'restart' }
}

/** The side-log / anchor line for a checkpoint record. */
export function lineOf (record: AuditRecord, file?: string): CheckpointLine {
  if (record.checkpoint === undefined) throw new Error('not a checkpoint record')
  return { checkpoint: record.checkpoint, record_seq: record.seq, record_hash: record.hash, ...(file === undefined ? {} : { file }) }
}

/** What the trail needs from a sink's checkpointing. */
export interface CheckpointSettings {
  signer: Signer
  /** Checkpoint after this many records since the last one. */
  everyRecords: number
  /** Called once a checkpoint record is durable (the trail logs it as the anchor line). */
  onCheckpoint?: (line: CheckpointLine) => void
}
