// First look at what the KMS answered: CPIX goes on; errors become proxy-written messages; no secret gets through.

import { ProxyError } from '../errors.js'
import { decodeBase64 } from '../cpix/base64.js'
import type { CpixDocument } from '../cpix/model.js'
import type { ProviderReply } from '../kms/provider.js'
import { secretScrubber } from '../redact.js'
import type { Scrubber } from '../redact.js'

/** Longest KMS text quoted back (PallyCon's error_code and error_message together). */
const MAX_MESSAGE = 200
/** How much of an error message is looked at at all: more than MAX_MESSAGE, so a secret cut in half is still seen. */
const MAX_SCANNED = 1000

type ReplyKind = 'xml' | 'json' | 'html' | 'empty' | 'other'

function kindOf (text: string, body: Buffer): ReplyKind {
  const head = text.replace(/^\uFEFF/, '').trimStart()
  if (head === '') return 'empty'
  if (head.startsWith('{') || head.startsWith('[')) return 'json'
  if (/^<!doctype html|^<html/i.test(head)) return 'html'
  if (head.startsWith('<') || body[0] === 0xff || body[0] === 0xfe) return 'xml'
  return 'other'
}

/**
 * Throws the ProxyError a caller should see when the KMS did not answer with CPIX, or answered CPIX that quotes
 * one of `secrets` (it would reach the caller). KMS text is never passed on, except the allow-listed fields of a
 * JSON error (PallyCon's error_code and error_message), scrubbed of every spelling of each secret and cut to
 * 200 characters, and a refusal the embedded provider wrote itself.
 */
export function rejectNonCpix (reply: ProviderReply, secrets: string[]): void {
  const scrubber = secretScrubber(secrets)
  const charset = replyCharset(reply.body, reply.contentType)
  const text = decode(reply.body, charset)
  const kind = kindOf(text, reply.body)
  const ok = reply.status >= 200 && reply.status < 300
  if (!ok && reply.refusal !== undefined) {
    const status = reply.status >= 400 && reply.status < 500 ? reply.status : 502
    throw kmsFailure(status, `KMS refused the request (HTTP ${reply.status}): ${quote(reply.refusal, scrubber)}`)
  }
  if (kind === 'json') {
    const { message, classifyBy } = jsonError(text, scrubber)
    const status = jsonErrorStatus(classifyBy)
    throw kmsFailure(status, `KMS error (HTTP ${reply.status}): ${message}`)
  }
  if (kind === 'html' || kind === 'empty') {
    throw new ProxyError('KMS_NO_CPIX', `KMS returned no CPIX (HTTP ${reply.status}, ${kind === 'html' ? 'an HTML page' : 'an empty body'})`)
  }
  if (ok && kind !== 'xml') {
    throw new ProxyError('KMS_NO_CPIX', `KMS returned no CPIX (HTTP ${reply.status}, ${describeType(reply.contentType, scrubber)})`)
  }
  if (!ok) {
    // Never the KMS's bytes (plain text, XML, a WAF's page): a proxy-written message. 4xx stays the caller's to fix.
    const status = reply.status >= 400 && reply.status < 500 ? reply.status : 502
    const what = status === 502 ? 'KMS error' : 'KMS refused the request'
    throw kmsFailure(status, `${what} (HTTP ${reply.status}): ${statusHint(reply.status)} (the KMS's own text is not passed on)`)
  }
  if (quotesSecret(reply, text, charset, scrubber)) {
    throw new ProxyError('KMS_REPLY_QUOTES_SECRET', 'KMS reply quotes the enc-token or its access key; it is withheld so that the credential does not reach the caller')
  }
}

/** A KMS failure as the caller sees it: 502 KMS_ERROR, or the KMS's 4xx passed on as KMS_REFUSED. */
function kmsFailure (status: number, message: string): ProxyError {
  return status === 502 ? new ProxyError('KMS_ERROR', message) : new ProxyError('KMS_REFUSED', message, status)
}

function statusHint (status: number): string {
  if (status === 401 || status === 403) return 'the KMS did not accept the enc-token or its site'
  if (status === 404) return 'the KMS has no such URL (check KMS_URL)'
  if (status === 408 || status === 429) return 'the KMS is busy, try again later'
  if (status >= 400 && status < 500) return 'the KMS found the request invalid'
  return 'the KMS failed to answer'
}

/**
 * A CPIX reply that carries a secret anywhere, in any spelling and in any of the charsets the body may be in.
 * `text` is the body decoded from `charset`; each other charset it may really be in is decoded and searched too.
 */
function quotesSecret (reply: ProviderReply, text: string, charset: string, scrubber: Scrubber): boolean {
  if (reply.contentType !== undefined && scrubber.contains(reply.contentType)) return true
  if (scrubber.contains(text)) return true
  const searched = encodingOf(charset) ?? 'utf-8'
  return alternativeCharsets(reply.body).filter(c => c !== searched).some(c => scrubber.contains(decode(reply.body, c)))
}

/** The encoding a charset label decodes as ('UTF-8', 'utf8', 'unicode-1-1-utf-8': 'utf-8'); undefined when TextDecoder does not know it. */
function encodingOf (label: string): string | undefined {
  try {
    return new TextDecoder(label).encoding
  } catch {
    return undefined
  }
}

/** The charsets a mislabelled body may really be in: UTF-8, and UTF-16 either way when it has NULs. */
function alternativeCharsets (body: Buffer): string[] {
  return body.includes(0) ? ['utf-8', 'utf-16le', 'utf-16be'] : ['utf-8']
}

/**
 * The charset a reply body is read in: a byte-order mark first, then the Content-Type charset, then an XML
 * declaration, then the NUL pattern of BOM-less UTF-16 (XML 1.0 Appendix F), else UTF-8. Unknown charsets are
 * passed over; `decode` never throws (replacement characters for invalid sequences).
 */
export function replyCharset (body: Buffer, contentType: string | undefined): string {
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) return 'utf-8'
  if (body[0] === 0xff && body[1] === 0xfe) return 'utf-16le'
  if (body[0] === 0xfe && body[1] === 0xff) return 'utf-16be'
  const declared = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '')?.[1]
  const nulPattern = body.length >= 2 && body[0] === 0 && body[1] !== 0 ? 'utf-16be' : body.length >= 2 && body[0] !== 0 && body[1] === 0 ? 'utf-16le' : undefined
  if (declared !== undefined && encodingOf(declared) !== undefined) return utf16Default(declared, nulPattern)
  const xmlDeclared = /^\s*<\?xml\s[^?]*?encoding\s*=\s*["']([^"']+)["']/.exec(decode(body.subarray(0, 256), nulPattern ?? 'utf-8'))?.[1]
  if (xmlDeclared !== undefined && encodingOf(xmlDeclared) !== undefined) return utf16Default(xmlDeclared, nulPattern)
  return nulPattern ?? 'utf-8'
}

/** Plain "UTF-16" names no byte order: the NUL pattern tells it, big-endian otherwise (RFC 2781). */
function utf16Default (label: string, nulPattern: string | undefined): string {
  return label.toLowerCase().replace(/[^a-z0-9]/g, '') === 'utf16' ? (nulPattern ?? 'utf-16be') : label
}

function decode (body: Buffer, label: string): string {
  try {
    return new TextDecoder(label, { fatal: false }).decode(body)
  } catch {
    return new TextDecoder('utf-8', { fatal: false }).decode(body)
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

/** Names of the fields quoted from a JSON error: PallyCon's, and the shorter ones some of its endpoints use. */
const MESSAGE_FIELDS = ['error_message', 'message', 'error']
const CODE_FIELDS = ['error_code', 'code']

/**
 * The quotable message of a JSON error (allow-listed fields only, scrubbed, cut) and the scrubbed text its
 * status is judged by (the message, or the whole body when it has none; never quoted).
 */
function jsonError (text: string, scrubber: Scrubber): { message: string, classifyBy: string } {
  let parsed: unknown
  try {
    parsed = JSON.parse(text.replace(/^\uFEFF/, ''))
  } catch {
    parsed = undefined
  }
  const record = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed as Record<string, unknown> : {}
  const message = MESSAGE_FIELDS.map(key => record[key]).find((v): v is string => typeof v === 'string' && v.trim() !== '')
  const rawCode = CODE_FIELDS.map(key => record[key]).find(v => typeof v === 'string' || typeof v === 'number')
  const code = rawCode !== undefined && /^[A-Za-z0-9_.-]{1,32}$/.test(String(rawCode)) ? String(rawCode) : undefined
  if (message === undefined) {
    const what = parsed === undefined ? 'an unreadable JSON body' : 'a JSON error without error_message'
    return { message: `the KMS answered ${what}${code !== undefined ? ` (error_code ${code})` : ''}`, classifyBy: scrubber.scrub(text.slice(0, MAX_SCANNED)) }
  }
  const clean = cleaned(code !== undefined ? `${code} ${message}` : message, scrubber)
  return { message: cut(clean), classifyBy: clean }
}

/** KMS text fit to quote: control characters and runs of spaces folded, secrets scrubbed, then cut. */
function quote (text: string, scrubber: Scrubber): string {
  return cut(cleaned(text, scrubber))
}

function cleaned (text: string, scrubber: Scrubber): string {
  // eslint-disable-next-line no-control-regex -- the point: a KMS message is quoted on one line, so control characters become spaces
  return scrubber.scrub(text.slice(0, MAX_SCANNED).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\s]+/g, ' ').trim())
}

function cut (text: string): string {
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text
}

/** A reply's media type, when it is one (never parameters, never longer than a media type can reasonably be). */
function describeType (contentType: string | undefined, scrubber: Scrubber): string {
  if (contentType === undefined || contentType.trim() === '') return 'no content type'
  const media = contentType.split(';')[0].trim()
  if (!/^[A-Za-z0-9!#$&^_.+-]{1,40}\/[A-Za-z0-9!#$&^_.+-]{1,60}$/.test(media) || scrubber.scrub(media) !== media) return 'an unexpected content type'
  return media
}

/** The clear content keys a CPIX reply carries (for audit fingerprints). */
export function keysInReply (doc: CpixDocument): Array<{ kid: string, key: Buffer }> {
  const out: Array<{ kid: string, key: Buffer }> = []
  for (const key of doc.contentKeys) {
    const bytes = key.plainValue === undefined ? undefined : decodeBase64(key.plainValue)
    if (bytes !== undefined && bytes.length > 0) out.push({ kid: key.kid, key: bytes })
  }
  return out
}
