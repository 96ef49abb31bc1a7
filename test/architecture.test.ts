// Specification of the layering (docs/architecture.md): every module of src/ sits in one layer,
// and imports only from its own layer or below.

import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, posix, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', 'src')

/** Top to bottom; a folder entry ends in '/'. The same table is drawn in docs/architecture.md. */
const LAYERS: ReadonlyArray<{ name: string, modules: readonly string[] }> = [
  { name: 'entry', modules: ['main.ts', 'cli.ts', 'serve.ts'] },
  { name: 'assembly', modules: ['proxy.ts', 'app.ts'] },
  { name: 'routes', modules: ['routes/'] },
  { name: 'http', modules: ['http/'] },
  { name: 'pipeline', modules: ['pipeline/'] },
  { name: 'services', modules: ['kms/', 'audit/', 'request-record.ts', 'metrics.ts', 'upstream-health.ts', 'logger.ts', 'config.ts', 'tls.ts'] },
  { name: 'core', modules: ['cpix/', 'tenants/', 'redact.ts'] },
  { name: 'base', modules: ['protocol.ts', 'errors.ts', 'error-codes.ts', 'version.ts'] }
]

/** Besides the layers: the CPIX core is pure (nothing outside cpix/ but the base layer). */
const PURE = 'cpix/'

interface Import { from: string, to: string }

function layerOf (module: string): number {
  return LAYERS.findIndex(layer => layer.modules.some(m => m.endsWith('/') ? module.startsWith(m) : module === m))
}

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith('.ts') ? [relative(SRC, path).split('\\').join('/')] : []
  })
}

/** Relative module specifiers of static imports, re-exports and dynamic imports, resolved to paths under src/ ('x.js' → 'x.ts'). */
function importsOf (module: string, text: string): Import[] {
  const specifiers = [
    ...text.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]/gm),
    ...text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
    ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)
  ].map(m => m[1])
  return specifiers
    .filter(s => s.startsWith('.'))
    .map(s => ({ from: module, to: posix.normalize(posix.join(posix.dirname(module), s)).replace(/\.js$/, '.ts') }))
}

/** What is wrong with one import: pointing up a layer, or out of the pure core. */
function problemOf ({ from, to }: Import): string | undefined {
  const a = layerOf(from)
  const b = layerOf(to)
  if (a === -1 || b === -1) return undefined
  if (b < a) return `${from} (${LAYERS[a].name}) imports ${to} (${LAYERS[b].name}): imports point down only`
  if (from.startsWith(PURE) && !to.startsWith(PURE) && LAYERS[b].name !== 'base') return `${from} imports ${to}: cpix/ is pure (cpix/ and the base layer only)`
  return undefined
}

const modules = sourceFiles(SRC)
const imports = modules.flatMap(m => importsOf(m, readFileSync(join(SRC, m), 'utf8')))

t.test('every module of src/ belongs to exactly one layer', async t => {
  t.same(modules.filter(m => layerOf(m) === -1), [], 'modules without a layer (add them to LAYERS here and in docs/architecture.md)')
  t.ok(imports.length > 100, `the imports were read (${imports.length})`)
})

t.test('every import points down (or stays in its layer)', async t => {
  t.same(imports.map(problemOf).filter(p => p !== undefined), [])
})

t.test('nothing under kms/, cpix/, audit/ or tenants/ imports from the pipeline, http or routes', async t => {
  const lower = /^(kms|cpix|audit|tenants)\//
  const upper = /^(pipeline|http|routes)\//
  t.same(imports.filter(i => lower.test(i.from) && upper.test(i.to)), [])
})

t.test('the checker itself: an upward import, an escape from the pure core and a fine one', async t => {
  const found = (module: string, text: string): Array<string | undefined> => importsOf(module, text).map(problemOf)
  t.match(found('kms/local/provider.ts', "import { dialectFor } from '../../pipeline/dialect.js'"), [/kms\/local\/provider\.ts \(services\) imports pipeline\/dialect\.ts \(pipeline\)/])
  t.match(found('metrics.ts', "import type { KeyResponse } from './pipeline/response.js'"), [/imports point down only/], 'type-only imports count')
  t.match(found('proxy.ts', "const { x } = await import('./main.js')"), [/proxy\.ts \(assembly\) imports main\.ts \(entry\)/], 'dynamic imports count')
  t.match(found('cpix/parse.ts', "import { decodeEncToken } from '../tenants/enc-token.js'"), [/cpix\/ is pure/])
  t.same(found('pipeline/key-request.ts', "import { parseCpix } from '../cpix/parse.js'\nexport { x } from './response.js'"), [undefined, undefined])
})
