// Specification of openapi.yaml: valid OpenAPI 3.1, exactly the app's routes, and examples that are the real, valid documents.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastify from 'fastify'
import { parse } from 'yaml'
import { loadConfig } from '../src/config.js'
import { decodeXmlBytes } from '../src/cpix/decode.js'
import { parseCpix } from '../src/cpix/parse.js'
import { validateRequest } from '../src/cpix/validate.js'
import type { Dialect } from '../src/protocol.js'
import { DRM_TYPES } from '../src/cpix/json-keys.js'
import { OPENAPI_FILE, openapiRoutes } from '../src/routes/openapi.js'
import { assembleProxy } from '../src/proxy.js'
import { PROJECT_ROOT, FIXTURES, capturedBody, fixtureText } from './helpers/fixtures.js'

// ---------------------------------------------------------------- the document, loosely typed

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type Obj = { [key: string]: Json }

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'] as const
const DIALECTS: readonly Dialect[] = ['speke-v1', 'speke-v2.0', 'speke-v2.1', 'pallycon']
const XML_TYPES = ['application/xml', 'text/xml']

const text = readFileSync(resolve(PROJECT_ROOT, 'openapi.yaml'), 'utf8')
const spec = parse(text) as Obj

const isObj = (v: Json | undefined): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const obj = (v: Json | undefined): Obj => (isObj(v) ? v : {})
const str = (v: Json | undefined): string | undefined => (typeof v === 'string' ? v : undefined)

/** Follows a local $ref ('#/components/...') to the node it names; other nodes come back as they are. */
function deref (node: Json | undefined, seen: string[] = []): Obj {
  const o = obj(node)
  const ref = str(o.$ref)
  if (ref === undefined) return o
  if (!ref.startsWith('#/') || seen.includes(ref)) throw new Error(`unresolvable $ref ${ref}`)
  let target: Json | undefined = spec
  for (const part of ref.slice(2).split('/')) target = isObj(target) ? target[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined
  if (!isObj(target)) throw new Error(`$ref ${ref} names nothing`)
  return deref(target, [...seen, ref])
}

interface Operation { method: string, path: string, op: Obj }

function operations (): Operation[] {
  const out: Operation[] = []
  for (const [path, item] of Object.entries(obj(spec.paths))) {
    for (const method of METHODS) {
      if (isObj(obj(item)[method])) out.push({ method: method.toUpperCase(), path, op: obj(obj(item)[method]) })
    }
  }
  return out
}

const parametersOf = (op: Obj): Obj[] => (Array.isArray(op.parameters) ? op.parameters.map(p => deref(p)) : [])
const contentOf = (node: Json | undefined): Obj => obj(deref(node).content)
const examplesOf = (media: Json | undefined): Array<[string, Obj]> =>
  Object.entries(obj(obj(media).examples)).map(([name, e]) => [name, deref(e)])

function operation (method: string, path: string): Obj {
  const found = operations().find(o => o.method === method && o.path === path)
  if (found === undefined) throw new Error(`${method} ${path} is not documented`)
  return found.op
}

/** An example's source: a file of examples/ when the path says so, else a fixture (a captured .http file gives its body). */
function exampleText (file: string): string {
  if (file.startsWith('examples/')) return readFileSync(join(PROJECT_ROOT, file), 'utf8')
  return file.endsWith('.http') ? capturedBody(file).toString('utf8') : fixtureText(file)
}

/** Every required property present, recursively through properties, items and $refs. Returns the paths of the missing ones. */
function missingRequired (value: Json | undefined, schemaNode: Json | undefined, at = '$'): string[] {
  const schema = deref(schemaNode)
  const missing: string[] = []
  if (Array.isArray(value)) {
    if (schema.items !== undefined) value.forEach((v, i) => missing.push(...missingRequired(v, schema.items, `${at}[${i}]`)))
    return missing
  }
  if (!isObj(value)) return missing
  for (const name of Array.isArray(schema.required) ? schema.required : []) {
    if (typeof name === 'string' && !(name in value)) missing.push(`${at}.${name}`)
  }
  for (const [name, sub] of Object.entries(obj(schema.properties))) {
    if (name in value) missing.push(...missingRequired(value[name], sub, `${at}.${name}`))
  }
  return missing
}

// ---------------------------------------------------------------- (a) the document itself

/** The operator console's static files (src/routes/console.ts): no bearer token (it is typed into the page), and /admin only redirects. */
const CONSOLE_PATHS = new Set(['/admin', '/admin/', '/admin/console.js', '/admin/console.css'])

t.test('openapi.yaml is an OpenAPI 3.1 document whose operations all have an operationId and responses', async (t) => {
  t.match(str(spec.openapi), /^3\.1\.\d+$/)
  t.ok(str(obj(spec.info).title) !== undefined && str(obj(spec.info).version) !== undefined, 'info has title and version')

  const ids = new Set<string>()
  for (const { method, path, op } of operations()) {
    const name = `${method} ${path}`
    const id = str(op.operationId)
    t.ok(id !== undefined && /^[A-Za-z][A-Za-z0-9_]*$/.test(id), `${name} has an operationId`)
    if (id !== undefined) {
      t.notOk(ids.has(id), `operationId ${id} is unique`)
      ids.add(id)
    }
    const responses = Object.entries(obj(op.responses))
    t.ok(responses.length > 0, `${name} has responses`)
    t.ok(responses.some(([code]) => /^2\d\d$/.test(code) || (CONSOLE_PATHS.has(path) && /^30[12]$/.test(code))), `${name} documents a success`)
    for (const [code, response] of responses) {
      t.match(code, /^[1-5](\d\d|XX)$/, `${name} response code ${code}`)
      t.type(str(deref(response).description), 'string', `${name} ${code} has a description`)
    }
    const declared = parametersOf(op).filter(p => p.in === 'path').map(p => str(p.name))
    const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map(m => m[1])
    t.same(declared.sort(), inPath.sort(), `${name} declares exactly its path parameters`)
    for (const p of parametersOf(op).filter(p => p.in === 'path')) t.equal(p.required, true, `${name} path parameter ${str(p.name) ?? ''} is required`)
  }
})

t.test('no value is null (a YAML slip such as an unquoted comma in a flow mapping)', async (t) => {
  const nulls: string[] = []
  const walk = (node: Json, at: string): void => {
    if (node === null) nulls.push(at)
    else if (Array.isArray(node)) node.forEach((v, i) => { walk(v, `${at}/${i}`) })
    else if (isObj(node)) Object.entries(node).forEach(([k, v]) => { walk(v, `${at}/${k}`) })
  }
  walk(spec, '')
  t.same(nulls, [])
})

t.test('every $ref resolves', async (t) => {
  const refs: string[] = []
  const walk = (node: Json): void => {
    if (Array.isArray(node)) node.forEach(walk)
    else if (isObj(node)) {
      const ref = str(node.$ref)
      if (ref !== undefined) refs.push(ref)
      Object.values(node).forEach(walk)
    }
  }
  walk(spec)
  t.ok(refs.length > 0)
  for (const ref of new Set(refs)) t.doesNotThrow(() => deref({ $ref: ref }), ref)
})

t.test('secrets and security are described', async (t) => {
  const schemes = obj(obj(spec.components).securitySchemes)
  t.match(schemes.adminBearer, { type: 'http', scheme: 'bearer' })
  for (const { method, path, op } of operations()) {
    const security = JSON.stringify(op.security ?? spec.security ?? [])
    if (path.startsWith('/admin/') && !CONSOLE_PATHS.has(path)) t.match(security, /adminBearer/, `${method} ${path} requires adminBearer`)
    else t.notMatch(security, /adminBearer/, `${method} ${path} does not require adminBearer`)
    for (const p of parametersOf(op).filter(p => p.name === 'enc-token' || p.name === 'token')) {
      t.match(str(p.description), /secret/i, `${method} ${path} ${str(p.name) ?? ''} is described as a secret`)
      t.equal(obj(p.schema).format, 'password', `${method} ${path} ${str(p.name) ?? ''} is format: password`)
    }
  }
  for (const path of ['/cpix/getKey', '/v2/keys']) {
    t.ok(parametersOf(operation('POST', path)).some(p => p.name === 'enc-token' && p.in === 'query' && p.required === true), `${path} requires ?enc-token=`)
  }
  t.match(str(obj(spec.info).description), /never written to logs/)
})

t.test('SPEKE headers and bodies are described', async (t) => {
  const speke = operation('POST', '/cpix/getKey')
  const params = parametersOf(speke).map(p => `${str(p.in) ?? ''}:${str(p.name) ?? ''}`)
  t.ok(params.includes('header:X-Speke-Version'), 'X-Speke-Version request header')
  t.ok(params.includes('header:X-Speke-User-Agent'), 'X-Speke-User-Agent request header')
  t.same(Object.keys(obj(deref(obj(speke.responses)['200']).headers)).sort(), ['Speke-User-Agent', 'X-Speke-User-Agent', 'X-Speke-Version'])
  for (const [path, method] of [['/cpix/getKey', 'POST'], ['/v1/cpix/pallycon/getKey/{token}', 'POST'], ['/v2/cpix/pallycon/getKey/{token}', 'POST']]) {
    const body = deref(operation(method, path).requestBody)
    t.same(Object.keys(obj(body.content)).sort(), XML_TYPES, `${path} takes application/xml or text/xml`)
    t.match(str(body.description), /no Content-Type/, `${path} says a missing Content-Type is accepted`)
  }
  t.equal(operation('GET', '/cpix/anevia/{format}/{token}/{cid}').requestBody, undefined, 'Anevia has no body')
  const format = parametersOf(operation('GET', '/cpix/anevia/{format}/{token}/{cid}')).find(p => p.name === 'format')
  t.same(obj(format?.schema).enum, ['dash', 'hls'])
  const heartbeat = contentOf(obj(operation('GET', '/cpix/getKey/heartbeat').responses)['200'])
  t.equal(obj(obj(heartbeat['text/plain']).schema).const, 'SUCCESS')
  t.same(Object.keys(obj(operation('GET', '/readyz').responses)).sort(), ['200', '503'])
  const rotation = parametersOf(operation('POST', '/v2/cpix/pallycon/getKey/{token}')).find(p => p.name === 'key-rotation')
  t.match(rotation, { in: 'query', required: false })
  const admin = parametersOf(operation('GET', '/admin/audit')).map(p => str(p.name))
  t.same(admin.sort(), ['content_id', 'cursor', 'fingerprint', 'kid', 'limit', 'outcome', 'route', 'since', 'tenant', 'until'])
})

t.test('SPEKE v2 errors list AWS exact strings from speke-cpix-rules.md §3', async (t) => {
  const rules = readFileSync(join(FIXTURES, 'speke-cpix-rules.md'), 'utf8')
  const section = rules.slice(rules.indexOf('## 3.'), rules.indexOf('## 4.'))
  const awsStrings = [...section.matchAll(/^\|[^|\n]+\| `([^`]+)` \|$/gm)].map(m => m[1])
  t.ok(awsStrings.length >= 10, `found the AWS strings (${awsStrings.length})`)
  const speke = operation('POST', '/cpix/getKey')
  const errorBodies: string[] = []
  for (const [code, response] of Object.entries(obj(speke.responses))) {
    if (!/^[45]/.test(code)) continue
    const content = contentOf(response)
    t.ok('text/plain' in content, `${code} is text/plain`)
    for (const [, e] of examplesOf(content['text/plain'])) if (typeof e.value === 'string') errorBodies.push(e.value)
  }
  for (const aws of awsStrings) {
    const pattern = new RegExp(`^${aws.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/<[^>]+>/g, '\\S+')}$`)
    t.ok(errorBodies.some(b => pattern.test(b)), `an example error body is "${aws}"`)
  }
})

// ---------------------------------------------------------------- (b) documented routes == registered routes

interface Route { method: string, path: string }

/** The routes of Fastify's printRoutes() tree (default options): each line's key appended to its ancestors' keys. */
function routesFromTree (tree: string): Route[] {
  const routes: Route[] = []
  const stack: string[] = []
  for (const line of tree.split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (.*)$/.exec(line)
    if (m === null) continue
    const entry = /^(.*?)(?: \(([A-Z]+(?:, [A-Z]+)*)\))?$/.exec(m[2])
    if (entry === null) continue
    stack.length = m[1].length / 4
    stack.push(entry[1])
    for (const method of entry[2]?.split(', ') ?? []) routes.push({ method, path: stack.join('') })
  }
  return routes
}

/** A path's shape with parameter names dropped: '/a/{x}' and '/a/:y' both become '/a/:'. */
const shape = (path: string): string => path.replace(/\{[^/}]+\}/g, ':').replace(/:[^/]*/g, ':')

/** Whether a documented path is served by a registered pattern; a trailing '*' stands for one or more parameter segments. */
function served (documented: string, registered: string): boolean {
  const doc = shape(documented)
  const reg = shape(registered)
  if (!reg.endsWith('*')) return doc === reg
  const prefix = reg.slice(0, -1)
  return doc.startsWith(prefix) && /^:(\/:)*$/.test(doc.slice(prefix.length))
}

function sampleRequest ({ path, op }: Operation): { url: string, headers: Record<string, string>, payload?: string } {
  const params = parametersOf(op)
  const value = (name: string): string => {
    const p = params.find(p => p.name === name)
    const schema = obj(p?.schema)
    const v = p?.example ?? schema.example ?? (Array.isArray(schema.enum) ? schema.enum[0] : undefined)
    return v === undefined || v === null ? 'sample' : String(v)
  }
  let url = path.replace(/\{([^}]+)\}/g, (_m, name: string) => value(name))
  const query = params.filter(p => p.in === 'query' && p.required === true).map(p => `${str(p.name) ?? ''}=${encodeURIComponent(value(str(p.name) ?? ''))}`)
  if (query.length > 0) url += `?${query.join('&')}`
  const headers: Record<string, string> = {}
  if (op.security !== undefined) headers.authorization = 'Bearer x'
  const content = contentOf(op.requestBody)
  const [type, media] = Object.entries(content)[0] ?? []
  if (type === undefined) return { url, headers }
  headers['content-type'] = type
  const first = examplesOf(media)[0]?.[1]?.value ?? obj(media).example
  const payload = typeof first === 'string' ? first : JSON.stringify(first ?? {})
  return { url, headers, payload }
}

t.test('the documented routes are exactly the routes the app registers', async (t) => {
  const server = await assembleProxy(loadConfig({ KMS_URL: 'local', ADMIN_TOKEN: 'openapi-test-admin-token-of-32-chars', DATA_DIR: t.testdir(), LOG_LEVEL: 'silent' }))
  t.teardown(async () => { await server.close() })
  const app = server.app
  await app.ready()
  const registered = routesFromTree(app.printRoutes()).filter(r => r.method !== 'HEAD')
  t.ok(registered.some(r => r.method === 'GET' && r.path === '/healthz'), 'the route tree was read')
  const documented = operations()

  for (const route of registered) {
    t.ok(documented.some(d => d.method === route.method && served(d.path, route.path)), `registered ${route.method} ${route.path} is documented in openapi.yaml`)
  }

  for (const operation of documented) {
    const name = `${operation.method} ${operation.path}`
    t.ok(registered.some(r => r.method === operation.method && served(operation.path, r.path)), `documented ${name} is registered`)
    const { url, headers, payload } = sampleRequest(operation)
    const res = await app.inject({ method: operation.method as 'GET' | 'POST', url, headers, payload })
    t.notOk(res.statusCode === 404 && res.body.startsWith('No route for'), `documented ${name} is routed (${url.split('?')[0]})`)
    t.ok(String(res.statusCode) in obj(operation.op.responses), `${name}: the sample request's status ${res.statusCode} is documented`)
  }
})

t.test('the route-tree reader and matcher', async (t) => {
  const app = fastify()
  app.get('/a/b', async () => 'x')
  app.post('/a/b/c', async () => 'x')
  app.get('/p/:format/*', async () => 'x')
  app.post('/w/*', async () => 'x')
  await app.ready()
  t.same(routesFromTree(app.printRoutes()).filter(r => r.method !== 'HEAD').sort((x, y) => x.path.localeCompare(y.path)), [
    { method: 'GET', path: '/a/b' }, { method: 'POST', path: '/a/b/c' }, { method: 'GET', path: '/p/:format/*' }, { method: 'POST', path: '/w/*' }
  ])
  t.ok(served('/p/{format}/{token}/{cid}', '/p/:format/*'))
  t.ok(served('/w/{token}', '/w/*'))
  t.notOk(served('/w', '/w/*'))
  t.notOk(served('/w/x', '/w/*'))
  t.ok(served('/a/{id}', '/a/:name'))
  await app.close()
})

t.test('openapiRoutes serves the file as application/yaml', async (t) => {
  t.equal(fileURLToPath(OPENAPI_FILE), resolve(PROJECT_ROOT, 'openapi.yaml'))
  const app = fastify()
  await app.register(openapiRoutes)
  t.teardown(async () => { await app.close() })
  const res = await app.inject({ method: 'GET', url: '/openapi.yaml' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/yaml/)
  t.equal(res.body, text)
})

// ---------------------------------------------------------------- (c) examples

t.test('XML request examples are real documents that pass validation in their dialect', async (t) => {
  const seen = new Set<string>()
  for (const { method, path, op } of operations()) {
    const content = contentOf(op.requestBody)
    for (const type of Object.keys(content).filter(type => XML_TYPES.includes(type))) {
      for (const [name, example] of examplesOf(content[type])) {
        const where = `${method} ${path} ${name}`
        const value = str(example.value)
        const dialect = str(example['x-dialect']) as Dialect | undefined
        if (value === undefined) { t.fail(`${where} has a string value`); continue }
        t.ok(dialect !== undefined && DIALECTS.includes(dialect), `${where} names its dialect`)
        if (dialect === undefined) continue
        seen.add(dialect)
        t.doesNotThrow(() => { validateRequest(parseCpix(decodeXmlBytes(Buffer.from(value, 'utf8'))), dialect) }, `${where} is a valid ${dialect} request`)
        const fixture = str(example['x-fixture'])
        t.ok(fixture !== undefined, `${where} names its fixture`)
        if (fixture !== undefined) t.equal(value.trimEnd(), exampleText(fixture).trimEnd(), `${where} is ${fixture} verbatim`)
      }
    }
  }
  t.same([...seen].sort(), ['pallycon', 'speke-v1', 'speke-v2.0'], 'SPEKE v1, SPEKE v2 and PallyCon API requests are shown')
})

t.test('XML response examples are real CPIX documents', async (t) => {
  let count = 0
  for (const { method, path, op } of operations()) {
    for (const [code, response] of Object.entries(obj(op.responses))) {
      const content = contentOf(response)
      for (const type of Object.keys(content).filter(type => XML_TYPES.includes(type))) {
        for (const [name, example] of examplesOf(content[type])) {
          const where = `${method} ${path} ${code} ${name}`
          const value = str(example.value) ?? ''
          count++
          t.doesNotThrow(() => parseCpix(decodeXmlBytes(Buffer.from(value, 'utf8'))), `${where} parses`)
          const fixture = str(example['x-fixture'])
          t.ok(fixture !== undefined, `${where} names its fixture`)
          if (fixture !== undefined) t.equal(value.trimEnd(), exampleText(fixture).trimEnd(), `${where} is ${fixture} verbatim`)
        }
      }
    }
  }
  t.ok(count >= 5, `response examples: ${count}`)
  const anevia = examplesOf(contentOf(obj(operation('GET', '/cpix/anevia/{format}/{token}/{cid}').responses)['200'])['application/xml'])
  t.ok(anevia.some(([, e]) => e['x-fixture'] === 'pallycon/anevia-dash-response.xml'), 'the Anevia response is shown')
})

t.test('JSON examples carry every required field of their schema', async (t) => {
  for (const { method, path, op } of operations()) {
    const bodies: Array<[string, Json | undefined]> = [['request', op.requestBody], ...Object.entries(obj(op.responses))]
    for (const [code, node] of bodies) {
      const media = obj(contentOf(node)['application/json'])
      const examples: Array<[string, Json | undefined]> = examplesOf(media).map(([name, e]) => [name, e.value])
      if (media.example !== undefined) examples.push(['example', media.example])
      for (const [name, value] of examples) {
        t.same(missingRequired(value, media.schema), [], `${method} ${path} ${code} ${name} has the required fields`)
      }
    }
  }
})

t.test('/v2/keys examples are PallyCon Python client output and valid requests', async (t) => {
  const keys = operation('POST', '/v2/keys')
  const replies = examplesOf(contentOf(obj(keys.responses)['200'])['application/json'])
  t.ok(replies.length >= 2)
  for (const [name, example] of replies) {
    const fixture = str(example['x-fixture'])
    t.ok(fixture?.startsWith('pallycon/python-client/'), `${name} comes from the Python client`)
    if (fixture !== undefined) t.same(example.value, JSON.parse(fixtureText(fixture)), `${name} is ${fixture}`)
    const list = obj(example.value).content_key_list
    t.ok(Array.isArray(list) && list.length > 0, `${name} has keys`)
  }
  const schemas = obj(obj(spec.components).schemas)
  const requestSchema = deref(contentOf(keys.requestBody)['application/json'] === undefined ? undefined : obj(contentOf(keys.requestBody)['application/json']).schema)
  t.equal(requestSchema, schemas.JsonKeyRequest)
  const drmEnum = obj(obj(obj(requestSchema.properties).drm_types).items).enum
  t.same(Array.isArray(drmEnum) ? [...drmEnum].sort() : [], Object.keys(DRM_TYPES).sort(), 'drm_types lists the DRM types the key API knows')
  t.same(obj(obj(requestSchema.properties).encryption_scheme).enum, ['cenc', 'cbcs'])
  for (const [name, example] of examplesOf(contentOf(keys.requestBody)['application/json'])) {
    const value = obj(example.value)
    const drms = Array.isArray(value.drm_types) ? value.drm_types : []
    t.ok(drms.every(d => typeof d === 'string' && Array.isArray(drmEnum) && drmEnum.includes(d)), `${name} uses known DRM types`)
    t.ok(typeof value.key_rotation !== 'boolean' || !value.key_rotation || typeof value.period_index === 'number', `${name} gives period_index with key_rotation`)
  }
})
