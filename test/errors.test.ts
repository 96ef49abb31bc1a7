// Specification of the error codes: one table gives status and metric kind; docs/errors.md lists exactly it; openapi.yaml names the header.

import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parse } from 'yaml'
import { ERROR_CODES, errorKind, isErrorCode } from '../src/error-codes.js'
import type { ErrorCode } from '../src/error-codes.js'
import { ProxyError, badRequest, unprocessable } from '../src/errors.js'
import { PROJECT_ROOT } from './helpers/fixtures.js'

const CODES = Object.keys(ERROR_CODES) as ErrorCode[]

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e => {
    const path = join(dir, e.name)
    return e.isDirectory() ? sourceFiles(path) : e.name.endsWith('.ts') ? [path] : []
  })
}

const sources = sourceFiles(join(PROJECT_ROOT, 'src'))
  .filter(f => !f.endsWith('error-codes.ts'))
  .map(f => ({ file: relative(PROJECT_ROOT, f), text: readFileSync(f, 'utf8') }))

t.test('a ProxyError takes its status from the table', async t => {
  for (const code of CODES) {
    const status = ERROR_CODES[code].status
    if (status === '4xx') continue
    t.equal(new ProxyError(code as Exclude<ErrorCode, 'KMS_REFUSED' | 'BAD_ADMIN_REQUEST'>, 'm').status, status, code)
  }
  t.equal(badRequest('m', 'EMPTY_BODY').status, 400)
  t.equal(unprocessable('m', 'DUPLICATE_KID').status, 422)
  t.equal(new ProxyError('KMS_TIMEOUT', 'KMS did not answer').message, 'KMS did not answer')
})

t.test('a code of status 4xx passes on the client-error status it is given, and only a client-error status', async t => {
  t.equal(new ProxyError('KMS_REFUSED', 'm', 403).status, 403)
  t.equal(new ProxyError('BAD_ADMIN_REQUEST', 'm', 415).status, 415)
  t.throws(() => new ProxyError('KMS_REFUSED', 'm', 502), RangeError)
  t.throws(() => new ProxyError('KMS_REFUSED', 'm', 200), RangeError)
})

t.test('every code has a status, a metric kind, a meaning and what to do', async t => {
  for (const code of CODES) {
    const spec = ERROR_CODES[code]
    t.match(code, /^[A-Z][A-Z0-9_]*$/, `${code} is SCREAMING_SNAKE_CASE`)
    t.ok(spec.status === '4xx' || (spec.status >= 400 && spec.status <= 599), `${code}: an error status`)
    t.match(spec.meaning, /\S.*\.$/, `${code}: a meaning, as a sentence`)
    t.match(spec.action, /\S.*\.$/, `${code}: what to do, as a sentence`)
  }
})

t.test('metric kinds come from the code; a missing or unknown code is other', async t => {
  t.equal(errorKind('KMS_TIMEOUT'), 'timeout')
  t.equal(errorKind('KMS_UNREACHABLE'), 'connection')
  t.equal(errorKind('KMS_ERROR'), 'kms_error')
  t.equal(errorKind('KMS_NO_CPIX'), 'not_cpix')
  t.equal(errorKind('KMS_REPLY_INVALID'), 'invalid_reply')
  t.equal(errorKind('AUDIT_UNAVAILABLE'), 'audit')
  t.equal(errorKind('MALFORMED_XML'), 'other')
  t.equal(errorKind(undefined), 'other')
  t.equal(errorKind('NOT_A_CODE'), 'other')
  t.equal(errorKind('toString'), 'other', 'inherited names are no codes')
  t.notOk(isErrorCode('constructor'))
})

t.test('every declared code is raised somewhere in src, and every code src writes as a literal is declared', async t => {
  const all = sources.map(s => s.text).join('\n')
  for (const code of CODES) t.ok(all.includes(`'${code}'`), `${code} is used`)
  // Codes written outside a ProxyError (whose code the compiler checks): JSON bodies of the admin API.
  for (const { file, text } of sources) {
    for (const m of text.matchAll(/\bcode: '([A-Z][A-Z0-9_]+)'/g)) t.ok(isErrorCode(m[1]), `${file}: ${m[1]} is declared`)
  }
})

// ---------------------------------------------------------------- docs/errors.md

const docs = readFileSync(join(PROJECT_ROOT, 'docs', 'errors.md'), 'utf8')

function rowOf (code: ErrorCode): string {
  const s = ERROR_CODES[code]
  return `| \`${code}\` | ${s.status} | \`${s.kind}\` | ${s.meaning} | ${s.action} |`
}

t.test('docs/errors.md lists every code of the table, in its order, with its status, kind, meaning and what to do', async t => {
  const rows = docs.split('\n').filter(line => line.startsWith('| `'))
  const documented = rows.map(line => /^\| `([^`]+)`/.exec(line)?.[1] ?? '')
  t.same(documented, CODES, 'the same codes in the same order: none missing, none extra')
  for (const code of CODES) {
    const row = rows.find(line => line.startsWith(`| \`${code}\` |`))
    t.equal(row, rowOf(code), `${code}: the row says what the table says`)
  }
})

// ---------------------------------------------------------------- openapi.yaml

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type Obj = { [key: string]: Json }
const isObj = (v: Json | undefined): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const spec = parse(readFileSync(join(PROJECT_ROOT, 'openapi.yaml'), 'utf8')) as Obj

function deref (node: Json | undefined): Obj {
  if (!isObj(node)) return {}
  const ref = node.$ref
  if (typeof ref !== 'string') return node
  let target: Json | undefined = spec
  for (const part of ref.slice(2).split('/')) target = isObj(target) ? target[part] : undefined
  return deref(target)
}

const KEY_PATHS = ['/cpix/getKey', '/v1/cpix/pallycon/getKey/{token}', '/v2/cpix/pallycon/getKey/{token}', '/cpix/anevia/{format}/{token}/{cid}', '/v2/keys']

t.test('openapi.yaml documents the X-Speke-Proxy-Error header on every error response of every key route', async t => {
  const paths = isObj(spec.paths) ? spec.paths : {}
  for (const path of KEY_PATHS) {
    const item = paths[path]
    t.ok(isObj(item), `${path} is documented`)
    for (const [method, op] of Object.entries(isObj(item) ? item : {})) {
      const responses = isObj(op) && isObj(op.responses) ? op.responses : {}
      for (const [status, response] of Object.entries(responses)) {
        if (!/^[45]/.test(status)) continue
        const headers = deref(response).headers
        const header = isObj(headers) ? deref(headers['X-Speke-Proxy-Error']) : {}
        t.match(header.description, /docs\/errors\.md/, `${method.toUpperCase()} ${path} ${status} names its code in X-Speke-Proxy-Error`)
      }
    }
  }
})
