// Specification of the canonical record form and the hash chain that links records per instance.

import t from 'tap'
import { createHash } from 'node:crypto'
import { canonicalJson } from '../../src/audit/record.js'
import { chainRecord, GENESIS, GENESIS_HASH, recordHash, startWalk, walkRecord } from '../../src/audit/chain.js'
import { buildRecordBody } from '../../src/audit/record.js'
import { HMAC_KEY, sampleEvent } from './fixtures/helpers.js'

const body = (instance = 'i-1') => buildRecordBody(sampleEvent(), HMAC_KEY, instance, new Date('2025-03-01T10:00:00.000Z'))

t.test('canonical JSON sorts keys at every level and has no whitespace', async (t) => {
  t.equal(canonicalJson({ b: 1, a: [{ d: null, c: 'x' }], e: true }), '{"a":[{"c":"x","d":null}],"b":1,"e":true}')
  t.equal(canonicalJson({ z: 1, a: 2 }), canonicalJson({ a: 2, z: 1 }), 'key order in the input does not matter')
  t.equal(canonicalJson(['b', 'a']), '["b","a"]', 'array order is kept')
  t.equal(canonicalJson({ s: 'line\n"quoted"\u0001' }), '{"s":"line\\n\\"quoted\\"\\u0001"}', 'strings are escaped as JSON')
  t.equal(canonicalJson({ a: undefined, b: 1 }), '{"b":1}', 'undefined members are left out')
  t.throws(() => canonicalJson({ n: Number.NaN }), /no form/, 'non-finite numbers are refused')
})

t.test('the first record of a chain has seq 1 and prev_hash of 64 zeros', async (t) => {
  const r = chainRecord(body(), GENESIS)
  t.equal(GENESIS_HASH, '0'.repeat(64))
  t.equal(r.seq, 1)
  t.equal(r.prev_hash, GENESIS_HASH)
})

t.test('hash = sha256(prev_hash + canonical(record without hash))', async (t) => {
  const r = chainRecord(body(), GENESIS)
  const { hash, ...rest } = r
  const expected = createHash('sha256').update(r.prev_hash + canonicalJson(rest)).digest('hex')
  t.equal(hash, expected)
  t.equal(recordHash(r), expected, 'recordHash ignores a hash field already present')
})

t.test('each record links to the hash of the one before it', async (t) => {
  const first = chainRecord(body(), GENESIS)
  const second = chainRecord(body(), first)
  t.equal(second.seq, 2)
  t.equal(second.prev_hash, first.hash)
  t.not(second.hash, first.hash)
})

t.test('a walk accepts a well-linked chain and names what is wrong otherwise', async (t) => {
  const a1 = chainRecord(body('a'), GENESIS)
  const a2 = chainRecord(body('a'), a1)
  const a3 = chainRecord(body('a'), a2)
  const b1 = chainRecord(body('b'), GENESIS)

  const walk = startWalk()
  for (const r of [a1, b1, a2, a3]) t.equal(walkRecord(walk, r), undefined, `seq ${r.seq} of ${r.instance_id} links up`)
  t.equal(walk.records, 4)
  t.equal(walk.heads.size, 2, 'two interleaved chains')

  t.match(walkRecord(startWalk(), { ...a1, outcome: 'rejected' }), /hash does not match.*altered/, 'an edited field')
  t.match(walkRecord(startWalk(), a2), /seq 2 where seq 1 was expected.*removed/, 'a chain missing its first record')
  const skip = startWalk(); walkRecord(skip, a1)
  t.match(walkRecord(skip, a3), /removed or reordered/, 'a record missing in the middle')
  const back = startWalk(); walkRecord(back, a1); walkRecord(back, a2)
  t.match(walkRecord(back, a1), /reordered or duplicated/, 'a record going backwards')
  const forged = { ...a2, prev_hash: 'f'.repeat(64) }
  const relinked = { ...forged, hash: recordHash(forged) }
  const link = startWalk(); walkRecord(link, a1)
  t.match(walkRecord(link, relinked), /prev_hash does not match/, 'a record re-hashed onto a different predecessor')
  t.match(walkRecord(startWalk(), [1, 2]), /not a JSON object/)
  t.match(walkRecord(startWalk(), { seq: 1 }), /no instance_id/)
})
