// Specification that no secret reaches storage: key bytes (in any spelling), the HMAC key and body contents never appear in files or rows.

import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { openAuditTrail } from '../../src/audit/index.js'
import { HMAC_KEY, KEY_A, KEY_B, keySpellings, PG_URL, pgSchema, sampleEvent, sql } from './fixtures/helpers.js'

const SECRETS = [...keySpellings(KEY_A), ...keySpellings(KEY_B), ...keySpellings(HMAC_KEY), 'secret content keys']

t.test('files and rows hold fingerprints, never keys, the HMAC key or body contents', async (t) => {
  const schema = await pgSchema(t)
  if (schema === undefined) return
  const dir = join(t.testdir(), 'audit')
  const trail = await openAuditTrail({ dir, databaseUrl: PG_URL, databaseSchema: schema, hmacKey: HMAC_KEY, instanceId: 'proxy-a', failOpen: false, writeTimeoutMs: 3000 })
  await trail.record(sampleEvent({
    returnedKeys: [{ kid: '11111111-2222-3333-4444-555555555555', key: KEY_A }, { kid: '66666666-7777-8888-9999-000000000000', key: KEY_B }],
    outcome: 'upstream_error',
    error: `upstream echoed ${KEY_B.toString('base64')} and ${KEY_A.toString('hex')}`
  }))
  await trail.close()

  const fileText = readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n')
  const rowText = (await sql<{ row: string }>(`SELECT row_to_json(r)::text AS row FROM "${schema}".audit_records r`)).map((r) => r.row).join('\n')
  t.match(fileText, /hmac-sha256:[0-9a-f]{64}/, 'the file does hold fingerprints')
  t.match(rowText, /hmac-sha256:[0-9a-f]{64}/, 'the row does hold fingerprints')
  for (const secret of SECRETS) {
    t.notOk(fileText.includes(secret), `file: no ${secret}`)
    t.notOk(rowText.includes(secret), `row: no ${secret}`)
  }
})
