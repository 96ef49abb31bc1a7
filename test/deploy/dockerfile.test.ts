// Static checks of the Dockerfile, .dockerignore, docker/compose.yaml and docker/tenants.example.json (no Docker
// engine needed). Each check also runs on a deliberately broken variant, to show it can fail. The HEALTHCHECK
// commands are run for real against a local HTTP server.

import t from 'tap'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseDocument } from 'yaml'
import type { Dockerfile, Stage } from './dockerfile-checks.js'
import {
  execForm, expand, imageTagProblems, isRootUser, parseDockerfile, parseHealthcheck, parseInstructions, stageUser
} from './dockerfile-checks.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const DOCKER_DIR = join(ROOT, 'docker')
const DOCKERFILE = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
const DOCKERIGNORE = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
const COMPOSE = readFileSync(join(DOCKER_DIR, 'compose.yaml'), 'utf8')
const TENANTS = readFileSync(join(DOCKER_DIR, 'tenants.example.json'), 'utf8')
const README = readFileSync(join(DOCKER_DIR, 'README.md'), 'utf8')

/** Replace `from` (which must occur) in the Dockerfile. */
function variant (from: string | RegExp, to: string): string {
  const changed = DOCKERFILE.replace(from, to)
  if (changed === DOCKERFILE) throw new Error(`variant: ${String(from)} does not occur in the Dockerfile`)
  return changed
}

const runtimeStage = (df: Dockerfile): Stage | undefined => df.stages[df.stages.length - 1]
const buildStage = (df: Dockerfile): Stage | undefined => df.stages.find((s) => s.name === 'build') ?? df.stages[0]
const argsOf = (stage: Stage | undefined, keyword: string): string[] =>
  (stage?.instructions ?? []).filter((i) => i.keyword === keyword).map((i) => i.args)

/** KEY=value pairs of ENV instructions (and the legacy `ENV KEY value`). */
function envOf (stage: Stage | undefined): Map<string, string> {
  const env = new Map<string, string>()
  for (const args of argsOf(stage, 'ENV')) {
    if (!args.includes('=')) {
      const [key, ...value] = args.split(/\s+/)
      env.set(key as string, value.join(' '))
      continue
    }
    for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) env.set(m[1] as string, (m[2] as string).replace(/^"(.*)"$/, '$1'))
  }
  return env
}

function stageProblems (df: Dockerfile): string[] {
  const problems: string[] = []
  if (df.stages.length < 2) problems.push(`${df.stages.length} stage(s); a multi-stage build needs at least 2`)
  for (const stage of df.stages) if (stage.name === undefined) problems.push(`FROM ${stage.from} has no AS name`)
  const names = new Set(df.stages.flatMap((s) => (s.name === undefined ? [] : [s.name])))
  for (const stage of df.stages) problems.push(...imageTagProblems(stage.image, names))
  return problems
}

function buildProblems (df: Dockerfile): string[] {
  const build = buildStage(df)
  const runtime = runtimeStage(df)
  if (build === undefined || build === runtime) return ['no build stage separate from the runtime stage']
  const problems: string[] = []
  const script = argsOf(build, 'RUN').join('\n')
  const steps = [/\bnpm ci\b/, /\bnpm run build\b/, /\bnpm prune\b[^\n&;|]*--omit=dev/]
  const positions = steps.map((re) => script.search(re))
  steps.forEach((re, i) => { if (positions[i] === -1) problems.push(`the build stage does not run ${String(re)}`) })
  if (positions.every((p) => p >= 0) && !(positions[0]! < positions[1]! && positions[1]! < positions[2]!)) {
    problems.push('the build stage must run npm ci, then npm run build, then npm prune --omit=dev')
  }
  if (!/^node:\d+-[a-z]+-slim(@sha256:[0-9a-f]{64})?$/.test(build.image)) problems.push(`build image ${build.image} is not a pinned node:<major>-<distro>-slim`)
  if (runtime !== undefined && runtime.image !== build.image) problems.push(`runtime image ${runtime.image} differs from build image ${build.image}`)
  return problems
}

function runtimeProblems (df: Dockerfile): string[] {
  const runtime = runtimeStage(df)
  const build = buildStage(df)
  if (runtime === undefined) return ['no stages']
  const problems: string[] = []
  const user = stageUser(runtime)
  if (isRootUser(user)) problems.push(`the runtime stage runs as ${user ?? 'root (no USER)'}`)
  const env = envOf(runtime)
  if (env.get('NODE_ENV') !== 'production') problems.push(`NODE_ENV is ${env.get('NODE_ENV') ?? 'unset'}`)
  if (env.get('DATA_DIR') !== '/app/data') problems.push(`DATA_DIR is ${env.get('DATA_DIR') ?? 'unset'}`)
  if (argsOf(runtime, 'WORKDIR').pop() !== '/app') problems.push('WORKDIR is not /app')
  const volumes = argsOf(runtime, 'VOLUME').flatMap((a) => execForm(a) ?? a.split(/\s+/))
  if (!volumes.includes('/app/data')) problems.push('no VOLUME /app/data')
  const ports = argsOf(runtime, 'EXPOSE').flatMap((a) => a.split(/\s+/)).map((p) => p.replace(/\/tcp$/, ''))
  if (!ports.includes('8080')) problems.push(`EXPOSE ${ports.join(' ') || '(none)'} does not include 8080`)
  // dist/ and the pruned node_modules come from the build stage; package.json carries "type": "module".
  const copied = argsOf(runtime, 'COPY')
    .filter((a) => build?.name !== undefined && a.includes(`--from=${build.name}`))
    .map((a) => a.split(/\s+/).filter((w) => !w.startsWith('--')).slice(0, -1).join(' '))
  for (const path of ['/app/dist', '/app/node_modules', '/app/package.json']) {
    if (!copied.some((sources) => sources.split(' ').includes(path))) problems.push(`the runtime stage does not copy ${path} from the build stage`)
  }
  const cmd = argsOf(runtime, 'CMD').pop()
  const exec = cmd === undefined ? undefined : execForm(cmd)
  if (exec === undefined) problems.push(`CMD ${cmd ?? '(none)'} is not exec form`)
  else if (JSON.stringify(exec) !== JSON.stringify(['node', 'dist/main.js'])) problems.push(`CMD is ${JSON.stringify(exec)}`)
  if (argsOf(runtime, 'ENTRYPOINT').length > 0) problems.push('an ENTRYPOINT would wrap the CMD')
  return problems
}

function healthcheckProblems (df: Dockerfile): string[] {
  const args = argsOf(runtimeStage(df), 'HEALTHCHECK').pop()
  if (args === undefined) return ['no HEALTHCHECK in the runtime stage']
  const check = parseHealthcheck(args)
  if (check.command === undefined) return ['HEALTHCHECK NONE']
  const problems: string[] = []
  if (check.command[0] !== 'node') problems.push(`the HEALTHCHECK runs ${check.command[0]}, not node (slim images have no curl or wget)`)
  const text = check.command.join(' ')
  if (!text.includes('/healthz')) problems.push('the HEALTHCHECK does not ask /healthz')
  if (!text.includes('127.0.0.1')) problems.push('the HEALTHCHECK does not ask 127.0.0.1')
  return problems
}

const df = parseDockerfile(DOCKERFILE)

t.test('the instruction reader joins continuations and skips comments', async (t) => {
  const instructions = parseInstructions([
    '# syntax=docker/dockerfile:1',
    'FROM node:22-bookworm-slim AS build',
    'RUN npm ci \\',
    '  # a comment inside the continuation',
    '',
    ' && npm run build',
    'cmd ["node", "x.js"]'
  ].join('\n'))
  t.same(instructions.map((i) => [i.keyword, i.args, i.line]), [
    ['FROM', 'node:22-bookworm-slim AS build', 2],
    ['RUN', 'npm ci  && npm run build', 3],
    ['CMD', '["node", "x.js"]', 7]
  ])
  t.same(parseInstructions('# escape=`\nFROM a:1\nRUN one `\n two').map((i) => i.args), ['a:1', 'one  two'], 'the escape directive is honoured')
  t.same(execForm('["node", "dist/main.js"]'), ['node', 'dist/main.js'])
  t.equal(execForm('node dist/main.js'), undefined, 'shell form')
  t.equal(execForm('[node, dist/main.js]'), undefined, 'invalid JSON runs as shell form')
  t.equal(expand('${A}:${B:-x}:$A', new Map([['A', 'a']])), 'a:x:a')
})

t.test('multi-stage: every FROM has AS, no latest tags', async (t) => {
  t.ok(df.stages.length >= 2, `${df.stages.length} stages`)
  t.same(stageProblems(df), [])
  t.same(imageTagProblems('node:22-bookworm-slim@sha256:' + 'a'.repeat(64), new Set()), [], 'a digest pin is fine')
  t.match(stageProblems(parseDockerfile(variant(/ AS runtime\b/, ''))), [/has no AS name/], 'a FROM without AS is caught')
  t.match(stageProblems(parseDockerfile(DOCKERFILE.slice(DOCKERFILE.indexOf('FROM ${NODE_IMAGE} AS runtime')))), [/1 stage/], 'a single-stage file is caught')
  t.match(stageProblems(parseDockerfile(variant('ARG NODE_IMAGE=node:24-bookworm-slim', 'ARG NODE_IMAGE=node:latest'))), [/latest tag/], 'an ARG default with latest is caught')
  t.match(stageProblems(parseDockerfile(variant('ARG NODE_IMAGE=node:24-bookworm-slim', 'ARG NODE_IMAGE=node'))), [/no tag/], 'an untagged image is caught')
  t.match(stageProblems(parseDockerfile(variant('FROM ${NODE_IMAGE} AS runtime', 'FROM docker.io/library/node:latest AS runtime'))), [/latest tag/], 'a literal latest tag is caught')
})

t.test('build stage: npm ci, npm run build, npm prune --omit=dev on a pinned slim node image', async (t) => {
  t.same(buildProblems(df), [])
  t.match(buildStage(df)?.image, /^node:\d+-bookworm-slim$/)
  t.match(buildProblems(parseDockerfile(variant('npm ci --no-audit', 'npm install --no-audit'))), [/npm ci/], 'npm install instead of npm ci is caught')
  t.match(buildProblems(parseDockerfile(variant('npm prune --omit=dev', 'npm prune'))), [/omit=dev/], 'a prune that keeps dev dependencies is caught')
  t.match(buildProblems(parseDockerfile(variant('RUN npm run build \\\n && npm prune', 'RUN npm prune --omit=dev && npm run build \\\n && npm prune'))), [/then npm run build/], 'pruning before the build is caught')
  t.match(buildProblems(parseDockerfile(variant('FROM ${NODE_IMAGE} AS runtime', 'FROM node:22-alpine AS runtime'))), [/differs from build image/], 'a different runtime base is caught')
})

t.test('runtime stage: non-root, production, /app, data volume, port 8080, exec-form CMD', async (t) => {
  t.same(runtimeProblems(df), [])
  t.equal(stageUser(runtimeStage(df) as Stage), 'node')
  t.match(runtimeProblems(parseDockerfile(variant(/^USER node$/m, 'USER root'))), [/runs as root/], 'USER root is caught')
  t.match(runtimeProblems(parseDockerfile(variant(/^USER node$/m, 'USER 0:0'))), [/runs as 0:0/], 'USER 0 is caught')
  t.match(runtimeProblems(parseDockerfile(variant(/^USER node\n/m, ''))), [/no USER/], 'a missing USER is caught')
  t.match(runtimeProblems(parseDockerfile(variant('NODE_ENV=production', 'NODE_ENV=development'))), [/NODE_ENV is development/])
  t.match(runtimeProblems(parseDockerfile(variant('DATA_DIR=/app/data', 'DATA_DIR=/data'))), [/DATA_DIR is \/data/])
  t.match(runtimeProblems(parseDockerfile(variant('VOLUME /app/data', 'VOLUME /data'))), [/no VOLUME/])
  t.match(runtimeProblems(parseDockerfile(variant('EXPOSE 8080', 'EXPOSE 3000'))), [/does not include 8080/], 'a wrong port is caught')
  t.match(runtimeProblems(parseDockerfile(variant(/^COPY --from=build \/app\/package\.json .*\n/m, ''))), [/package\.json/], 'a missing package.json (ESM) is caught')
  t.match(runtimeProblems(parseDockerfile(variant('CMD ["node", "dist/main.js"]', 'CMD node dist/main.js'))), [/not exec form/], 'a shell-form CMD is caught')
  t.match(runtimeProblems(parseDockerfile(variant('CMD ["node", "dist/main.js"]', 'CMD ["npm", "start"]'))), [/CMD is \["npm","start"\]/], 'npm start (a shell between signals and node) is caught')
})

t.test('HEALTHCHECK asks /healthz with node', async (t) => {
  t.same(healthcheckProblems(df), [])
  const check = parseHealthcheck(argsOf(runtimeStage(df), 'HEALTHCHECK').pop() as string)
  t.ok(check.options.interval !== undefined && check.options.timeout !== undefined, 'interval and timeout are set')
  t.match(healthcheckProblems(parseDockerfile(variant(/^HEALTHCHECK [\s\S]*?\n\n/m, ''))), ['no HEALTHCHECK in the runtime stage'], 'a missing HEALTHCHECK is caught')
  t.match(healthcheckProblems(parseDockerfile(variant(/^HEALTHCHECK [\s\S]*?\n\n/m, 'HEALTHCHECK NONE\n\n'))), ['HEALTHCHECK NONE'])
  t.match(healthcheckProblems(parseDockerfile(variant(/^HEALTHCHECK [\s\S]*?\n\n/m, 'HEALTHCHECK CMD curl -f http://127.0.0.1:8080/healthz\n\n'))), [/runs \/bin\/sh/], 'curl in a shell is caught')
  t.match(healthcheckProblems(parseDockerfile(variant("/healthz'", "/readyz'"))), [/does not ask \/healthz/], 'another path is caught')
})

/** Run a healthcheck command (exec form, node first) with PORT pointing at a local server; resolves its exit code. */
async function runHealthcheck (command: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return await new Promise((resolve) => {
    execFile(process.execPath, command.slice(1), { env: { ...process.env, ...env }, timeout: 15000 }, (err) => {
      resolve(err === null ? 0 : typeof err.code === 'number' ? err.code : -1)
    })
  })
}

t.test('the HEALTHCHECK commands pass on 200 from /healthz and fail otherwise', async (t) => {
  let status = 200
  const paths: string[] = []
  const server = createServer((req, res) => {
    paths.push(req.url ?? '')
    res.writeHead(req.url === '/healthz' ? status : 404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const port = (server.address() as AddressInfo).port

  const dockerCheck = parseHealthcheck(argsOf(runtimeStage(df), 'HEALTHCHECK').pop() as string).command as string[]
  const composeCheck = (compose().services['speke-proxy']?.healthcheck?.test ?? []).slice(1).map((a) => a.replace('127.0.0.1:8080', `127.0.0.1:${port}`))
  t.equal(composeCheck[0], 'node', 'the compose healthcheck runs node')
  for (const [name, command] of [['Dockerfile', dockerCheck], ['compose.yaml', composeCheck]] as const) {
    status = 200
    t.equal(await runHealthcheck(command, { PORT: String(port) }), 0, `${name}: healthy on 200`)
    status = 503
    t.equal(await runHealthcheck(command, { PORT: String(port) }), 1, `${name}: unhealthy on 503`)
  }
  t.same([...new Set(paths)], ['/healthz'], 'only /healthz was asked')
  server.close()
  t.equal(await runHealthcheck(dockerCheck, { PORT: String(port) }), 1, 'unhealthy when nothing listens')
})

t.test('.dockerignore keeps local state out and lets the build inputs in', async (t) => {
  const patterns = DOCKERIGNORE.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  for (const entry of ['node_modules', 'dist', 'data', '.git', '.tap', 'coverage']) t.ok(patterns.includes(entry), `ignores ${entry}`)
  const ignored = (path: string): boolean => {
    let result = false
    for (const raw of patterns) {
      const negate = raw.startsWith('!')
      const pattern = raw.replace(/^!/, '').replace(/^\/+|\/+$/g, '')
      const re = new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*') + '(/.*)?$')
      if (re.test(path)) result = !negate
    }
    return result
  }
  t.ok(ignored('node_modules/fastify/package.json'), 'the matcher sees files under an ignored folder')
  const sources = df.stages.flatMap((s) => argsOf(s, 'COPY').filter((a) => !a.includes('--from=')))
    .flatMap((a) => a.split(/\s+/).filter((w) => !w.startsWith('--')).slice(0, -1))
  t.ok(sources.length >= 3, `COPY sources: ${sources.join(' ')}`)
  for (const source of sources) {
    t.notOk(ignored(source.replace(/^\.\//, '')), `${source} (copied by the Dockerfile) is not ignored`)
    t.ok(existsSync(join(ROOT, source)), `${source} exists`)
  }
})

interface ComposeService {
  image?: string
  build?: { context?: string, dockerfile?: string }
  environment?: Record<string, string | number | boolean | null> | string[]
  healthcheck?: { test?: string[] }
  depends_on?: Record<string, { condition?: string }> | string[]
  volumes?: string[]
  ports?: string[]
}
interface ComposeFile { services: Record<string, ComposeService | undefined>, volumes?: Record<string, unknown> }

function compose (text: string = COMPOSE): ComposeFile {
  const doc = parseDocument(text)
  if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join('; '))
  return doc.toJS() as ComposeFile
}

function environment (service: ComposeService | undefined): Map<string, string> {
  const env = service?.environment ?? {}
  const entries = Array.isArray(env)
    ? env.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as [string, string])
    : Object.entries(env).map(([k, v]) => [k, String(v ?? '')] as [string, string])
  return new Map(entries)
}

/** Compose interpolation with every variable unset: ${A:-x} → x, ${A:?msg} → '' (compose would stop there). */
const withDefaults = (text: string): string => text.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?(?::?\?[^}]*)?\}/g, (_w, fallback?: string) => fallback ?? '')

function composeProblems (file: ComposeFile): string[] {
  const problems: string[] = []
  const proxy = file.services['speke-proxy']
  const postgres = file.services.postgres
  if (proxy === undefined) return ['no speke-proxy service']
  if (postgres === undefined) return ['no postgres service']
  for (const [name, service] of [['speke-proxy', proxy], ['postgres', postgres]] as const) {
    const test = service.healthcheck?.test
    if (!Array.isArray(test) || test.length < 2 || !['CMD', 'CMD-SHELL'].includes(test[0] as string)) problems.push(`${name} has no healthcheck test`)
  }
  if (!(proxy.healthcheck?.test ?? []).join(' ').includes('/healthz')) problems.push('the speke-proxy healthcheck does not ask /healthz')
  if (!(postgres.healthcheck?.test ?? []).join(' ').includes('pg_isready')) problems.push('the postgres healthcheck does not use pg_isready')
  const dependsOn = proxy.depends_on
  if (Array.isArray(dependsOn) || dependsOn?.postgres?.condition !== 'service_healthy') problems.push('speke-proxy does not wait for postgres to be service_healthy')
  if (proxy.build?.context !== '..') problems.push(`build context is ${String(proxy.build?.context)}`)
  const env = environment(proxy)
  if (env.get('TENANTS_FILE') !== '/config/tenants.json') problems.push(`TENANTS_FILE is ${String(env.get('TENANTS_FILE'))}`)
  if (!env.has('KMS_URL')) problems.push('KMS_URL is not set')
  if (!/\$\{ADMIN_TOKEN\b/.test(env.get('ADMIN_TOKEN') ?? '')) problems.push('ADMIN_TOKEN does not come from the environment')
  const pgEnv = environment(postgres)
  try {
    const url = new URL(withDefaults(env.get('AUDIT_DATABASE_URL') ?? ''))
    if (!['postgres:', 'postgresql:'].includes(url.protocol) || url.hostname !== 'postgres') problems.push(`AUDIT_DATABASE_URL ${url.href} does not point at the postgres service`)
    if (url.username !== pgEnv.get('POSTGRES_USER') || url.pathname !== `/${pgEnv.get('POSTGRES_DB') ?? ''}`) problems.push('AUDIT_DATABASE_URL user/database differ from POSTGRES_USER/POSTGRES_DB')
    if (decodeURIComponent(url.password) !== withDefaults(pgEnv.get('POSTGRES_PASSWORD') ?? '')) problems.push('AUDIT_DATABASE_URL password differs from POSTGRES_PASSWORD')
  } catch {
    problems.push(`AUDIT_DATABASE_URL ${String(env.get('AUDIT_DATABASE_URL'))} is not a URL`)
  }
  const volumes = (proxy.volumes ?? []).map(withDefaults)
  if (!volumes.some((v) => v.split(':')[1] === '/app/data')) problems.push('no volume at /app/data')
  const tenants = volumes.find((v) => v.split(':')[1] === '/config/tenants.json')
  if (tenants === undefined || tenants.split(':')[2] !== 'ro') problems.push('the tenants file is not mounted read-only at /config/tenants.json')
  else if (!existsSync(resolve(DOCKER_DIR, tenants.split(':')[0] as string))) problems.push(`the mounted tenants file ${tenants.split(':')[0] ?? ''} does not exist`)
  if (!(proxy.ports ?? []).map(withDefaults).some((p) => p.endsWith(':8080') || p === '8080')) problems.push('port 8080 is not published')
  if (!/^postgres:16(\.\d+)*(-[a-z0-9]+)?$/.test(postgres.image ?? '')) problems.push(`postgres image ${String(postgres.image)} is not postgres:16`)
  for (const [name, service] of Object.entries(file.services)) {
    if (service?.image !== undefined) problems.push(...imageTagProblems(service.image, new Set()).map((p) => `${name}: ${p}`))
  }
  const named = Object.keys(file.volumes ?? {})
  for (const v of [...volumes, ...(postgres.volumes ?? [])]) {
    const source = v.split(':')[0] as string
    if (!/^[./~]/.test(source) && !named.includes(source)) problems.push(`volume ${source} is not declared`)
  }
  return problems
}

t.test('docker/compose.yaml: proxy and postgres with healthchecks, the proxy waits for a healthy database', async (t) => {
  const file = compose()
  t.same(Object.keys(file.services).sort(), ['postgres', 'speke-proxy'])
  t.same(composeProblems(file), [])
  t.ok(existsSync(resolve(DOCKER_DIR, file.services['speke-proxy']?.build?.context ?? '', file.services['speke-proxy']?.build?.dockerfile ?? 'Dockerfile')), 'the build context holds the Dockerfile')

  const broken = (from: string | RegExp, to: string): string[] => {
    const text = COMPOSE.replace(from, to)
    if (text === COMPOSE) throw new Error(`${String(from)} does not occur in compose.yaml`)
    return composeProblems(compose(text))
  }
  t.throws(() => compose('services: [\n'), 'invalid YAML is refused')
  t.match(broken('condition: service_healthy', 'condition: service_started'), [/service_healthy/], 'depends_on without service_healthy is caught')
  t.match(broken(/\n {4}healthcheck:\n {6}test: \["CMD", "pg_isready"[^\n]*(\n {6}[^\n]*)*/, ''), [/postgres has no healthcheck/], 'a postgres without healthcheck is caught')
  t.match(broken(/\n {4}healthcheck:\n {6}test: \["CMD", "node"[^\n]*(\n {6}[^\n]*)*/, ''), [/speke-proxy has no healthcheck/], 'a proxy without healthcheck is caught')
  t.match(broken('@postgres:5432', '@localhost:5432'), [/does not point at the postgres service/], 'a database URL not on the postgres service is caught')
  t.match(broken('POSTGRES_DB: speke_audit', 'POSTGRES_DB: other'), [/user\/database differ/])
  t.match(broken('/config/tenants.json:ro', '/config/tenants.json'), [/read-only/], 'a writable tenants mount is caught')
  t.match(broken('image: postgres:16-bookworm', 'image: postgres:latest'), [/postgres:16/, /latest/], 'postgres:latest is caught')
  t.match(broken('context: ..', 'context: .'), [/build context/])
  t.match(broken('ADMIN_TOKEN: ${ADMIN_TOKEN:-}', 'ADMIN_TOKEN: secret'), [/ADMIN_TOKEN/], 'a hard-coded ADMIN_TOKEN is caught')
  t.match(broken('./tenants.example.json}', './missing.json}'), [/does not exist/], 'a missing tenants file is caught')
})

t.test('docker/tenants.example.json and README: env: reference, sha256 credential hashes that match the documented credential', async (t) => {
  const { tenants } = JSON.parse(TENANTS) as { tenants: Array<{ id: string, encToken: string, credentials: string[] }> }
  t.ok(Array.isArray(tenants) && tenants.length > 0, 'at least one tenant')
  const [tenant] = tenants as [{ id: string, encToken: string, credentials: string[] }]
  t.match(tenant.encToken, /^env:[A-Z][A-Z0-9_]*$/, 'the enc-token is an env: reference, not a secret')
  const variable = tenant.encToken.slice(4)
  t.ok(environment(compose().services['speke-proxy']).has(variable), `compose passes ${variable} into the container`)
  for (const credential of tenant.credentials) t.match(credential, /^sha256:[0-9a-f]{64}$/)

  const documented = /example credential in\s+`tenants\.example\.json` is\s+`([^`]+)`/.exec(README)?.[1]
  t.ok(documented, 'README names the example credential')
  const hash = createHash('sha256').update(documented ?? '', 'utf8').digest('hex')
  t.ok(tenant.credentials.includes(`sha256:${hash}`), 'the documented credential hashes to a stored credential')
  t.ok(README.includes("printf %s 'acme-example-credential-CHANGE-ME' | sha256sum") || README.includes('printf %s "$cred" | sha256sum'), 'README shows printf %s … | sha256sum')
  t.match(README, /-H 'content-type: application\/xml'/, 'README sends the SPEKE request with an XML content type')
  t.match(README, /curl -s http:\/\/localhost:8080\/cpix\/getKey\/heartbeat/, 'README curls the heartbeat')
  for (const name of ['KMS_URL', 'TENANTS_FILE', 'AUDIT_DATABASE_URL', 'ADMIN_TOKEN', 'DATA_DIR', 'AUDIT_HMAC_KEY', 'AUDIT_FAIL_OPEN', 'ALLOW_PASSTHROUGH', 'LOG_LEVEL']) {
    t.ok(README.includes(`| \`${name}\``), `README documents ${name}`)
  }
})

t.test('the image runs an LTS line of Node that package.json engines admits', async (t) => {
  const image = /^ARG NODE_IMAGE=node:(\d+)-/m.exec(DOCKERFILE)
  t.ok(image, 'the NODE_IMAGE default names a Node major version')
  const major = Number(image?.[1])
  t.equal(major % 2, 0, `Node ${major} is an even (LTS) line`)
  const engines = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node
  const admitted = engines.split('||').some((range) => {
    const m = /^\s*(\^|>=)(\d+)\./.exec(range)
    return m !== null && (m[1] === '^' ? Number(m[2]) === major : major >= Number(m[2]))
  })
  t.ok(admitted, `engines "${engines}" admits Node ${major}`)
})
