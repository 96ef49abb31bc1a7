// speke-proxy operator console: reads the admin API with the token typed into the sign-in form.
// Every value from the API reaches the page through textContent or an attribute, never as HTML.

const TOKEN_KEY = 'speke-proxy.admin-token'
const PAGE_SIZE = 50
const AUTO_REFRESH_MS = 60_000

/** Trail records the trail writes about itself (not key requests). */
const TRAIL_ROUTES = new Set(['refusal-summary', 'audit-checkpoint', 'audit-restart'])

/** DRM systems the proxy knows (src/cpix/systems.ts), by system id or by the lower-case name records hold, shown by name. */
const SYSTEMS = new Map([
  ['edef8ba9-79d6-4ace-a3c8-27dcd51d21ed', 'Widevine'],
  ['9a04f079-9840-4286-ab92-e65be0885f95', 'PlayReady'],
  ['94ce86fb-07ff-4f43-adb8-93d2fa968ca2', 'FairPlay'],
  ['3d5e6d35-9b9a-41e8-b843-dd3c6e72c42c', 'WisePlay'],
  ['3ea8778f-7742-4bf9-b18b-e834b2acbd47', 'HLS AES-128'],
  ['be58615b-19c4-4684-88b3-c8c57e99e957', 'HLS SAMPLE-AES'],
  ['d9e4411a-e886-4909-a380-a77f28d52335', 'NCG'],
  ['81376844-f976-481e-a84e-cc25d39b0b33', 'NCG HLS AES-128'],
  ['48582a1d-1ff4-426e-8cd5-06424fcc578c', 'NCG HLS SAMPLE-AES'],
  ['1077efec-c0b2-4d02-ace3-3c1e52e2fb4b', 'W3C Common'],
  ['widevine', 'Widevine'],
  ['playready', 'PlayReady'],
  ['fairplay', 'FairPlay'],
  ['wiseplay', 'WisePlay']
])

const $ = (id) => {
  const node = document.getElementById(id)
  if (node === null) throw new Error(`console: #${id} is missing`)
  return node
}

// ---------------------------------------------------------------- DOM helpers (text only)

/**
 * el('td', { className: 'num', title: 't' }, 'text', node): an element with properties and children.
 * Strings become text nodes; nothing is ever parsed as HTML.
 */
function el (tag, props = {}, ...children) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue
    if (name === 'className') node.className = value
    else if (name === 'text') node.textContent = String(value)
    else if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value)
    else node.setAttribute(name, value === true ? '' : String(value))
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue
    node.append(child instanceof window.Node ? child : document.createTextNode(String(child)))
  }
  return node
}

const show = (node, visible) => { node.hidden = !visible }
const dash = () => el('span', { className: 'muted', text: '—' })
const text = (value) => (value === undefined || value === null || value === '' ? dash() : String(value))

/** '2026-05-01T12:34:56.789Z' → '2026-05-01 12:34:56' (UTC), on one line or stacked (date over time); the full value as a tooltip. */
function timeCell (iso, stacked = false) {
  if (typeof iso !== 'string' || iso === '') return el('td', {}, dash())
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(iso)
  if (m === null) return el('td', { className: 'mono', title: iso }, iso)
  if (stacked) return el('td', { className: 'nowrap mono', title: iso }, m[1], el('br'), m[2])
  return el('td', { className: 'nowrap mono', title: iso }, `${m[1]} ${m[2]}`)
}

function formatTime (iso) {
  if (typeof iso !== 'string') return '—'
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(iso)
  return m === null ? iso : `${m[1]} ${m[2]} UTC`
}

const OUTCOME_LABELS = { ok: 'ok', rejected: 'rejected', upstream_error: 'upstream error' }

function outcomeBadge (outcome) {
  const kind = outcome === 'ok' ? 'ok' : outcome === 'rejected' ? 'warn' : outcome === 'upstream_error' ? 'bad' : 'neutral'
  return el('span', { className: `badge ${kind}` }, OUTCOME_LABELS[outcome] ?? String(outcome ?? '—'))
}

function yesNoBadge (ok, yes, no) {
  return el('span', { className: `badge ${ok ? 'ok' : 'bad'}` }, ok ? yes : no)
}

const kindLabel = (kind) => (kind === 'passthrough' ? 'pass-through' : String(kind))
const systemName = (id) => SYSTEMS.get(String(id).toLowerCase()) ?? String(id)
const list = (values, map = String) => (Array.isArray(values) && values.length > 0 ? values.map(map).join(', ') : '')

/** A definition list of [label, value] pairs; values are strings or nodes. */
function facts (pairs) {
  return el('dl', { className: 'facts' }, pairs.flatMap(([label, value]) => [el('dt', {}, label), el('dd', {}, value ?? dash())]))
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor (call, status, message, code) {
    super(message)
    this.call = call
    this.status = status
    this.code = code
  }
}

class SignedOut extends Error {}

const token = () => sessionStorage.getItem(TOKEN_KEY)

/** GET one admin API path (relative to /admin/) with the bearer token; JSON back, or an ApiError naming the call. */
async function api (path, params = {}) {
  // encodeURIComponent, not URLSearchParams: the proxy reads '+' in a query as '+' (a base64 character), never as a space.
  const query = Object.entries(params)
    .filter(([, value]) => value !== undefined && value !== null && value !== '')
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`)
    .join('&')
  const url = new URL(`${path}${query === '' ? '' : `?${query}`}`, document.baseURI)
  const call = `GET ${url.pathname}${url.search}`
  const current = token()
  if (current === null) throw new SignedOut()
  let res
  try {
    res = await fetch(url, {
      headers: { authorization: `Bearer ${current}`, accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error'
    })
  } catch (err) {
    throw new ApiError(call, 0, `no answer (${err instanceof Error ? err.message : String(err)})`)
  }
  if (res.status === 401) {
    await res.text().catch(() => '')
    signOut('The admin token was refused (401). Sign in again.', true)
    throw new SignedOut()
  }
  let body
  try { body = await res.json() } catch { body = undefined }
  if (!res.ok) {
    const message = body !== undefined && typeof body.error === 'string' ? body.error : res.statusText
    if (res.status === 404) throw new ApiError(call, 404, 'not available on this proxy (404)', body?.code)
    if (res.status === 429) throw new ApiError(call, 429, `${message} (the admin API allows a few requests a minute per address)`, body?.code)
    throw new ApiError(call, res.status, message, body?.code)
  }
  if (body === undefined) throw new ApiError(call, res.status, 'the answer is not JSON')
  return body
}

// ---------------------------------------------------------------- errors panel

const failures = new Map()

function noteFailure (panel, err) {
  if (err instanceof SignedOut) return
  const message = err instanceof ApiError
    ? `${err.call}: ${err.status === 0 ? '' : `${err.status} `}${err.message}${err.code === undefined ? '' : ` [${err.code}]`}`
    : `${panel}: ${err instanceof Error ? err.message : String(err)}`
  failures.set(panel, message)
  renderFailures()
}

function clearFailure (panel) {
  failures.delete(panel)
  renderFailures()
}

function renderFailures () {
  $('error-list').replaceChildren(...[...failures.entries()].map(([panel, message]) => el('li', {}, el('strong', {}, `${panel}: `), message)))
  show($('errors'), failures.size > 0)
}

function panelError (container, err) {
  if (err instanceof SignedOut) return
  const message = err instanceof ApiError ? `${err.call} failed: ${err.message}` : String(err)
  container.replaceChildren(el('p', { className: 'notice error' }, message))
}

// ---------------------------------------------------------------- readiness (public)

async function loadReadiness () {
  const body = $('readiness-body')
  const badge = $('ready-badge')
  try {
    const res = await fetch(new URL('../readyz', document.baseURI), { cache: 'no-store', credentials: 'omit' })
    const ready = await res.json()
    const ok = res.status === 200 && ready.status === 'ready'
    badge.className = `badge ${ok ? 'ok' : 'bad'}`
    badge.textContent = ok ? 'ready' : 'not ready'
    const checks = ready.checks !== null && typeof ready.checks === 'object' ? Object.entries(ready.checks) : []
    const reasons = ready.reasons !== null && typeof ready.reasons === 'object' ? ready.reasons : {}
    body.replaceChildren(
      el('p', { className: 'headline' }, yesNoBadge(ok, 'Ready', 'Not ready'), ' ', el('span', { className: 'muted' }, `provider ${String(ready.provider ?? '?')}`)),
      el('ul', { className: 'checks' }, checks.map(([name, passed]) => el('li', {},
        el('span', { className: `dot ${passed === true ? 'ok' : 'bad'}`, 'aria-hidden': 'true' }),
        el('span', { className: 'check-name' }, name),
        el('span', { className: passed === true ? 'muted' : 'bad-text' }, passed === true ? 'ok' : `failing${typeof reasons[name] === 'string' ? `: ${reasons[name]}` : ''}`)
      )))
    )
    clearFailure('Readiness')
  } catch (err) {
    badge.className = 'badge bad'
    badge.textContent = 'readiness unknown'
    const failure = new ApiError('GET /readyz', 0, err instanceof Error ? err.message : String(err))
    panelError(body, failure)
    noteFailure('Readiness', failure)
  }
}

// ---------------------------------------------------------------- audit state

/** The newest record: time, seq and instance. */
function lastRecordFacts (value) {
  if (value === null || typeof value !== 'object') return el('span', { className: 'muted' }, 'none yet')
  return `${formatTime(value.time)} · seq ${String(value.seq ?? '?')} · ${String(value.instance_id ?? '?')}`
}

/** The newest signed entry: what it is, when, which record it covers and which key signed it (not the signature itself). */
function lastCheckpointFacts (value) {
  if (value === null || typeof value !== 'object') return el('span', { className: 'muted' }, 'none yet')
  const parts = [String(value.kind ?? 'checkpoint'), formatTime(value.time), `covers seq ${String(value.seq ?? '?')}`]
  if (typeof value.instance_id === 'string') parts.push(value.instance_id)
  if (typeof value.key_id === 'string') parts.push(`key ${value.key_id}`)
  return el('span', { title: typeof value.head === 'string' ? `head ${value.head}` : undefined }, parts.join(' · '))
}

async function loadAuditState () {
  const body = $('audit-state-body')
  try {
    const state = await api('audit/state')
    const v = state.verification ?? {}
    const checked = v.checked_records === undefined
      ? dash()
      : `${String(v.checked_records)} record${v.checked_records === 1 ? '' : 's'}${typeof v.at === 'string' ? ` at ${formatTime(v.at)}` : ''}`
    body.replaceChildren(
      el('p', { className: 'headline' },
        v.ok === true ? el('span', { className: 'badge ok' }, 'Chain verified') : el('span', { className: 'badge bad' }, 'Verification failed'),
        ' ', el('span', { className: 'muted' }, `${String(state.sink ?? '?')} sink`)),
      facts([
        ['Last record', lastRecordFacts(state.last_record)],
        ['Last checkpoint', lastCheckpointFacts(state.last_checkpoint)],
        ['Verified', checked],
        ['Signatures', v.signatures_checked === true
          ? 'checked'
          : el('span', { className: 'muted' }, v.signatures_checked === false ? 'not checked (no public key given)' : '—')],
        ...(typeof v.error === 'string' && v.error !== '' ? [['Problem', el('span', { className: 'bad-text' }, v.error)]] : [])
      ])
    )
    clearFailure('Audit trail')
  } catch (err) {
    panelError(body, err)
    noteFailure('Audit trail', err)
  }
}

// ---------------------------------------------------------------- activity

async function loadActivity () {
  const body = $('activity-body')
  try {
    const activity = await api('activity', { minutes: 60 })
    const tenants = Array.isArray(activity.tenants) ? activity.tenants : []
    const rows = tenants.map((t) => el('tr', {},
      el('td', { className: 'nowrap' }, text(t.tenant), typeof t.tenant_kind === 'string' ? el('div', {}, el('span', { className: 'tag' }, kindLabel(t.tenant_kind))) : null),
      el('td', { className: 'num' }, String(t.requests ?? 0)),
      el('td', { className: 'num' }, String(t.ok ?? 0)),
      el('td', { className: `num${Number(t.rejected) > 0 ? ' warn-text' : ''}` }, String(t.rejected ?? 0)),
      el('td', { className: `num${Number(t.upstream_errors) > 0 ? ' bad-text' : ''}` }, String(t.upstream_errors ?? 0))
    ))
    const table = el('div', { className: 'table-wrap' }, el('table', { className: 'data compact' },
      el('thead', {}, el('tr', {},
        el('th', { scope: 'col' }, 'Tenant'), el('th', { scope: 'col', className: 'num' }, 'Requests'), el('th', { scope: 'col', className: 'num' }, 'OK'),
        el('th', { scope: 'col', className: 'num' }, 'Rejected'), el('th', { scope: 'col', className: 'num' }, 'Upstream errors'))),
      el('tbody', {}, rows.length > 0 ? rows : el('tr', {}, el('td', { colspan: 5, className: 'muted empty' }, 'No key requests in the last hour.')))
    ))
    body.replaceChildren(
      table,
      el('p', { className: 'muted small' },
        `Refused without a valid credential: ${String(activity.refused_without_credential ?? 0)}`,
        typeof activity.since === 'string' ? ` · since ${formatTime(activity.since)}` : '')
    )
    clearFailure('Activity')
  } catch (err) {
    panelError(body, err)
    noteFailure('Activity', err)
  }
}

// ---------------------------------------------------------------- key requests

const requests = { params: {}, cursor: undefined, shown: 0 }

/** A datetime-local value read as UTC ('2026-05-01T12:00' → '2026-05-01T12:00:00.000Z'); '' stays ''. */
function utcFromInput (value) {
  if (value === '') return ''
  const date = new Date(`${value.length === 16 ? `${value}:00` : value}Z`)
  return Number.isNaN(date.getTime()) ? value : date.toISOString()
}

function readFilters () {
  const form = $('filters')
  const value = (name) => form.elements.namedItem(name).value.trim()
  return {
    tenant: value('tenant'),
    content_id: value('content_id'),
    outcome: value('outcome'),
    route: value('route'),
    since: utcFromInput(value('since')),
    until: utcFromInput(value('until'))
  }
}

function deliveryCell (encrypted, keys) {
  if (encrypted === true) return el('td', {}, el('span', { className: 'badge info' }, 'encrypted'))
  if (keys > 0) return el('td', {}, el('span', { className: 'muted' }, 'clear'))
  return el('td', {}, dash())
}

function detailRow (r) {
  const kidList = (kids) => Array.isArray(kids) && kids.length > 0
    ? el('span', { className: 'kids' }, kids.map((kid) => el('button', {
      type: 'button',
      className: 'link mono',
      title: 'Look up this KID',
      onclick: () => { lookupKid(r.content_id, r.tenant, kid) }
    }, String(kid))))
    : dash()
  const pairs = [
    ['Record id', text(r.id)],
    ['Request id', text(r.request_id)],
    ['Instance, seq', `${String(r.instance_id ?? '?')} · ${String(r.seq ?? '?')}`],
    ['SPEKE version', text(r.speke_version)],
    ['Requested KIDs', kidList(r.requested_kids)],
    ['Returned KIDs', kidList(r.returned_kids)],
    ['DRM systems', text(list(r.drm_systems, systemName))],
    ['Tracks', text(list(r.track_types))],
    ['Key periods', text(list(r.key_periods))],
    ['Upstream', r.upstream_status === null || r.upstream_status === undefined
      ? dash()
      : `${String(r.upstream_status)}${r.upstream_latency_ms === null || r.upstream_latency_ms === undefined ? '' : ` in ${String(r.upstream_latency_ms)} ms`}`],
    ['Client', text([r.caller_ip, r.user_agent].filter((v) => typeof v === 'string' && v !== '').join(' · '))]
  ]
  if (r.refusals !== undefined && r.refusals !== null && Array.isArray(r.refusals.top)) {
    pairs.push(['Refusals', el('ul', { className: 'plain' }, r.refusals.top.map((c) =>
      el('li', {}, `${String(c.count)} × ${String(c.route)} ${String(c.status)} ${String(c.reason)} from ${String(c.caller_ip ?? '?')}`)))])
  }
  return el('tr', { className: 'detail', hidden: true }, el('td', { colspan: 10 }, facts(pairs)))
}

/** The error code (docs/errors.md) as a chip, then the reason in words. */
function errorParts (r, trail) {
  return [
    typeof r.error_code === 'string' && r.error_code !== '' ? el('code', { className: 'code' }, r.error_code) : null,
    typeof r.error === 'string' && r.error !== '' ? el('span', { className: trail ? 'muted' : '' }, r.error) : null
  ]
}

function requestRows (r) {
  const trail = TRAIL_ROUTES.has(r.route)
  const keys = Array.isArray(r.returned_kids) ? r.returned_kids.length : 0
  const encrypted = r.delivery === 'encrypted' || r.delivered_encrypted === true
  const detail = detailRow(r)
  const toggle = el('button', { type: 'button', className: 'link', 'aria-expanded': 'false' }, 'details')
  toggle.addEventListener('click', () => {
    detail.hidden = !detail.hidden
    toggle.setAttribute('aria-expanded', String(!detail.hidden))
    toggle.textContent = detail.hidden ? 'details' : 'hide'
  })
  const error = [r.error_code, r.error].filter((v) => typeof v === 'string' && v !== '')
  const row = el('tr', { className: trail ? 'trail' : `outcome-${String(r.outcome)}` },
    timeCell(r.time),
    el('td', { className: 'nowrap' }, trail ? el('span', { className: 'tag' }, r.route) : text(r.route)),
    el('td', { className: 'nowrap' }, text(r.tenant)),
    el('td', { className: 'content-id' }, text(r.content_id)),
    el('td', {}, trail ? el('span', { className: 'badge neutral' }, r.route === 'refusal-summary' ? 'summary' : 'trail') : outcomeBadge(r.outcome)),
    el('td', { className: 'num' }, trail || r.status === 0 ? dash() : text(r.status)),
    el('td', { className: 'error-cell' }, error.length === 0 ? dash() : errorParts(r, trail)),
    el('td', { className: 'num' }, trail ? dash() : String(keys)),
    trail ? el('td', {}, dash()) : deliveryCell(encrypted, keys),
    el('td', {}, toggle)
  )
  return [row, detail]
}

/**
 * One page of a paged table (key requests, key lookup): the first page replaces the rows, "more" appends the next; the
 * count line, the more-button and the failure panel follow. `table.state` holds the query, the cursor and the count.
 */
async function loadPage (table, more) {
  const { state } = table
  const rows = $(table.rowsId)
  const button = $(table.buttonId)
  button.disabled = true
  try {
    const page = await api(table.call, { ...state.params, limit: PAGE_SIZE, cursor: more ? state.cursor : undefined })
    const items = Array.isArray(page[table.field]) ? page[table.field] : []
    const built = items.flatMap(table.toRows)
    if (more) rows.append(...built)
    else rows.replaceChildren(...(built.length > 0 ? built : [el('tr', {}, el('td', { colspan: 10, className: 'muted empty' }, table.empty))]))
    state.shown += items.length
    state.cursor = typeof page.nextCursor === 'string' ? page.nextCursor : undefined
    $(table.countId).textContent = table.count(state)
    show(button, state.cursor !== undefined)
    clearFailure(table.name)
  } catch (err) {
    if (!more) rows.replaceChildren(el('tr', {}, el('td', { colspan: 10 }, el('span', { className: 'bad-text' }, err instanceof ApiError ? `${err.call} failed: ${err.message}` : ''))))
    noteFailure(table.name, err)
  } finally {
    button.disabled = false
  }
}

const requestTable = {
  name: 'Key requests',
  call: 'audit',
  field: 'records',
  rowsId: 'requests-rows',
  buttonId: 'older',
  countId: 'requests-count',
  toRows: (record) => requestRows(record),
  empty: 'No records match.',
  state: requests,
  count: (state) => `${state.shown} record${state.shown === 1 ? '' : 's'}${state.cursor === undefined ? '' : ', more older'}`
}

async function loadRequests (more = false) {
  if (!more) Object.assign(requests, { params: readFilters(), cursor: undefined, shown: 0 })
  await loadPage(requestTable, more)
}

// ---------------------------------------------------------------- key lookup

const lookup = { params: undefined, cursor: undefined, shown: 0 }

function keyRow (k) {
  return el('tr', {},
    el('td', { className: 'mono nowrap kid' }, text(k.kid)),
    el('td', { className: 'nowrap' }, text(k.tenant), typeof k.tenant_kind === 'string' ? el('div', {}, el('span', { className: 'tag' }, kindLabel(k.tenant_kind))) : null),
    el('td', {}, text(list(k.drm_systems, systemName))),
    el('td', {}, text(list(k.track_types))),
    el('td', {}, text(list(k.key_periods))),
    timeCell(k.first_issued, true),
    timeCell(k.last_issued, true),
    el('td', { className: 'num' }, text(k.times_issued)),
    el('td', { className: 'nowrap' }, outcomeBadge(k.last_outcome), k.last_status === undefined || k.last_status === null ? null : ` ${String(k.last_status)}`),
    el('td', {}, k.delivered_encrypted === true ? el('span', { className: 'badge info' }, 'encrypted') : el('span', { className: 'muted' }, 'clear'))
  )
}

const keyTable = {
  name: 'Key lookup',
  call: 'keys',
  field: 'keys',
  rowsId: 'keys-rows',
  buttonId: 'keys-more',
  countId: 'lookup-count',
  toRows: (key) => [keyRow(key)],
  empty: 'No key was issued for this content id.',
  state: lookup,
  count: (state) => `${state.shown} KID${state.shown === 1 ? '' : 's'} for content id ${state.params.content_id}`
}

async function loadKeys (more = false) {
  if (!more) {
    const form = $('lookup-form')
    const value = (name) => form.elements.namedItem(name).value.trim()
    Object.assign(lookup, { params: { content_id: value('content_id'), tenant: value('tenant'), kid: value('kid') }, cursor: undefined, shown: 0 })
  }
  if (lookup.params === undefined) return
  await loadPage(keyTable, more)
}

function lookupKid (contentId, tenant, kid) {
  const form = $('lookup-form')
  form.elements.namedItem('content_id').value = contentId ?? ''
  form.elements.namedItem('tenant').value = tenant ?? ''
  form.elements.namedItem('kid').value = kid ?? ''
  $('lookup').scrollIntoView({ behavior: 'smooth', block: 'start' })
  if (typeof contentId === 'string' && contentId !== '') void loadKeys()
}

// ---------------------------------------------------------------- sign-in, refresh

let timer

/** Back to the sign-in form, the token forgotten; `message` says why (an error when `problem`). */
function signOut (message, problem = false) {
  sessionStorage.removeItem(TOKEN_KEY)
  clearInterval(timer)
  timer = undefined
  $('auto-refresh').checked = false
  failures.clear()
  renderFailures()
  for (const id of ['requests-rows', 'keys-rows']) $(id).replaceChildren()
  for (const id of ['requests-count', 'lookup-count']) $(id).textContent = ''
  show($('app'), false)
  show($('topbar-status'), false)
  show($('sign-in'), true)
  const note = $('sign-in-message')
  note.textContent = message ?? ''
  note.className = `notice ${problem ? 'error' : 'info'}`
  show(note, typeof message === 'string' && message !== '')
  $('token').value = ''
  $('token').focus()
}

async function refresh () {
  if (token() === null) return
  await Promise.all([loadReadiness(), loadAuditState(), loadActivity(), loadRequests()])
}

function signedIn () {
  show($('sign-in'), false)
  show($('sign-in-message'), false)
  show($('app'), true)
  show($('topbar-status'), true)
  void refresh()
}

function start () {
  $('sign-in-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const value = $('token').value.trim()
    if (value === '') return
    sessionStorage.setItem(TOKEN_KEY, value)
    $('token').value = ''
    signedIn()
  })
  $('sign-out').addEventListener('click', () => { signOut('Signed out.') })
  $('refresh').addEventListener('click', () => { void refresh() })
  $('auto-refresh').addEventListener('change', (event) => {
    clearInterval(timer)
    timer = event.target.checked ? setInterval(() => { void refresh() }, AUTO_REFRESH_MS) : undefined
  })
  $('filters').addEventListener('submit', (event) => { event.preventDefault(); void loadRequests() })
  // After the form's own reset has cleared the fields.
  $('filters').addEventListener('reset', () => { setTimeout(() => { void loadRequests() }, 0) })
  $('older').addEventListener('click', () => { void loadRequests(true) })
  $('lookup-form').addEventListener('submit', (event) => { event.preventDefault(); void loadKeys() })
  $('keys-more').addEventListener('click', () => { void loadKeys(true) })
  if (token() === null) signOut()
  else signedIn()
}

start()
