// Conformance gap (issue 10): a SPEKE v2.1 request in CPIX 2.4 that still says playlist="master" got a 200
// whose reply fails the CPIX 2.4 schema; now it is an AWS-style 400 that never reaches the KMS.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { replyWith, startFakeKms } from '../helpers/fake-kms.js'
import { DEMO_TOKEN, FIXTURES } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'
import { xsdErrorsMany } from '../helpers/xsd.js'

// AWS's SPEKE v2.1 suite request: CPIX 2.4, yet HLSSignalingData playlist="master" (the CPIX 2.3 name).
const MASTER_IN_24 = readFileSync(join(FIXTURES, 'aws-suite', 'negative-v21-playlist-master.xml'))
const MULTIVARIANT_IN_24 = Buffer.from(MASTER_IN_24.toString('utf8').replace(/playlist="master"/g, 'playlist="multiVariant"'))
const PATH = `/cpix/getKey?enc-token=${encodeURIComponent(DEMO_TOKEN)}`
const V21 = { 'content-type': 'application/xml', 'x-speke-version': '2.1' }

t.test('SPEKE v2.1, CPIX 2.4, playlist="master": a 400 with AWS-style text, SPEKE headers, and nothing sent upstream', async t => {
  t.match(MASTER_IN_24.toString('utf8'), /version="2\.4"[\s\S]*playlist="master"/, 'the attack document is CPIX 2.4 and says master')
  const kms = await startFakeKms(replyWith(500, 'text/plain', 'the KMS must not be asked'))
  const proxy = await startProxy({ KMS_URL: kms.url, AUDIT: 'off' })
  t.teardown(async () => { await proxy.close(); await kms.close() })
  const res = await request(`${proxy.url}${PATH}`, { method: 'POST', headers: V21, body: MASTER_IN_24 })
  t.equal(res.statusCode, 400)
  t.equal(await res.body.text(), 'Non compliant HLSSignalingData@playlist master for CPIX@version 2.4: use multiVariant')
  t.equal(res.headers['x-speke-version'], '2.1', 'the refusal keeps the SPEKE version header')
  t.equal(kms.received.length, 0, 'nothing reached the KMS')
})

t.test('the same request with multiVariant gets a 200 whose reply passes the CPIX 2.4 schema', async t => {
  const proxy = await startProxy({ KMS_URL: 'local', AUDIT: 'off' })
  t.teardown(() => proxy.close())
  const res = await request(`${proxy.url}${PATH}`, { method: 'POST', headers: V21, body: MULTIVARIANT_IN_24 })
  const reply = await res.body.text()
  t.equal(res.statusCode, 200, reply.slice(0, 200))
  t.match(reply, /playlist="multiVariant"/)
  t.notMatch(reply, /playlist="master"/)
  const [requestErrors, replyErrors, attackErrors] = await xsdErrorsMany([
    { xml: MULTIVARIANT_IN_24.toString('utf8'), cpixVersion: '2.4' },
    { xml: reply, cpixVersion: '2.4' },
    { xml: MASTER_IN_24.toString('utf8'), cpixVersion: '2.4' }
  ])
  t.same(requestErrors, [], 'the multiVariant request is valid CPIX 2.4')
  t.same(replyErrors, [], 'and so is its reply')
  t.match(attackErrors.join('\n'), /playlist.*master/, 'the CPIX 2.4 schema refuses master: the echo the proxy used to send back was invalid')
})
