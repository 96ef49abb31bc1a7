// buildApp: @fastify/under-pressure and @fastify/rate-limit are loaded only when their settings are on, then shed and limit key requests.

import { createRequire } from 'node:module'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { createLogger } from '../src/logger.js'
import type { KeyProvider } from '../src/kms/provider.js'

const provider: KeyProvider = {
  name: 'local',
  getKeys: async () => { throw new Error('no key reaches the provider in this test') },
  close: async () => {}
}

const depsWith = (env: Record<string, string>): Parameters<typeof buildApp>[0] => ({
  config: loadConfig({ KMS_URL: 'local', LOCAL_KMS_SECRET: Buffer.alloc(32, 7).toString('base64'), LOG_LEVEL: 'silent', ...env }),
  provider,
  tenants: { tenants: [], allowPassthrough: true },
  logger: createLogger('silent')
})

const loaded = (name: string): boolean => Object.keys(createRequire(import.meta.url).cache).some(path => path.includes(`/node_modules/${name}/`))
const KEY_REQUEST = { method: 'POST', url: '/cpix/getKey', headers: { 'content-type': 'application/xml' }, payload: '<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix"/>' } as const

t.test('with MAX_EVENT_LOOP_DELAY_MS=0 and both rate limits 0, neither plugin is loaded and no key request is shed or limited', async t => {
  const app = await buildApp(depsWith({ MAX_EVENT_LOOP_DELAY_MS: '0', RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_IP_PER_MINUTE: '0' }))
  t.teardown(async () => { await app.close() })
  await app.ready()
  t.equal(loaded('@fastify/under-pressure'), false, 'no under-pressure')
  t.equal(loaded('@fastify/rate-limit'), false, 'no rate-limit')
  const block = Date.now() + 50
  while (Date.now() < block) { /* lag the event loop */ }
  for (let i = 0; i < 3; i++) {
    const res = await app.inject(KEY_REQUEST)
    t.not(res.statusCode, 503, 'not shed')
    t.not(res.statusCode, 429, 'not limited')
  }
})

t.test('a per-address rate limit loads @fastify/rate-limit and refuses the request over it', async t => {
  const app = await buildApp(depsWith({ MAX_EVENT_LOOP_DELAY_MS: '0', RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_IP_PER_MINUTE: '1' }))
  t.teardown(async () => { await app.close() })
  const first = await app.inject(KEY_REQUEST)
  t.not(first.statusCode, 429, 'the first is within the limit')
  const second = await app.inject(KEY_REQUEST)
  t.equal(second.statusCode, 429, 'the second is over it')
  t.equal(second.headers['x-ratelimit-limit'], '1')
  t.equal(loaded('@fastify/rate-limit'), true)
})

t.test('MAX_EVENT_LOOP_DELAY_MS > 0 loads @fastify/under-pressure, which sheds key requests while the event loop lags, and only those', async t => {
  const app = await buildApp(depsWith({ MAX_EVENT_LOOP_DELAY_MS: '1', RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_IP_PER_MINUTE: '0' }))
  t.teardown(async () => { await app.close() })
  await app.ready()
  t.equal(loaded('@fastify/under-pressure'), true)
  // under-pressure samples the event-loop delay every second: let its monitor start, then lag the loop until a sample sees it.
  await new Promise(resolve => setTimeout(resolve, 100))
  for (let i = 0; i < 20 && !app.isUnderPressure(); i++) {
    const block = Date.now() + 300
    while (Date.now() < block) { /* lag the event loop */ }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.equal(app.isUnderPressure(), true, 'under pressure after the lag')
  const shed = await app.inject(KEY_REQUEST)
  t.equal(shed.statusCode, 503, 'a key request is shed')
  t.equal(shed.headers['retry-after'], '5')
  const health = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(health.statusCode, 200, 'health still answers')
})
