// `speke-proxy audit verify --dir D | --database-url U [--schema S]`: walks every chain and returns the process exit code.

import { parseArgs } from 'node:util'
import { verifyAuditDatabase, verifyAuditFiles, type VerifyResult } from './verify.js'

const USAGE = 'usage: speke-proxy audit verify --dir DIR | --database-url URL [--schema SCHEMA]\n'

/** 0 when every chain verifies, 1 when a record was altered, removed or reordered (or could not be read), 2 on bad usage. */
export async function runAuditVerify (argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const args = [...argv]
  if (args[0] === 'audit') args.shift()
  if (args[0] === 'verify') args.shift()
  let values: { dir?: string, 'database-url'?: string, schema?: string, help?: boolean }
  try {
    values = parseArgs({
      args,
      options: { dir: { type: 'string' }, 'database-url': { type: 'string' }, schema: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false
    }).values
  } catch (err) {
    out.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`)
    return 2
  }
  if (values.help === true) { out.write(USAGE); return 0 }
  const dir = values.dir
  const url = values['database-url']
  if (dir === undefined && url === undefined) { out.write(`audit verify needs --dir or --database-url\n${USAGE}`); return 2 }
  if (values.schema !== undefined && url === undefined) { out.write(`--schema goes with --database-url\n${USAGE}`); return 2 }

  const checks: Array<[string, Promise<VerifyResult>]> = []
  if (dir !== undefined) checks.push([`directory ${dir}`, verifyAuditFiles(dir)])
  if (url !== undefined) checks.push([`database schema ${values.schema ?? 'public'}`, verifyAuditDatabase(url, values.schema)])
  let code = 0
  for (const [what, pending] of checks) {
    const r = await pending
    if (r.ok) {
      out.write(`audit verify: OK: ${what}: ${r.records} records in ${r.chains} chains\n`)
    } else {
      out.write(`audit verify: FAILED: ${what}: ${r.firstProblem ?? 'unknown problem'} (${r.records} records verified before it)\n`)
      code = 1
    }
  }
  return code
}
