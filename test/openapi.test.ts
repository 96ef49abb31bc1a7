import t from 'tap'
import { createServer } from '../src/server.js'
import { loadConfig } from '../src/config.js'
const DEMO = 'eyJhY2Nlc3Nfa2V5IjoiZHNJb2xjN2gxRzhUVW1JMTdiWXd4aFV1TkZvRmNlNzJjeDllTU9rNjJ3YjhWTjJQZGdwV1lISXhTRVg5ZjBIaSIsInNpdGVfaWQiOiJERU1PIn0='
t.test('x', async (t) => {
  const s = await createServer(loadConfig({ KMS_URL: 'local', ADMIN_TOKEN: 'x', DATA_DIR: t.testdir(), LOG_LEVEL: 'silent' }))
  const app = s.app
  const u = '/cpix/getKey?enc-token=' + encodeURIComponent(DEMO)
  for (const payload of ['<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix"><cpix:ContentKeyList><cpix:ContentKey></cpix:ContentKeyList></cpix:CPIX>', '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"/>', '<?xml version="1.0" encoding="ISO-8859-1"?><a/>',
    '<cpix:CPIX id="x" xmlns:cpix="urn:dashif:org:cpix"><cpix:ContentKeyList><cpix:ContentKey kid="1234"/></cpix:ContentKeyList></cpix:CPIX>']) {
    const r = await app.inject({ method: 'POST', url: u, headers: { 'content-type': 'application/xml' }, payload })
    console.log(r.statusCode, r.body)
  }
  const r = await app.inject({ method: 'POST', url: '/v2/keys?enc-token=x', headers: { 'content-type': 'application/json' }, payload: '{"content_id":"a"}' })
  console.log(r.statusCode, r.body)
  await s.close()
})
