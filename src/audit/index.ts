// Audit trail public API: record requests, keep the HMAC key, query, and verify the hash chains.

export { openAuditTrail, type AuditSettings, type AuditTrail } from './trail.js'
export { loadOrCreateHmacKey, HMAC_KEY_FILE, MIN_HMAC_KEY_BYTES } from './hmac-key.js'
export { hmacValue, canonicalJson, sha256Hex, AUDIT_OUTCOMES, type AuditEvent, type AuditRecord, type AuditOutcome } from './record.js'
export { GENESIS_HASH, recordHash } from './chain.js'
export { verifyAuditFiles, verifyAuditDatabase, type VerifyResult } from './verify.js'
export { queryAudit, DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT, type AuditSource, type AuditFilter, type AuditPage } from './query.js'
export { migrateAuditDatabase, AUDIT_MIGRATIONS } from './pg-schema.js'
export { openAuditPool } from './pg-sink.js'
export { runAuditVerify } from './cli-verify.js'
export type { AuditLog } from './sink.js'
