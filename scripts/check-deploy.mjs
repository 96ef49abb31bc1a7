// `npm run test:deploy`: promtool checks the alert rules (deploy/prometheus/alerts.yaml) and runs their unit tests
// (alerts.test.yaml). promtool comes from Debian's `prometheus` package (apt-get install prometheus), or PROMTOOL=path.
// Prints one line per check and "N passed, N failed"; exits non-zero on any failure or when promtool is missing.

import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const rules = join(root, 'deploy', 'prometheus', 'alerts.yaml')
const tests = join(root, 'deploy', 'prometheus', 'alerts.test.yaml')
const promtool = process.env.PROMTOOL ?? 'promtool'

function run (args) {
  const result = spawnSync(promtool, args, { cwd: root, encoding: 'utf8' })
  if (result.error !== undefined) {
    console.error(`check-deploy: cannot run ${promtool} (${result.error.message}): apt-get install -y --no-install-recommends prometheus, or set PROMTOOL`)
    process.exit(2)
  }
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim() }
}

let passed = 0
let failed = 0
const report = (ok, name, output) => {
  if (ok) passed++
  else failed++
  console.log(`${ok ? 'ok' : 'not ok'} - ${name}`)
  if (!ok) console.log(output.replace(/^/gm, '    '))
}

const version = run(['--version']).output.split('\n')[0]
console.log(`# ${version}`)

const check = run(['check', 'rules', rules])
report(check.ok, `promtool check rules ${rules.slice(root.length + 1)}: ${/(\d+) rules found/.exec(check.output)?.[0] ?? 'no rules found'}`, check.output)

// One result per evaluation of alerts.test.yaml; promtool names each failed one "alertname: X, time: T".
const evaluations = parse(readFileSync(tests, 'utf8')).tests.flatMap(group => group.alert_rule_test ?? [])
  .map(e => `${e.alertname} at ${e.eval_time}`)
const unit = run(['test', 'rules', tests])
const failures = new Set([...unit.output.matchAll(/alertname: (\S+), time: (\S+),/g)].map(m => `${m[1]} at ${m[2]}`))
if (!unit.ok && failures.size === 0) {
  // The file itself did not load (syntax, a rule file missing): nothing was evaluated.
  report(false, `promtool test rules ${tests.slice(root.length + 1)}`, unit.output)
} else {
  for (const evaluation of evaluations) report(!failures.has(evaluation), `alert ${evaluation}`, unit.output)
}

console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
