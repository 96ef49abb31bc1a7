// Audit trail public API: record requests, keep the HMAC and signing keys, query, verify, prune.

export { openAuditTrail, type AuditSettings, type AuditTrail } from './trail.js'
export { loadOrCreateHmacKey } from './hmac-key.js'
export { hmacValue, type AuditEvent, type AuditRecord } from './record.js'
export { recordHash } from './chain.js'
export { verifyAuditFiles, verifyAuditDatabase } from './verify.js'
export { queryAudit, type AuditSource, type AuditFilter } from './query.js'
export { migrateAuditDatabase } from './pg-schema.js'
export { runAuditVerify, runAuditCli } from './cli-verify.js'
export { publicKeyPem, keyIdOf } from './signing-key.js'
export { pruneAuditFiles } from './prune.js'
export { signEntry, type SignedEntry, type Signer } from './checkpoint.js'
