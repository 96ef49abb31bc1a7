// The secret scan of whole KMS replies (Scrubber.contains): its fast path for bodies without escapes finds what the full
// canonical comparison finds, '+' written as a space included.

import t from 'tap'
import { secretScrubber } from '../../src/redact.js'

const token = (accessKey: string): string => Buffer.from(JSON.stringify({ site_id: 'ACME', access_key: accessKey })).toString('base64')

t.test('a body without escapes: every spelling is found, case and + as space included; clean bodies pass', async t => {
  for (const accessKey of ['plain-access-key-1', 'k3Yq8/Zr+T0pWm5?xy~Hn2Lb7VcXs4RdQe', 'with space+plus+signs']) {
    const secret = token(accessKey)
    const scrubber = secretScrubber([secret])
    const filler = '<cpix:PSSH>' + Buffer.alloc(3000, 7).toString('base64') + '</cpix:PSSH>\n  '
    const body = (inner: string): string => `<?xml version="1.0"?>\n<cpix:CPIX>${filler}${inner}${filler}</cpix:CPIX>`
    t.notOk(scrubber.contains(body('')), `${accessKey}: a clean body passes`)
    for (const spelling of [secret, secret.toUpperCase(), secret.replace(/=+$/, ''), secret.replace(/\+/g, ' '), accessKey, accessKey.replace(/\+/g, ' '), Buffer.from(accessKey).toString('base64url')]) {
      t.ok(scrubber.contains(body(`<!-- ${spelling} -->`)), `${accessKey}: found ${spelling.slice(0, 24)}`)
      t.ok(scrubber.contains(body(`<!-- ${spelling} -->&amp;`)), `${accessKey}: found ${spelling.slice(0, 24)} in a body with an escape`)
    }
    t.ok(scrubber.contains(body(`<!-- ${encodeURIComponent(accessKey)} -->`)), `${accessKey}: found percent-encoded`)
  }
})

t.test('the same scrubber is handed out for the same secrets', async t => {
  const secrets = [token('cached-access-key'), 'cached-access-key']
  t.equal(secretScrubber(secrets), secretScrubber([...secrets]))
  t.not(secretScrubber(secrets), secretScrubber([secrets[0]]))
})
