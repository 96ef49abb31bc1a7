// Hash chain: links each record to the one before it (per instance) and checks a sequence of records link up.

import { canonicalJson, sha256Hex, type AuditRecord, type AuditRecordBody, type JsonValue } from './record.js'

/** prev_hash of the first record of every chain. */
export const GENESIS_HASH = '0'.repeat(64)

export interface ChainHead { seq: number, hash: string }

export const GENESIS: ChainHead = { seq: 0, hash: GENESIS_HASH }

/** sha256(prev_hash + canonical(record without hash)), hex. */
export function recordHash (record: { [key: string]: JsonValue | undefined, prev_hash: string }): string {
  const { hash: _ignored, ...rest } = record
  return sha256Hex(record.prev_hash + canonicalJson(rest))
}

/** Places a record body after `head` in its chain. */
export function chainRecord (body: AuditRecordBody, head: ChainHead): AuditRecord {
  const linked = { ...body, seq: head.seq + 1, prev_hash: head.hash }
  return { ...linked, hash: recordHash(linked) }
}

export function headOf (record: Pick<AuditRecord, 'seq' | 'hash'>): ChainHead {
  return { seq: record.seq, hash: record.hash }
}

/** Walk state over any number of interleaved chains; `startAt` names where a pruned chain may begin (a signed prune point). */
export interface ChainWalk {
  heads: Map<string, ChainHead>
  records: number
  startAt?: (instance: string, seq: number) => ChainHead | undefined
}

export function startWalk (startAt?: ChainWalk['startAt']): ChainWalk {
  return { heads: new Map(), records: 0, startAt }
}

const HEX64 = /^[0-9a-f]{64}$/

function isObject (value: unknown): value is { [key: string]: JsonValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Checks one record against its own hash and against the previous record of its chain.
 * Returns what is wrong, or undefined when it links up (and advances the walk).
 */
export function walkRecord (walk: ChainWalk, value: unknown): string | undefined {
  if (!isObject(value)) return 'not a JSON object'
  const { instance_id: instance, seq, prev_hash: prev, hash } = value
  if (typeof instance !== 'string') return 'not an audit record: no instance_id'
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return 'not an audit record: no valid seq'
  if (typeof prev !== 'string' || !HEX64.test(prev)) return 'not an audit record: no valid prev_hash'
  if (typeof hash !== 'string' || !HEX64.test(hash)) return 'not an audit record: no valid hash'
  const where = `chain "${instance}" seq ${seq}`
  if (recordHash({ ...value, prev_hash: prev }) !== hash) return `${where}: hash does not match the record's contents (record altered)`
  const known = walk.heads.get(instance)
  const expected = known ?? (seq > 1 ? walk.startAt?.(instance, seq - 1) : undefined) ?? GENESIS
  if (seq <= expected.seq) return `${where} follows seq ${expected.seq} (records reordered or duplicated)`
  if (known === undefined && seq !== expected.seq + 1) return `${where} where seq ${expected.seq + 1} was expected (record removed or reordered: the chain begins here, and no signed prune record covers seq 1 to ${seq - 1}; a deleted first file?)`
  if (seq !== expected.seq + 1) return `${where} where seq ${expected.seq + 1} was expected (record removed or reordered)`
  if (prev !== expected.hash) return `${where}: prev_hash does not match the previous record's hash (record removed, inserted or reordered)`
  walk.heads.set(instance, { seq, hash })
  walk.records++
  return undefined
}
