// First look at what the KMS answered: CPIX goes on, JSON errors, HTML pages and empty bodies become clear 5xx.

import { ProxyError } from '../errors.js'
import { decodeBase64 } from '../cpix/base64.js'
import { decodeXmlBytes } from '../cpix/decode.js'
import { parseCpix } from '../cpix/parse.js'
import type { ProviderReply } from '../kms/provider.js'

const MAX_MESSAGE = 300

export type ReplyKind = 'xml' | 'json' | 'html' | 'empty' | 'other'

export function replyKind (reply: ProviderReply): ReplyKind {
  const head = reply.body.subarray(0, 512).toString('utf8').replace(/^\uFEFF/, '').trimStart()
  if (head === '') return 'empty'
  if (head.startsWith('{') || head.startsWith('[')) return 'json'
  if (/^<!doctype html|^<html/i.test(head)) return 'html'
  if (head.startsWith('<') || reply.body[0] === 0xff || reply.body[0] === 0xfe) return 'xml'
  return 'other'
}

/**
 * Throws the ProxyError a caller should see when the KMS did not answer with CPIX.
 * `secrets` are scrubbed from any KMS text that is quoted back.
 */
export function rejectNonCpix (reply: ProviderReply, secrets: string[]): void {
  const kind = replyKind(reply)
  if (kind === 'json') {
    const message = truncate(scrub(jsonMessage(reply.body), secrets))
    const status = jsonErrorStatus(message)
    throw new ProxyError(status, status === 502 ? 'KMS_ERROR' : 'KMS_REFUSED', `KMS error (HTTP ${reply.status}): ${message}`)
  }
  if (kind === 'html' || kind === 'empty') {
    throw new ProxyError(502, 'KMS_NO_CPIX', `KMS returned no CPIX (HTTP ${reply.status}, ${kind === 'html' ? 'an HTML page' : 'an empty body'})`)
  }
  if (reply.status >= 200 && reply.status < 300 && kind !== 'xml') {
    throw new ProxyError(502, 'KMS_NO_CPIX', `KMS returned no CPIX (HTTP ${reply.status}, ${reply.contentType ?? 'no content type'})`)
  }
  if (reply.status < 200 || reply.status >= 300) {
    // Never the KMS's bytes: a proxy-written message with a scrubbed excerpt. 4xx stays the caller's to fix.
    const excerpt = truncate(scrub(reply.body.toString('utf8'), secrets).replace(/\s+/g, ' ').trim())
    const status = reply.status >= 400 && reply.status < 500 ? reply.status : 502
    throw new ProxyError(status, status === 502 ? 'KMS_ERROR' : 'KMS_REFUSED', `KMS refused the request (HTTP ${reply.status})${excerpt === '' ? '' : `: ${excerpt}`}`)
  }
}

/**
 * PallyCon answers errors as JSON, even with status 200. One that blames the token or site is the caller's
 * to fix (403), one that blames the request too (400); anything else is the KMS's trouble (502).
 */
export function jsonErrorStatus (message: string): number {
  if (/token|site|access[ _-]?key|auth|permission|forbidden|expired|not allowed|service is stopped/i.test(message)) return 403
  if (/request|parameter|invalid|missing|malformed|content ?id|\bcid\b|\bkid\b|xml|cpix|not supported|unsupported/i.test(message)) return 400
  return 502
}

function jsonMessage (body: Buffer): string {
  const text = body.toString('utf8')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return text.trim()
  }
  if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
    const record = parsed as Record<string, unknown>
    const message = ['message', 'error_message', 'errorMessage', 'error', 'msg', 'description', 'detail']
      .map(key => record[key]).find(v => typeof v === 'string' && v !== '') as string | undefined
    const code = ['code', 'error_code', 'errorCode', 'status'].map(key => record[key]).find(v => typeof v === 'string' || typeof v === 'number')
    if (message !== undefined) return code !== undefined ? `${String(code)} ${message}` : message
  }
  return JSON.stringify(parsed)
}

function truncate (text: string): string {
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text
}

/** Replace every spelling of each secret (as is, URL-encoded, JSON-escaped) before anything is cut or quoted. */
export function scrub (text: string, secrets: string[]): string {
  let out = text
  for (const secret of secrets) {
    if (secret.length < 8) continue
    for (const form of new Set([secret, encodeURIComponent(secret), secret.replace(/\//g, '\\/')])) out = out.split(form).join('[redacted]')
  }
  return out
}

/** The clear content keys a CPIX reply carries (for audit fingerprints); empty when the reply cannot be read. */
export function keysInReply (body: Buffer | string): Array<{ kid: string, key: Buffer }> {
  try {
    const doc = parseCpix(typeof body === 'string' ? body : decodeXmlBytes(body))
    const out: Array<{ kid: string, key: Buffer }> = []
    for (const key of doc.contentKeys) {
      const bytes = key.plainValue === undefined ? undefined : decodeBase64(key.plainValue)
      if (bytes !== undefined && bytes.length > 0) out.push({ kid: key.kid, key: bytes })
    }
    return out
  } catch {
    return []
  }
}
