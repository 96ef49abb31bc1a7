// Specification of the rate-limit buckets: managed tenants by id, pass-through tokens by their own hash,
// clients by IPv4 address or IPv6 /64.

import t from 'tap'
import { createHash } from 'node:crypto'
import { clientAddressKey, rateLimitKey } from '../../src/tenants/rate-key.js'
import { encodeEncToken } from '../../src/tenants/enc-token.js'

t.test('a managed tenant counts by its id, whichever of its credentials is used', async t => {
  const caller = { tenant: 'acme', upstreamToken: encodeEncToken('ACME', 'secret'), managed: true }
  t.equal(rateLimitKey(caller, 'credential-one'), 'managed:acme')
  t.equal(rateLimitKey(caller, 'credential-two'), 'managed:acme')
})

t.test('a pass-through token counts by its own hash, never by the site id inside it', async t => {
  const token = encodeEncToken('ACME', 'access-key-1')
  const forged = encodeEncToken('ACME', 'access-key-2')
  const key = rateLimitKey({ tenant: 'site:ACME', upstreamToken: token, managed: false }, token)
  t.equal(key, `token:${createHash('sha256').update(token).digest('hex')}`)
  t.not(rateLimitKey({ tenant: 'site:ACME', upstreamToken: forged, managed: false }, forged), key, 'another token naming the same site has its own bucket')
  t.notOk(key.includes('ACME'), 'the unverified site id is not part of the key')
})

t.test('client addresses: IPv4 as is (also IPv4-mapped), IPv6 by its /64 prefix', async t => {
  t.equal(clientAddressKey('203.0.113.9'), 'ip:203.0.113.9')
  t.equal(clientAddressKey('::ffff:203.0.113.9'), 'ip:203.0.113.9')
  t.equal(clientAddressKey('::FFFF:203.0.113.9'), 'ip:203.0.113.9')
  t.equal(clientAddressKey('2001:db8:1:2:3:4:5:6'), 'ip6:2001:db8:1:2::/64')
  t.equal(clientAddressKey('2001:db8:1:2::6'), 'ip6:2001:db8:1:2::/64', 'another host of the same /64')
  t.equal(clientAddressKey('2001:DB8:0001:0002:ffff::1%eth0'), 'ip6:2001:db8:1:2::/64', 'letter case, leading zeros and a zone id do not matter')
  t.equal(clientAddressKey('::1'), 'ip6:0:0:0:0::/64')
  t.not(clientAddressKey('2001:db8:1:3::1'), clientAddressKey('2001:db8:1:2::1'), 'the next /64 is another bucket')
})
