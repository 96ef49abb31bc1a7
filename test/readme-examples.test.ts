// The README's curl examples work: each one runs against a started proxy and gets the status its comment documents.

import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { request } from 'undici'
import { startChildProxy } from './helpers/child-proxy.js'
import { PROJECT_ROOT } from './helpers/fixtures.js'

interface CurlExample {
  line: string
  method: string
  url: string
  headers: Record<string, string>
  body?: Buffer
  expectedStatus: number
}

/** Splits one shell command line into words: single and double quotes, $NAME and ${NAME} expansion, a trailing # comment. */
export function shellWords (line: string, vars: Record<string, string>): { words: string[], comment: string } {
  const words: string[] = []
  let word: string | undefined
  let i = 0
  const expand = (): string => {
    const m = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/.exec(line.slice(i))
    if (m === null) { i++; return '$' }
    const name = m[1] ?? m[2]
    if (!(name in vars)) throw new Error(`README uses $${name}, which no earlier line of its block sets`)
    i += m[0].length
    return vars[name]
  }
  while (i < line.length) {
    const c = line[i]
    if (c === ' ' || c === '\t') {
      if (word !== undefined) words.push(word)
      word = undefined
      i++
    } else if (c === '#' && word === undefined) {
      return { words, comment: line.slice(i + 1).trim() }
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1)
      if (end === -1) throw new Error(`unclosed ' in: ${line}`)
      word = (word ?? '') + line.slice(i + 1, end)
      i = end + 1
    } else if (c === '"') {
      word ??= ''
      i++
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '$') word += expand()
        else if (line[i] === '\\' && '"$\\`'.includes(line[i + 1])) { word += line[i + 1]; i += 2 } else word += line[i++]
      }
      if (line[i] !== '"') throw new Error(`unclosed " in: ${line}`)
      i++
    } else if (c === '$') {
      word = (word ?? '') + expand()
    } else if (c === '`' || c === '|' || c === ';' || c === '&' || c === '<' || c === '>') {
      throw new Error(`README example uses shell syntax this test does not run (${c}): ${line}`)
    } else {
      word = (word ?? '') + c
      i++
    }
  }
  if (word !== undefined) words.push(word)
  return { words, comment: '' }
}

/** A curl command line as the request it makes; only the options the README may use are understood. */
export function parseCurl (line: string, vars: Record<string, string>): CurlExample {
  const { words, comment } = shellWords(line, vars)
  if (words[0] !== 'curl') throw new Error(`not a curl command: ${line}`)
  const status = /(?:^|\s)(\d{3})\b/.exec(comment)
  if (status === null) throw new Error(`a README curl example must document its status in a trailing comment (# 200 …): ${line}`)
  const example: CurlExample = { line, method: 'GET', url: '', headers: {}, expectedStatus: Number(status[1]) }
  for (let k = 1; k < words.length; k++) {
    const w = words[k]
    const value = (): string => {
      const v = words[++k]
      if (v === undefined) throw new Error(`${w} needs a value: ${line}`)
      return v
    }
    if (w === '-X' || w === '--request') example.method = value()
    else if (w === '-H' || w === '--header') {
      const h = value()
      const colon = h.indexOf(':')
      example.headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim()
    } else if (w === '--data-binary' || w === '-d' || w === '--data') {
      const v = value()
      if (v.startsWith('@')) {
        const file = resolve(PROJECT_ROOT, v.slice(1))
        if (relative(PROJECT_ROOT, file).startsWith('..')) throw new Error(`README posts a file outside the repository: ${v}`)
        if (!existsSync(file)) throw new Error(`README posts ${v}, which does not exist`)
        example.body = readFileSync(file)
      } else {
        example.body = Buffer.from(v)
      }
      // curl's own default for a body without -H content-type
      example.headers['content-type'] ??= 'application/x-www-form-urlencoded'
      if (example.method === 'GET') example.method = 'POST'
    } else if (w === '-s' || w === '--silent' || w === '-i') {
      // output options: no effect on the request
    } else if (w.startsWith('-')) {
      throw new Error(`README curl uses ${w}, which this test does not understand: add it here or drop it there`)
    } else {
      example.url = w
    }
  }
  if (example.url === '') throw new Error(`no URL in: ${line}`)
  return example
}

/** Every curl command in the README's sh blocks, with the variables set by earlier lines of the same block. */
export function readmeCurlExamples (readme: string): CurlExample[] {
  const examples: CurlExample[] = []
  for (const block of readme.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const vars: Record<string, string> = {}
    const lines = block[1].replace(/\\\n\s*/g, ' ').split('\n')
    for (const line of lines.map(l => l.trim())) {
      const assignment = /^([A-Z_][A-Z0-9_]*)=(\S+)(?:\s+#.*)?$/.exec(line)
      if (assignment !== null) vars[assignment[1]] = shellWords(assignment[2], vars).words[0]
      else if (line.startsWith('curl ')) examples.push(parseCurl(line, vars))
    }
  }
  return examples
}

const README = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8')

t.test('the README reader understands quoting, variables and documented statuses', async t => {
  const ex = parseCurl('curl -X POST "http://localhost:8080/a?t=$T" -H \'content-type: application/json\' -d \'{"a":1}\'   # 201 made', { T: 'x+y' })
  t.same([ex.method, ex.url, ex.headers['content-type'], ex.body?.toString(), ex.expectedStatus], ['POST', 'http://localhost:8080/a?t=x+y', 'application/json', '{"a":1}', 201])
  t.throws(() => parseCurl('curl http://localhost:8080/x', {}), /document its status/, 'a curl without a documented status is refused')
  t.throws(() => parseCurl('curl -X POST http://x --data-binary @../outside/a.xml  # 200', {}), /outside the repository/, 'a file outside the repository is refused')
  t.throws(() => parseCurl('curl "http://x/$NOPE"  # 200', {}), /\$NOPE/, 'an unset variable is refused')
})

t.test('every curl example in the README gets its documented status from a freshly started proxy', async t => {
  const examples = readmeCurlExamples(README)
  const posted = examples.flatMap(e => /@(\S+)/.exec(e.line)?.[1] ?? [])
  t.ok(examples.length >= 7, `${examples.length} curl examples found`)
  for (const file of ['examples/speke-v1-dash.xml', 'examples/speke-v2.0-multi-key.xml', 'examples/speke-v2.1-live.xml', 'examples/pallycon-v2-key-rotation.xml', 'examples/keys.json']) {
    t.ok(posted.includes(file), `the README posts ${file}`)
  }

  const dataDir = mkdtempSync(join(tmpdir(), 'readme-examples-'))
  // The admin examples set ADMIN_TOKEN in their block and say to start the proxy with it: so is this one.
  const adminToken = /^ADMIN_TOKEN=(\S+)$/m.exec(README)?.[1]
  const proxy = await startChildProxy({ DATA_DIR: dataDir, ...(adminToken === undefined ? {} : { ADMIN_TOKEN: adminToken }) })
  // Stop the proxy and wait for its exit (it signs the audit chain on the way out) before removing its data.
  t.teardown(async () => {
    proxy.child.kill('SIGTERM')
    await proxy.exited
    rmSync(dataDir, { recursive: true, force: true })
  })
  for (const ex of examples) {
    const name = `${ex.method} ${ex.url.replace(/enc-token=[^&]*|getKey\/[^?]*/, '…')}`
    const url = ex.url.replace(/^http:\/\/localhost:8080/, proxy.url)
    t.not(url, ex.url, `${name} is on the README's local address`)
    const res = await request(url, { method: ex.method, headers: ex.headers, body: ex.body })
    const body = await res.body.text()
    // The body is shown only on a mismatch: a 200 carries content keys.
    t.equal(res.statusCode, ex.expectedStatus, name, res.statusCode === ex.expectedStatus ? {} : { body: body.slice(0, 300) })
  }
})
