// The README's settings table stays true: every variable the code reads is documented, and nothing documented is unread.

import t from 'tap'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { PROJECT_ROOT } from './helpers/fixtures.js'

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : []
  })
}

t.test('settings table matches the environment variables read in src/', async t => {
  const code = sources(join(PROJECT_ROOT, 'src')).map(f => readFileSync(f, 'utf8')).join('\n')
  const read = new Set<string>()
  for (const m of code.matchAll(/\b(?:text|integer|boolean|oneOf|url)\(env, '([A-Z_]+)'/g)) read.add(m[1])
  for (const m of code.matchAll(/\benv\.([A-Z][A-Z_]+)\b/g)) read.add(m[1])
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8')
  const table = readme.slice(readme.indexOf('## Settings'), readme.indexOf('## Tenants'))
  const documented = new Set<string>()
  for (const row of table.split('\n').filter(l => l.startsWith('| `'))) {
    const first = row.split('|')[1]
    for (const m of first.matchAll(/`([A-Z_]+)`/g)) documented.add(m[1])
  }
  t.ok(read.size > 25, `${read.size} variables read`)
  t.same([...read].filter(v => !documented.has(v)).sort(), [], 'read but not documented')
  t.same([...documented].filter(v => !read.has(v)).sort(), [], 'documented but not read')
})
