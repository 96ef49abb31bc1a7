import t from 'tap'
import { createServer } from '../src/server.js'
import { loadConfig } from '../src/config.js'
const DEMO = 'eyJhY2Nlc3Nfa2V5IjoiZHNJb2xjN2gxRzhUVW1JMTdiWXd4aFV1TkZvRmNlNzJjeDllTU9rNjJ3YjhWTjJQZGdwV1lISXhTRVg5ZjBIaSIsInNpdGVfaWQiOiJERU1PIn0='
t.test('x', async (t) => {
  const s = await createServer(loadConfig({ KMS_URL: 'local', ADMIN_TOKEN: 'x', DATA_DIR: t.testdir(), LOG_LEVEL: 'silent' }))
  const app = s.app
  const show = (r: { statusCode: number, headers: unknown, body: string }) => console.log(r.statusCode, JSON.stringify(r.headers), r.body.slice(0, 300))
  show(await app.inject({ method: 'POST', url: '/admin/audit/hash', headers: { authorization: 'Bearer x', 'content-type': 'application/json' }, payload: JSON.stringify({ value: 'abc' }) }))
  show(await app.inject({ method: 'POST', url: '/v2/keys?enc-token=' + encodeURIComponent(DEMO), headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ content_id: 'demotest', drm_types: ['widevine', 'playready', 'fairplay'], encryption_scheme: 'cenc', track_types: ['HD'], key_rotation: false }) }))
  show(await app.inject({ method: 'GET', url: '/cpix/anevia/dash/' + DEMO + '/test-cid' }))
  show(await app.inject({ method: 'GET', url: '/readyz' }))
  show(await app.inject({ method: 'GET', url: '/metrics' }))
  show(await app.inject({ method: 'POST', url: '/cpix/getKey?enc-token=' + encodeURIComponent(DEMO), headers: { 'x-speke-version': '3.0', 'content-type': 'application/xml' }, payload: '<a/>' }))
  await s.close()
})
