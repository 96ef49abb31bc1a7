// Summarises a V8 .cpuprofile (node --cpu-prof): the functions with the most self time, and the share of time idle, in GC and in
// the program. Usage: node bench/profile-top.mjs FILE.cpuprofile [--top 25]

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } })
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'))
const byId = new Map(profile.nodes.map(n => [n.id, n]))
// Self time per node: each sample is one tick of the node on top of the stack, weighted by the time delta that follows it.
const self = new Map()
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0))
}
const byFunction = new Map()
const byArea = new Map()
let total = 0
for (const [id, us] of self) {
  const { callFrame } = byId.get(id)
  const file = callFrame.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '~/').replace(/^.*\/dist\//, 'dist/')
  const key = `${callFrame.functionName || '(anonymous)'} ${file === '' ? '' : `${file}:${callFrame.lineNumber + 1}`}`.trim()
  byFunction.set(key, (byFunction.get(key) ?? 0) + us)
  byArea.set(areaOf(callFrame), (byArea.get(areaOf(callFrame)) ?? 0) + us)
  total += us
}
const idle = byFunction.get('(idle)') ?? 0
const busy = total - idle
console.log(`samples ${profile.samples.length}, ${(total / 1e6).toFixed(1)} s, idle ${(100 * idle / total).toFixed(1)} %, GC ${(100 * (byFunction.get('(garbage collector)') ?? 0) / busy).toFixed(1)} % of busy`)
console.log(`by area (self time): ${[...byArea].filter(([a, us]) => a !== 'idle' && us / busy >= 0.005).sort((a, b) => b[1] - a[1]).map(([a, us]) => `${a} ${(100 * us / busy).toFixed(1)} %`).join(', ')}`)
console.log('| self % of busy | function |')
console.log('|---:|---|')
for (const [key, us] of [...byFunction].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
  console.log(`| ${(100 * us / busy).toFixed(1)} | \`${key}\` |`)
}

/** Where a function lives: speke-proxy's own code by directory, a dependency by package, else Node, V8 or GC. */
function areaOf ({ url, functionName }) {
  if (functionName === '(idle)') return 'idle'
  if (functionName === '(garbage collector)') return 'GC'
  const dep = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (dep !== null) return dep[1]
  const own = /\/dist\/(?:([^/]+)\/)?[^/]+$/.exec(url)
  if (own !== null) return `speke-proxy ${own[1] ?? '(top)'}`
  if (url.startsWith('node:')) return 'node internals'
  return url === '' ? 'native (regexps, V8 builtins, writev…)' : 'other'
}
