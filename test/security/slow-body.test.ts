// Attack: hold connections open by trickling a body (or the headers) a byte at a time; the server's deadlines cut them off.

import t from 'tap'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { loadConfig } from '../../src/config.js'
import { DEMO_TOKEN, fixture } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

const V1_REQUEST = fixture('aws-speke-v1/aws-doc-v1-vod-request-aes128-sampleaes-widevine-playready.xml')
const TIMEOUTS = { REQUEST_TIMEOUT_MS: '1500', HEADERS_TIMEOUT_MS: '1000', AUDIT: 'off' }

interface Trickle { socket: Socket, closedAfterMs: Promise<number>, received: () => string, stop: () => void }

/** Opens a connection, writes `head` at once, then one byte of `tail` every `everyMs`; resolves when the server closes it. */
async function trickle (base: string, head: string, tail: string, everyMs: number): Promise<Trickle> {
  const { hostname, port } = new URL(base)
  const socket = connect(Number(port), hostname)
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const started = performance.now()
  let text = ''
  socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
  socket.on('error', () => {})
  socket.write(head)
  let i = 0
  const timer = setInterval(() => { if (i < tail.length && !socket.destroyed) socket.write(tail[i++]) }, everyMs)
  const closedAfterMs = new Promise<number>(resolve => socket.once('close', () => { clearInterval(timer); resolve(performance.now() - started) }))
  return { socket, closedAfterMs, received: () => text, stop: () => { clearInterval(timer); socket.destroy() } }
}

/** Resolves with the value, or with 'still open' once `ms` have passed. */
async function within<T> (promise: Promise<T>, ms: number): Promise<T | 'still open'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'still open'>(resolve => { timer = setTimeout(() => resolve('still open'), ms) })
  const result = await Promise.race([promise, late])
  clearTimeout(timer)
  return result
}

t.test('a body trickled a byte at a time is cut off at REQUEST_TIMEOUT_MS with a 408', async t => {
  const proxy = await startProxy(TIMEOUTS)
  t.teardown(() => proxy.close())
  const head = `POST /cpix/getKey?enc-token=${DEMO_TOKEN} HTTP/1.1\r\nhost: x\r\ncontent-type: application/xml\r\ncontent-length: ${V1_REQUEST.length}\r\n\r\n`
  const slow = await trickle(proxy.url, head, V1_REQUEST.toString('latin1'), 200)
  t.teardown(slow.stop)
  const closed = await within(slow.closedAfterMs, 8000)
  t.not(closed, 'still open', 'the server closed the connection')
  if (closed !== 'still open') t.ok(closed < 4000, `closed after ${Math.round(closed)} ms (deadline 1500 ms, checked every second)`)
  t.match(slow.received(), /^HTTP\/1\.1 408/, 'with 408 Request Timeout')
})

t.test('headers trickled a byte at a time are cut off at HEADERS_TIMEOUT_MS', async t => {
  const proxy = await startProxy(TIMEOUTS)
  t.teardown(() => proxy.close())
  const slow = await trickle(proxy.url, 'POST /cpix/getKey HTTP/1.1\r\n', `x-padding: ${'a'.repeat(200)}\r\n`, 100)
  t.teardown(slow.stop)
  const closed = await within(slow.closedAfterMs, 8000)
  t.not(closed, 'still open', 'the server closed the connection')
  if (closed !== 'still open') t.ok(closed < 3500, `closed after ${Math.round(closed)} ms (deadline 1000 ms)`)
})

t.test('an idle keep-alive connection outlives the request and header deadlines (load balancers reuse it)', async t => {
  const proxy = await startProxy(TIMEOUTS)
  t.teardown(() => proxy.close())
  const { hostname, port } = new URL(proxy.url)
  const socket = connect(Number(port), hostname)
  t.teardown(() => { socket.destroy() })
  let text = ''
  socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
  let closed = false
  socket.on('close', () => { closed = true })
  await new Promise<void>(resolve => socket.once('connect', resolve))
  const heartbeat = 'GET /cpix/getKey/heartbeat HTTP/1.1\r\nhost: x\r\n\r\n'
  socket.write(heartbeat)
  await new Promise(resolve => setTimeout(resolve, 300))
  t.match(text, /^HTTP\/1\.1 200[\s\S]*Keep-Alive: timeout=65/i, 'keep-alive announced for 65 s, above the 60 s idle timeout of AWS load balancers')
  await new Promise(resolve => setTimeout(resolve, 3000))
  t.notOk(closed, 'still open after 3 s idle (the deadlines are 1 s and 1.5 s)')
  socket.write(heartbeat)
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(text.match(/SUCCESS/g)?.length, 2, 'the second request on the same connection is answered')
})

t.test('timeout settings: sensible defaults, and headers may not outlast the request', async t => {
  const defaults = loadConfig({}).timeouts
  t.same(defaults, { requestMs: 30_000, headersMs: 10_000, keepAliveMs: 65_000 })
  t.ok(defaults.keepAliveMs > 60_000, 'keep-alive above the 60 s idle timeout of AWS load balancers')
  t.throws(() => loadConfig({ HEADERS_TIMEOUT_MS: '40000' }), /HEADERS_TIMEOUT_MS \(40000\) must not exceed REQUEST_TIMEOUT_MS \(30000\)/)
  t.throws(() => loadConfig({ REQUEST_TIMEOUT_MS: '0' }), /REQUEST_TIMEOUT_MS must be between 500 and 600000/)
})
