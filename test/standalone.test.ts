// The repository stands alone: nothing the code, tests, bench, scripts or README use lives outside it.

import t from 'tap'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PROJECT_ROOT } from './helpers/fixtures.js'

const SELF = fileURLToPath(import.meta.url)
const TEXT = /\.(ts|mjs|js|json|md|yaml|yml)$|^run$/

function files (path: string): string[] {
  if (!statSync(path).isDirectory()) return [path]
  return readdirSync(path).flatMap(name => name === 'node_modules' ? [] : files(join(path, name)))
}

/** Spellings of a path that leaves the checkout: the sibling shared folder or tool library, an absolute machine path. */
const OUTSIDE = [
  /\.\.\/(shared|\.library)\b/,
  /['"]\.\.['"]\s*,\s*['"](shared|\.library)['"]/,
  /\/work\/(main|shared)\b/,
  /(PROJECT_ROOT|FIXTURES)\s*,\s*['"]\.\.['"]/
]

export function outsideReferences (text: string): string[] {
  return text.split('\n').filter(line => OUTSIDE.some(re => re.test(line)))
}

t.test('the checker catches the spellings that once broke a fresh clone', async t => {
  // The samples are assembled here, so this file itself never spells a path outside the repository.
  const sibling = ['..', 'shared'].join('/')
  const curl = `--data-binary @${sibling}/fixtures/aws-speke-v2/x.xml`
  t.same(outsideReferences(`${curl}\nok`), [curl])
  t.same(outsideReferences(`resolve(PROJECT_ROOT, '..', '${'shared'}', 'xsd')`).length, 1)
  t.same(outsideReferences(`join(ROOT, '..', '${'shared'}', 'fixtures')`).length, 1)
  t.same(outsideReferences("join(ROOT, 'test', 'fixtures')"), [])
})

t.test('src, test, bench, scripts, .ci, README.md and package.json name no path outside the repository', async t => {
  const roots = ['src', 'test', 'bench', 'scripts', '.ci', 'examples', 'docker', 'README.md', 'package.json', 'Dockerfile', 'openapi.yaml']
  const checked = roots.flatMap(r => files(join(PROJECT_ROOT, r)))
    .filter(f => f !== SELF && (TEXT.test(f) || f.endsWith('Dockerfile')) && !f.includes(`${join('test', 'fixtures')}`))
  t.ok(checked.length > 100, `${checked.length} files checked`)
  const found = checked.flatMap(f => outsideReferences(readFileSync(f, 'utf8')).map(line => `${relative(PROJECT_ROOT, f)}: ${line.trim()}`))
  t.same(found, [], 'no reference outside the repository')
})

t.test('every fixture folder is named in test/fixtures/SOURCES.md, and the DASH-IF vectors carry their licence', async t => {
  const fixtures = join(PROJECT_ROOT, 'test', 'fixtures')
  const sources = readFileSync(join(fixtures, 'SOURCES.md'), 'utf8')
  for (const dir of readdirSync(fixtures).filter(d => statSync(join(fixtures, d)).isDirectory())) {
    t.ok(sources.includes(`\`${dir}/`), `${dir}/ has its origin and licence in SOURCES.md`)
  }
  t.match(readFileSync(join(fixtures, 'dashif', 'LICENSE'), 'utf8'), /MIT License/)
})
