// `npm run test:browser`: the operator console in a real headless Chromium (Debian's, driven by playwright-core; no
// browser download). Starts the built proxy (embedded key provider, file audit in a temporary folder, ADMIN_TOKEN set),
// makes real key requests over HTTP, then signs in through the form and checks what the console shows. Any console
// error, page error, dialog, CSP violation or unexpected failed request fails the run. Screenshots go to a temporary
// folder, printed at the start. Ends with a plain "N passed, N failed" line; exits non-zero on any failure.

import { spawn, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ADMIN_TOKEN = randomBytes(32).toString('base64url')
/** base64 of {"site_id":"DEMO","access_key":"any"}: a pass-through enc-token the embedded provider accepts (README). */
const ENC_TOKEN = 'eyJzaXRlX2lkIjoiREVNTyIsImFjY2Vzc19rZXkiOiJhbnkifQ=='
const XSS = '<img src=x onerror=alert(1)>'
const VIDEO_KID = '7d2e4f60-1a3b-4c5d-8e9f-0a1b2c3d4e5f'
/** More v1 requests than one page of the console's request list (50), so "Older" has something to fetch. */
const BULK = 55

let passed = 0
let failed = 0
function check (name, ok, detail) {
  if (ok) {
    passed++
    console.log(`ok - ${name}`)
  } else {
    failed++
    console.log(`not ok - ${name}${detail === undefined ? '' : `\n  ${String(detail).split('\n').join('\n  ')}`}`)
  }
}

const work = mkdtempSync(join(tmpdir(), 'speke-console-'))
const shots = join(work, 'screenshots')
mkdirSync(shots)
console.log(`# screenshots: ${shots}`)

// ---------------------------------------------------------------- the proxy

async function startProxy () {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'serve'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      KMS_URL: 'local',
      DATA_DIR: join(work, 'data'),
      AUDIT_MIN_FREE_MB: '0',
      ADMIN_TOKEN
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let log = ''
  child.stdout.on('data', (c) => { log += c.toString() })
  child.stderr.on('data', (c) => { log += c.toString() })
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start:\n${log}`)), 20_000)
    const look = () => {
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log)
      if (m !== null) { clearTimeout(timer); resolve(m[1]) }
    }
    child.stdout.on('data', look)
    child.on('exit', () => { clearTimeout(timer); reject(new Error(`proxy exited:\n${log}`)) })
  })
  return { child, url, log: () => log }
}

const example = (name) => readFileSync(join(ROOT, 'examples', name), 'utf8')

async function keyRequest (base, body, { version, contentType = 'application/xml' } = {}) {
  const headers = { 'content-type': contentType }
  if (version !== undefined) headers['x-speke-version'] = version
  const res = await fetch(`${base}/cpix/getKey?enc-token=${encodeURIComponent(ENC_TOKEN)}`, { method: 'POST', headers, body })
  await res.arrayBuffer()
  return { status: res.status, code: res.headers.get('x-speke-proxy-error') }
}

// ---------------------------------------------------------------- the run

let proxy
let context
try {
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-if-needed.mjs')], { cwd: ROOT, stdio: 'inherit' })
  proxy = await startProxy()
  const base = proxy.url
  console.log(`# proxy at ${base}`)

  // Key requests over HTTP, as a packager makes them.
  const multi = example('speke-v2.0-multi-key.xml')
  check('SPEKE v2.0 multi-key request: 200', (await keyRequest(base, multi, { version: '2.0' })).status === 200)
  const xssDoc = multi.replace('contentId="example-movie-v2"', 'contentId="&lt;img src=x onerror=alert(1)&gt;"')
  check('SPEKE v2.0 request with content id <img src=x onerror=alert(1)>: 200', (await keyRequest(base, xssDoc, { version: '2.0' })).status === 200)
  const encrypted = example('speke-v2.0-encrypted.xml').replace('contentId="example-movie-v2"', 'contentId="example-movie-encrypted"')
  check('SPEKE v2.0 request with encrypted key delivery: 200', (await keyRequest(base, encrypted, { version: '2.0' })).status === 200)
  const refused = await keyRequest(base, multi, { version: '2.0', contentType: 'text/plain' })
  check('a refused request (Content-Type text/plain, valid token): 415 UNSUPPORTED_MEDIA_TYPE', refused.status === 415 && refused.code === 'UNSUPPORTED_MEDIA_TYPE', JSON.stringify(refused))
  const v1 = example('speke-v1-dash.xml')
  const bulk = []
  for (let i = 0; i < BULK; i++) {
    bulk.push((await keyRequest(base, v1.replace('id="example-movie-v1"', `id="bulk-${String(i).padStart(2, '0')}"`))).status)
  }
  check(`${BULK} SPEKE v1 requests: 200`, bulk.every((s) => s === 200), bulk.join(' '))

  // ---------------------------------------------------------------- the browser
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`)
  context = await chromium.launchPersistentContext(mkdtempSync(join(work, 'profile-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 }
  })
  const page = context.pages()[0] ?? await context.newPage()

  // Everything that must not happen, collected while the page runs; `expected` lets one step allow named failures.
  const problems = []
  let expected = []
  const allowed = (text) => expected.some((pattern) => pattern.test(text))
  const urls = []
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`)
    })
  })
  page.on('console', (message) => {
    if (message.type() !== 'error') return
    const text = message.text()
    if (/CSP violation|Content Security Policy/i.test(text) || !allowed(text)) problems.push(`console ${message.type()}: ${text}`)
  })
  page.on('pageerror', (error) => { problems.push(`page error: ${error.message}`) })
  page.on('dialog', (dialog) => { problems.push(`dialog (${dialog.type()}): ${dialog.message()}`); void dialog.dismiss() })
  page.on('request', (request) => {
    urls.push(request.url())
    if (process.env.DEBUG_CONSOLE_TEST !== undefined) console.log(`# ${request.method()} ${request.url()}`)
  })
  page.on('requestfailed', (request) => { problems.push(`request failed: ${request.url()} (${request.failure()?.errorText ?? '?'})`) })
  page.on('response', (response) => {
    const line = `${response.status()} ${response.request().method()} ${response.url()}`
    if (response.status() >= 400 && !allowed(line)) problems.push(`HTTP ${line}`)
  })
  const noProblems = (step) => {
    check(`${step}: no console error, page error, dialog, CSP violation or unexpected failed request`, problems.length === 0, problems.join('\n'))
    problems.length = 0
  }
  const visible = async (selector) => await page.locator(selector).isVisible()
  /** Clicks, then waits for the admin API answer whose path starts with `path` and for the page to render it. */
  const clickAndLoad = async (selector, path) => {
    await Promise.all([page.waitForResponse((r) => new URL(r.url()).pathname === `/admin/${path}`, { timeout: 10_000 }), page.click(selector)])
    await page.evaluate(async () => await new Promise((resolve) => { setTimeout(resolve, 100) }))
  }
  const waitText = async (selector, text, timeout = 10_000) => {
    try {
      await page.locator(selector).filter({ hasText: text }).first().waitFor({ state: 'visible', timeout })
      return true
    } catch { return false }
  }

  // /admin redirects to /admin/, which carries the CSP.
  const first = await page.goto(`${base}/admin`)
  check('/admin lands on /admin/', page.url() === `${base}/admin/`, page.url())
  const csp = first?.headers()['content-security-policy'] ?? ''
  check('the console page has the strict CSP', csp.includes("script-src 'self'") && csp.includes("default-src 'none'") && !csp.includes('unsafe'), csp)
  check('the sign-in form shows first', await visible('#sign-in-form') && !(await visible('#app')))

  // A wrong token: back on the sign-in form with a message (the 401s are expected here).
  expected = [/^401 GET .*\/admin\//, /status of 401/]
  await page.fill('#token', 'not-the-admin-token')
  await page.click('#sign-in-form button[type=submit]')
  check('a wrong token returns to the sign-in form with a message', await waitText('#sign-in-message', '401') && await visible('#sign-in-form'))
  await page.evaluate(async () => await new Promise((resolve) => { setTimeout(resolve, 500) }))
  check('a refused token is not kept', await page.evaluate(() => sessionStorage.length) === 0)
  expected = []
  noProblems('wrong token')

  // Sign in.
  await page.fill('#token', ADMIN_TOKEN)
  await page.click('#sign-in-form button[type=submit]')
  check('signing in shows the console', await waitText('#requests-count', 'record'))
  await page.screenshot({ path: join(shots, 'signed-in-1280x800.png') })
  check('the token is kept in sessionStorage only', await page.evaluate((t) => Object.values(sessionStorage).includes(t) && localStorage.length === 0, ADMIN_TOKEN))

  // The request list: newest first, one page, older on demand.
  const rowCount = async () => await page.locator('#requests-rows > tr:not(.detail)').count()
  check('the first page lists 50 records', await rowCount() === 50, String(await rowCount()))
  const newest = await page.locator('#requests-rows td.content-id').first().textContent()
  check('newest first', newest === `bulk-${BULK - 1}`, newest)
  await page.click('#older')
  check('"Older" appends the next page', await page.waitForFunction(() => document.querySelectorAll('#requests-rows > tr:not(.detail)').length > 50, null, { timeout: 10_000 }).then(() => true, () => false))

  // The content id with markup shows as text, and nothing ran.
  await page.selectOption('#filters select[name=route]', 'speke')
  await page.fill('#filters input[name=content_id]', XSS)
  await clickAndLoad('#filters button[type=submit]', 'audit')
  const xssCells = await page.locator('#requests-rows td.content-id').allTextContents()
  check('filtering by content id lists only that content id', xssCells.length === 1 && xssCells[0] === XSS, JSON.stringify(xssCells))
  check('the <img> content id is text: no element was made from it', await page.locator('#requests-rows img, #requests-rows [onerror]').count() === 0)
  check('no alert fired', !problems.some((p) => p.startsWith('dialog')))

  // A time range: nothing since a time in the future.
  await page.fill('#filters input[name=content_id]', '')
  await page.fill('#filters input[name=since]', '2099-01-01T00:00:00')
  await clickAndLoad('#filters button[type=submit]', 'audit')
  check('a time range in the future lists nothing', await waitText('#requests-rows td', 'No records match.'))

  // The refused request, with its error code and reason.
  await clickAndLoad('#filters button[type=reset]', 'audit')
  await page.selectOption('#filters select[name=outcome]', 'rejected')
  await page.click('#filters button[type=submit]')
  check('the refused request is listed with its error code', await waitText('#requests-rows tr.outcome-rejected', 'UNSUPPORTED_MEDIA_TYPE'))
  const refusedRow = page.locator('#requests-rows tr.outcome-rejected').filter({ hasText: 'UNSUPPORTED_MEDIA_TYPE' }).first()
  await page.locator('#requests').screenshot({ path: join(shots, 'refused-1280.png') })
  check('… with its status and reason', /415/.test(await refusedRow.textContent() ?? '') && /Content-Type text\/plain is not accepted/.test(await refusedRow.textContent() ?? ''), await refusedRow.textContent())

  // Filter by content id and route, then open a record's details.
  await page.selectOption('#filters select[name=outcome]', '')
  await page.fill('#filters input[name=content_id]', 'example-movie-encrypted')
  await page.click('#filters button[type=submit]')
  check('the encrypted delivery shows as such', await waitText('#requests-rows tr.outcome-ok', 'encrypted'))
  await page.fill('#filters input[name=content_id]', 'example-movie-v2')
  await clickAndLoad('#filters button[type=submit]', 'audit')
  const cells = await page.locator('#requests-rows td.content-id').allTextContents()
  check('filtering by content id example-movie-v2 lists its request only', cells.length === 1 && cells[0] === 'example-movie-v2', JSON.stringify(cells))
  await page.locator('#requests-rows button.link', { hasText: 'details' }).first().click()
  check('details show the returned KIDs', await waitText('#requests-rows tr.detail', VIDEO_KID))

  // Key lookup: a KID from the details opens in the lookup table.
  await page.locator('#requests-rows tr.detail button.link', { hasText: VIDEO_KID }).first().click()
  check('the KID lookup lists the KID with its facts', await waitText('#keys-rows tr', VIDEO_KID))
  const keyRowText = await page.locator('#keys-rows tr').filter({ hasText: VIDEO_KID }).first().textContent() ?? ''
  check('… its tenant, DRM systems and tracks', keyRowText.includes('site:DEMO') && keyRowText.includes('Widevine') && keyRowText.includes('VIDEO'), keyRowText)
  check('… for the content id asked', await waitText('#lookup-count', 'example-movie-v2'))
  // And typed in: the content id with markup.
  await page.fill('#lookup-form input[name=content_id]', XSS)
  await page.fill('#lookup-form input[name=kid]', '')
  await page.click('#lookup-form button[type=submit]')
  check('looking up the <img> content id lists its KIDs, the id as text', await waitText('#lookup-count', XSS) &&
    await page.locator('#keys-rows tr').count() === 2 && await page.locator('#lookup img').count() === 0)

  // The overview panels.
  check('the readiness panel says ready', await waitText('#readiness-body', 'Ready') && await waitText('#ready-badge', 'ready'))
  check('the activity panel counts site:DEMO', await waitText('#activity-body tr', 'site:DEMO'))
  check('the audit state panel shows the verification', await waitText('#audit-state-body', 'Chain verified'))
  check('no failure is listed in the errors panel', !(await visible('#errors')), await page.locator('#errors').textContent())

  // Screenshots, wide and narrow; the narrow page does not scroll sideways (tables scroll in their own box).
  await page.evaluate(() => { window.scrollTo(0, 0) })
  await page.screenshot({ path: join(shots, 'console-1280x800.png') })
  await page.screenshot({ path: join(shots, 'console-1280-full.png'), fullPage: true })
  await page.setViewportSize({ width: 400, height: 800 })
  await page.evaluate(() => { window.scrollTo(0, 0) })
  await page.screenshot({ path: join(shots, 'console-400x800.png') })
  await page.screenshot({ path: join(shots, 'console-400-full.png'), fullPage: true })
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
  check('at 400 px the page itself does not scroll sideways', overflow <= 0, `${overflow} px too wide`)
  await page.setViewportSize({ width: 1280, height: 800 })
  noProblems('signed in')

  // Sign out: the token is gone, and it never travelled in a URL or a cookie.
  if (process.env.DEBUG_CONSOLE_TEST !== undefined) console.log('# sign out')
  await page.click('#sign-out')
  check('signing out shows the sign-in form and forgets the token', await visible('#sign-in-form') && await page.evaluate(() => sessionStorage.length) === 0)
  await page.screenshot({ path: join(shots, 'sign-in-1280x800.png') })
  await page.reload()
  check('after a reload the console still asks to sign in', await visible('#sign-in-form') && !(await visible('#app')))
  check('the token never appeared in a URL', !urls.some((u) => u.includes(ADMIN_TOKEN)))
  check('no cookie was set', (await context.cookies()).length === 0)
  noProblems('signed out')
} catch (err) {
  check('the run completed', false, err instanceof Error ? err.stack : String(err))
} finally {
  await context?.close().catch(() => {})
  if (proxy !== undefined) {
    proxy.child.kill('SIGTERM')
    await new Promise((resolve) => { proxy.child.once('exit', resolve); setTimeout(resolve, 5000) })
  }
  for (const name of readdirSync(work)) if (name !== 'screenshots') rmSync(join(work, name), { recursive: true, force: true })
}

console.log(`# screenshots: ${shots}`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
