// The PallyCon client loads only undici's Pool, request API and error classes (src/kms/pallycon.ts): they must be undici's own
// (test/kms/pallycon.test.ts drives that client against a real HTTP server).

import { createRequire } from 'node:module'
import t from 'tap'
import * as undici from 'undici'

const fromUndici = createRequire(import.meta.resolve('undici'))

t.test('the parts src/kms/pallycon.ts loads are the ones undici exports', async t => {
  t.equal(fromUndici('./lib/dispatcher/pool.js'), undici.Pool, 'Pool')
  t.equal(fromUndici('./lib/core/errors.js'), undici.errors, 'errors')
  t.equal(fromUndici('./lib/api/api-request.js'), undici.Dispatcher.prototype.request, 'the request API undici puts on every dispatcher')
})
