// Offline verification: walks every chain in an audit directory or database and names the first record that does not link up.

import { createReadStream } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { startWalk, walkRecord, type ChainWalk } from './chain.js'
import { listSegments } from './file-sink.js'
import { quoteSchema, RECORD_COLUMNS, rowToRecord, type AuditRow } from './pg-schema.js'
import { errorText } from './sink.js'

export interface VerifyResult {
  ok: boolean
  records: number
  chains: number
  /** Names the file and line, or the row, and what is wrong with it. */
  firstProblem?: string
}

function result (walk: ChainWalk, firstProblem?: string): VerifyResult {
  return firstProblem === undefined
    ? { ok: true, records: walk.records, chains: walk.heads.size }
    : { ok: false, records: walk.records, chains: walk.heads.size, firstProblem }
}

/** Problem text for one line of a file, or undefined when the record links up. */
function walkLine (walk: ChainWalk, line: string): string | undefined {
  if (line.trim() === '') return 'empty line'
  let value: unknown
  try { value = JSON.parse(line) } catch { return 'not valid JSON' }
  return walkRecord(walk, value)
}

/** Verifies every chain in the JSON-lines files of `dir`, file by file in write order. */
export async function verifyAuditFiles (dir: string): Promise<VerifyResult> {
  const walk = startWalk()
  let segments
  try {
    segments = await listSegments(dir)
  } catch (err) {
    return result(walk, `cannot read audit directory ${dir}: ${errorText(err)}`)
  }
  for (const seg of segments) {
    let lineNo = 0
    let rest = Buffer.alloc(0)
    for await (const chunk of createReadStream(join(dir, seg.name))) {
      let data = Buffer.concat([rest, chunk as Buffer])
      let nl: number
      while ((nl = data.indexOf(0x0a)) >= 0) {
        lineNo++
        const problem = walkLine(walk, data.subarray(0, nl).toString('utf8'))
        if (problem !== undefined) return result(walk, `${seg.name} line ${lineNo}: ${problem}`)
        data = data.subarray(nl + 1)
      }
      rest = data
    }
    if (rest.length > 0) return result(walk, `${seg.name} line ${lineNo + 1}: incomplete last line (no newline)`)
  }
  return result(walk)
}

/** Verifies every chain in `schema`.audit_records, and that each chain ends where its chain-head row says. */
export async function verifyAuditDatabase (databaseUrl: string, schema = 'public'): Promise<VerifyResult> {
  const s = quoteSchema(schema)
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'speke-proxy-audit-verify', connectionTimeoutMillis: 10_000 })
  const walk = startWalk()
  try {
    await client.connect()
    let after: [string, string] = ['', '0']
    for (;;) {
      const { rows } = await client.query<AuditRow>(
        `SELECT ${RECORD_COLUMNS} FROM ${s}.audit_records WHERE (instance_id, seq) > ($1::text, $2::bigint)
         ORDER BY instance_id, seq LIMIT 1000`, after)
      if (rows.length === 0) break
      for (const row of rows) {
        const problem = walkRecord(walk, rowToRecord(row))
        if (problem !== undefined) return result(walk, `row id=${row.id} (instance_id=${JSON.stringify(row.instance_id)}, seq=${row.seq}): ${problem}`)
      }
      const last = rows[rows.length - 1]
      after = [last.instance_id, last.seq]
    }
    const heads = await client.query<{ instance_id: string, seq: string, hash: string }>(`SELECT instance_id, seq, hash FROM ${s}.audit_chain_heads ORDER BY instance_id`)
    const headed = new Set<string>()
    for (const head of heads.rows) {
      headed.add(head.instance_id)
      const walked = walk.heads.get(head.instance_id) ?? { seq: 0, hash: '0'.repeat(64) }
      if (walked.seq !== Number(head.seq) || walked.hash !== head.hash) {
        return result(walk, `chain ${JSON.stringify(head.instance_id)}: its head row says seq ${head.seq} but the last record is seq ${walked.seq} (records removed from the end, or the head row altered)`)
      }
    }
    for (const instance of walk.heads.keys()) {
      if (!headed.has(instance)) return result(walk, `chain ${JSON.stringify(instance)}: has records but no head row in audit_chain_heads`)
    }
    return result(walk)
  } catch (err) {
    return result(walk, `cannot read audit database (schema ${schema}): ${errorText(err)}`)
  } finally {
    await client.end().catch(() => {})
  }
}
