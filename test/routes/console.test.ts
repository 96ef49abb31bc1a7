// Specification of the operator console's serving (src/routes/console.ts) and of its files (console/): a strict CSP on
// every response, a fixed list of files, nothing inline, nothing from another origin, no HTML built from data.
// The console's behaviour in a browser is test/browser/console.browser.mjs (`npm run test:browser`).

import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import fastify from 'fastify'
import { assembleProxy } from '../../src/proxy.js'
import { loadConfig } from '../../src/config.js'
import { CONSOLE_CSP, CONSOLE_DIR, consoleRoutes } from '../../src/routes/console.js'
import { PROJECT_ROOT } from '../helpers/fixtures.js'

const EXACT_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
const ADMIN_TOKEN = 'console-test-admin-token-of-32-characters'
const dir = fileURLToPath(CONSOLE_DIR)
const file = (name: string): string => readFileSync(join(dir, name), 'utf8')

type Test = Parameters<Parameters<typeof t.test>[1]>[0]

async function proxyWith (t: Test, env: Record<string, string>): Promise<Awaited<ReturnType<typeof assembleProxy>>['app']> {
  const server = await assembleProxy(loadConfig({ KMS_URL: 'local', DATA_DIR: t.testdir(), LOG_LEVEL: 'silent', AUDIT_MIN_FREE_MB: '0', ...env }))
  t.teardown(async () => { await server.close() })
  return server.app
}

t.test('the console folder is console/ at the project root, shipped with the package', async (t) => {
  t.equal(dir, join(PROJECT_ROOT, 'console') + '/')
  t.same(readdirSync(dir).sort(), ['console.css', 'console.js', 'index.html'], 'exactly the files the route serves')
  t.match(readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8'), /^COPY console \.\/console$/m, 'the image copies console/')
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { files?: string[] }
  if (pkg.files !== undefined) t.ok(pkg.files.some(f => f.replace(/\/$/, '') === 'console'), 'package.json "files" includes console/')
})

t.test('each file is served with its type and the strict CSP', async (t) => {
  t.equal(CONSOLE_CSP, EXACT_CSP)
  const app = await proxyWith(t, { ADMIN_TOKEN })
  for (const [url, name, type, cache] of [
    ['/admin/', 'index.html', 'text/html; charset=utf-8', 'no-store'],
    ['/admin/console.js', 'console.js', 'text/javascript; charset=utf-8', 'no-cache'],
    ['/admin/console.css', 'console.css', 'text/css; charset=utf-8', 'no-cache']
  ]) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 200, url)
    t.equal(res.headers['content-type'], type, `${url} content type`)
    t.equal(res.headers['content-security-policy'], EXACT_CSP, `${url} CSP`)
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${url} nosniff`)
    t.equal(res.headers['referrer-policy'], 'no-referrer', `${url} referrer policy`)
    t.equal(res.headers['cache-control'], cache, `${url} cache control`)
    t.equal(res.headers['set-cookie'], undefined, `${url} sets no cookie`)
    t.equal(res.body, file(name), `${url} is console/${name}`)
  }
  const redirect = await app.inject({ method: 'GET', url: '/admin' })
  t.equal(redirect.statusCode, 302)
  t.equal(redirect.headers.location, 'admin/')
  t.equal(redirect.headers['content-security-policy'], EXACT_CSP)
})

/** GET a raw request path over a real socket (inject and fetch would resolve dot segments before sending). */
async function rawGet (port: number, path: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('nothing else under /admin/ is a file: traversal spellings and other names are 404', async (t) => {
  const app = await proxyWith(t, { ADMIN_TOKEN })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as AddressInfo).port
  for (const path of [
    '/admin/..%2f..%2fpackage.json', '/admin/%2e%2e/', '/admin/%2e%2e/package.json', '/admin/..%2fopenapi.yaml', '/admin/../package.json',
    '/admin/../../package.json', '/admin/%2e%2e%2f%2e%2e%2fpackage.json', '/admin/..%5c..%5cpackage.json', '/admin/..\\..\\package.json',
    '/admin/%252e%252e%252fpackage.json', '/admin/index.html', '/admin/console.js/', '/admin/console.js%00', '/admin/Console.js',
    '/admin/./console.js', '/admin/%63onsole.js.map', '/admin//console.js', '/admin/console', '/admin/favicon.ico', '/admin/package.json'
  ]) {
    const res = await rawGet(port, path)
    t.ok(res.status === 404 || res.status === 400, `${path} → ${res.status}`)
    t.notMatch(res.body, /"name": "speke-proxy"|openapi: 3|<html|speke-proxy operator console/, `${path} serves no file`)
  }
  t.equal((await app.inject({ method: 'POST', url: '/admin/', payload: 'x' })).statusCode, 404, 'only GET')
})

t.test('without ADMIN_TOKEN, or with the audit off, there is no console', async (t) => {
  for (const env of [{}, { ADMIN_TOKEN, AUDIT: 'off' }]) {
    const app = await proxyWith(t, env)
    for (const url of ['/admin', '/admin/', '/admin/console.js', '/admin/console.css']) {
      t.equal((await app.inject({ method: 'GET', url })).statusCode, 404, `${url} with ${JSON.stringify(Object.keys(env))}`)
    }
  }
})

t.test('consoleRoutes alone registers the console', async (t) => {
  const app = fastify()
  await app.register(consoleRoutes)
  t.teardown(async () => { await app.close() })
  t.equal((await app.inject({ method: 'GET', url: '/admin/' })).statusCode, 200)
})

t.test('index.html has no inline script, inline style or event-handler attribute', async (t) => {
  const html = file('index.html')
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)]
  t.ok(scripts.length > 0, 'the page has a script element')
  for (const [, attributes, body] of scripts) {
    t.match(attributes, /\bsrc="[^"]+"/, 'every script has a src')
    t.equal(body.trim(), '', 'and no inline content')
  }
  t.notMatch(html, /<style\b/i, 'no <style> element')
  t.notMatch(html, /\sstyle\s*=/i, 'no style attribute')
  t.notMatch(html, /\son[a-z]+\s*=/i, 'no event-handler attribute')
  t.notMatch(html, /javascript:/i, 'no javascript: URL')
  t.notMatch(html, /<(iframe|object|embed|base)\b/i, 'no frame, plugin or base element')
})

t.test('no console file names another origin', async (t) => {
  for (const name of readdirSync(dir)) {
    const text = file(name)
    t.notMatch(text, /\b(?:https?|wss?|ftp):\/\//i, `${name}: no absolute URL`)
    t.notMatch(text, /(?:src|href|url\()\s*=?\s*["']?\/\//i, `${name}: no protocol-relative URL`)
    t.notMatch(text, /@import/i, `${name}: no @import`)
  }
})

t.test('console.js builds the DOM from text: no HTML parsing, no eval', async (t) => {
  const js = file('console.js')
  t.notMatch(js, /\.(?:innerHTML|outerHTML)\s*(?:=|\+=)/, 'assigns no innerHTML/outerHTML')
  t.notMatch(js, /\b(?:innerHTML|outerHTML)\b/, 'does not touch innerHTML/outerHTML at all')
  t.notMatch(js, /insertAdjacentHTML|createContextualFragment|DOMParser|srcdoc/, 'no other HTML parser')
  t.notMatch(js, /document\.write(?:ln)?\s*\(/, 'no document.write')
  t.notMatch(js, /\beval\s*\(|new\s+Function\s*\(|\bFunction\s*\(/, 'no eval or Function')
  t.notMatch(js, /set(?:Timeout|Interval)\s*\(\s*['"`]/, 'no string timers')
  t.match(js, /textContent/, 'writes text with textContent')
  t.notMatch(js, /document\.cookie|localStorage/, 'no cookie, no localStorage: the token lives in sessionStorage')
  t.match(js, /sessionStorage/, 'the token lives in sessionStorage')
  t.match(js, /authorization: `Bearer \$\{/, 'the token goes in the Authorization header')
})
