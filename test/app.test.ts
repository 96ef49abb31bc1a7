// buildApp: Fastify's schema compilers are loaded only when a route asks for one, and then work as Fastify's own.

import { createRequire } from 'node:module'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { createLogger } from '../src/logger.js'
import type { KeyProvider } from '../src/kms/provider.js'

const provider: KeyProvider = {
  name: 'local',
  getKeys: async () => { throw new Error('no key request in this test') },
  close: async () => {}
}

const deps = {
  config: loadConfig({ KMS_URL: 'local', LOCAL_KMS_SECRET: Buffer.alloc(32, 7).toString('base64'), LOG_LEVEL: 'silent' }),
  provider,
  tenants: { tenants: [], allowPassthrough: true },
  logger: createLogger('silent')
}

const loaded = (name: string): boolean => Object.keys(createRequire(import.meta.url).cache).some(path => path.includes(`/node_modules/${name}/`))

t.test('the app starts without building a schema compiler (no route has a schema)', async t => {
  const app = await buildApp(deps)
  await app.ready()
  t.teardown(async () => { await app.close() })
  t.equal(loaded('@fastify/ajv-compiler'), false, 'no Ajv')
  t.equal(loaded('@fastify/fast-json-stringify-compiler'), false, 'no fast-json-stringify')
})

t.test('a route with a JSON schema gets its body validated and its reply serialised by Fastify\'s own compilers', async t => {
  const app = await buildApp({
    ...deps,
    plugins: [async (app) => {
      app.post('/schema-check', {
        schema: {
          body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } },
          response: { 200: { type: 'object', properties: { twice: { type: 'integer' } } } }
        }
      }, async (request) => ({ twice: (request.body as { n: number }).n * 2, dropped: 'not in the response schema' }))
    }]
  })
  t.teardown(async () => { await app.close() })
  const ok = await app.inject({ method: 'POST', url: '/schema-check', payload: { n: 21 } })
  t.equal(ok.statusCode, 200)
  t.same(JSON.parse(ok.body), { twice: 42 }, 'fast-json-stringify wrote only what the response schema names')
  const bad = await app.inject({ method: 'POST', url: '/schema-check', payload: { n: 'x' } })
  t.equal(bad.statusCode, 400, 'Ajv refused a body that breaks the schema')
  t.equal(loaded('@fastify/ajv-compiler'), true, 'loaded once asked for')
})
