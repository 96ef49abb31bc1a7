// One key request, start to finish: caller (identified before the body was read) → Content-Type → SPEKE version → CPIX validation
// → key provider → reply checks → encrypted delivery → audit → reply.

import { randomBytes } from 'node:crypto'
import { ProxyError, isProxyError } from '../errors.js'
import { decodeXmlBytes } from '../cpix/decode.js'
import { deliveryTarget, withoutDeliveryData } from '../cpix/delivery.js'
import type { DeliveryTarget } from '../cpix/delivery.js'
import { encryptReply } from '../cpix/encrypt-reply.js'
import type { RandomBytes } from '../cpix/encrypt-reply.js'
import type { CpixDocument } from '../cpix/model.js'
import { parseCpix } from '../cpix/parse.js'
import { writeXml } from '../cpix/xml.js'
import { summarizeRequest } from '../cpix/summary.js'
import { validateRequest } from '../cpix/validate.js'
import type { KeyProvider, ProviderReply, ProviderRequest } from '../kms/provider.js'
import { kmsRouteOf } from '../protocol.js'
import type { AneviaAsk, Dialect, KeyRouteName } from '../protocol.js'
import type { KeyRequestRecord, ReturnedKey } from '../request-record.js'
import { decodeEncToken } from '../tenants/enc-token.js'
import type { Caller } from '../tenants/registry.js'
import { checkCpixContentType } from './content-type.js'
import { dialectFor } from './dialect.js'
import { keysInReply, rejectNonCpix } from './kms-reply.js'
import { asProxyError, refusal, spekeHeaders } from './response.js'
import type { KeyResponse } from './response.js'

export interface KeyRequest {
  route: KeyRouteName
  /**
   * Who is calling: identified from the URL alone before any body byte was read (src/http/key-guard.ts),
   * so no work proportional to the body is ever done for a caller without a valid credential.
   */
  caller: Caller
  /** What the caller put in the enc-token position (query or path), for scrubbing KMS replies. */
  credential: string
  spekeVersion?: string
  keyRotation?: boolean
  anevia?: AneviaAsk
  body?: Buffer
  contentType?: string
  requestId: string
}

/** A step after the provider: verify (and for SPEKE v2 repair) the reply against the request. */
export type ReplyCheck = (input: {
  request: CpixDocument | undefined
  reply: ProviderReply
  dialect: Dialect
  anevia?: AneviaAsk
}) => CheckedReply

interface CheckedReply extends ProviderReply {
  /** Keys the verification read from the reply (for audit fingerprints). */
  returnedKeys?: ReturnedKey[]
  /** `body` as the check parsed it (after any repair), so that no later step parses it again. */
  document?: CpixDocument
  /** What repair changed, for the log. */
  repairs?: string[]
}

export interface PipelineDeps {
  provider: KeyProvider
  kmsTimeoutMs: number
  userAgent: string
  checkReply?: ReplyCheck
  /** Told about errors that are bugs (not ProxyErrors), for the log; the caller only sees a 500. */
  onInternalError?: (err: unknown) => void
  /** The clock DeliveryKey certificates are checked against (tests pass their own). */
  now?: () => Date
  /** Where encrypted delivery takes its document keys, MAC keys and IVs (crypto.randomBytes unless a test passes its own). */
  randomBytes?: RandomBytes
  /** Smallest RSA key a DeliveryKey certificate may have (DELIVERY_MIN_RSA_BITS; 2048, AWS's size, when unset). */
  deliveryMinRsaBits?: number
}

export async function handleKeyRequest (deps: PipelineDeps, req: KeyRequest): Promise<KeyResponse> {
  const caller = req.caller
  const kmsRoute = kmsRouteOf(req.route)
  const record: KeyRequestRecord = { route: req.route, tenant: caller.tenant, authenticated: true, outcome: 'rejected', status: 500, keysReturned: 0, spekeVersion: req.spekeVersion }
  const headers = spekeHeaders(req.route, req.spekeVersion, deps.userAgent)
  try {
    if (req.body !== undefined) checkCpixContentType(req.contentType)
    const dialect = dialectFor(kmsRoute, req.spekeVersion)
    record.dialect = dialect

    const doc = req.body === undefined ? undefined : parseCpix(decodeXmlBytes(req.body))
    if (doc !== undefined) {
      // Summarised before validation, so a refused request still says what it asked for.
      record.request = summarizeRequest(doc)
      validateRequest(doc, dialect)
    }
    // SPEKE callers may name a certificate to encrypt keys for: checked before the KMS is asked, which is asked for plain keys.
    const target = doc !== undefined && req.route === 'speke' ? deliveryTarget(doc, deps.now?.() ?? new Date(), deps.deliveryMinRsaBits) : undefined
    if (target !== undefined) record.deliveredEncrypted = true
    if (req.anevia !== undefined) {
      record.request = { contentId: req.anevia.contentId, kids: [], drmSystems: [], trackTypes: [], keyPeriods: [] }
    }

    const reply = await callProvider(deps, {
      route: kmsRoute,
      dialect,
      token: caller.upstreamToken,
      spekeVersion: req.spekeVersion,
      keyRotation: req.keyRotation,
      anevia: req.anevia,
      body: target === undefined || doc === undefined ? req.body : Buffer.from(withoutDeliveryData(doc), 'utf8'),
      document: target === undefined ? doc : undefined,
      contentType: target === undefined ? req.contentType : 'application/xml'
    }, record)
    rejectNonCpix(reply, secretsOf(caller, req.credential))
    const checked: CheckedReply = deps.checkReply?.({ request: doc, reply, dialect, anevia: req.anevia }) ?? reply
    record.outcome = checked.status >= 200 && checked.status < 300 ? 'ok' : 'upstream_error'
    record.status = checked.status
    record.repairs = checked.repairs
    // Without a reply check (RESPONSE_MODE=passthrough) the reply is read once here, for its keys' fingerprints and count.
    const answer = record.outcome !== 'ok' ? undefined : checked.document ?? readQuietly(checked.body)
    const returnedKeys = record.outcome === 'ok' ? (checked.returnedKeys ?? (answer === undefined ? [] : keysInReply(answer))) : []
    record.keysReturned = returnedKeys.length
    // Last step before audit and reply: fingerprints above came from the plain keys, the caller gets them sealed.
    const sealed = target !== undefined && record.outcome === 'ok' ? sealFor(checked, answer, target, deps.randomBytes ?? randomBytes) : { ...checked, document: answer }
    return {
      returnedKeys,
      status: sealed.status,
      headers: { 'content-type': sealed.contentType ?? 'application/xml', ...headers },
      body: sealed.body,
      document: sealed.document,
      record
    }
  } catch (err) {
    const error = asProxyError(err, deps.onInternalError)
    // The provider failing, or a 5xx ProxyError, is an upstream error; a bug (INTERNAL) and every other refusal are 'rejected'.
    const upstream = isProxyError(err) && (record.outcome === 'upstream_error' || error.status >= 500)
    return refusal(error, { ...record, outcome: upstream ? 'upstream_error' : 'rejected' }, headers)
  }
}

async function callProvider (deps: PipelineDeps, request: ProviderRequest, record: KeyRequestRecord): Promise<ProviderReply> {
  const signal = AbortSignal.timeout(deps.kmsTimeoutMs)
  try {
    const reply = await deps.provider.getKeys(request, signal)
    record.upstreamStatus = reply.status
    record.upstreamMs = Math.round(reply.latencyMs)
    return reply
  } catch (err) {
    record.outcome = 'upstream_error'
    throw err
  }
}

/** The reply with its keys encrypted for the request's DeliveryKey certificate (an already encrypted reply as it is). */
function sealFor (reply: CheckedReply, parsed: CpixDocument | undefined, target: DeliveryTarget, random: RandomBytes): CheckedReply {
  const answer = parsed ?? readOrRefuse(reply.body)
  if (!encryptReply(answer, target, random)) return { ...reply, document: answer }
  return { ...reply, contentType: 'application/xml', body: Buffer.from(writeXml(answer.root), 'utf8'), document: answer }
}

function readOrRefuse (body: Buffer): CpixDocument {
  try {
    return parseCpix(decodeXmlBytes(body))
  } catch (err) {
    throw new ProxyError('KMS_REPLY_NOT_CPIX', `KMS reply is not a usable CPIX document: ${isProxyError(err) ? err.message : 'unreadable'}`)
  }
}

/** A 2xx reply's CPIX document; undefined when it does not read as one (the caller then gets the bytes as they are). */
function readQuietly (body: Buffer): CpixDocument | undefined {
  try {
    return parseCpix(decodeXmlBytes(body))
  } catch {
    return undefined
  }
}

/** Every secret the KMS might quote back: both tokens and the access key inside them (redact.ts caches their scrubber). */
function secretsOf (caller: Caller, credential: string): string[] {
  const tokens = [caller.upstreamToken, credential]
  return [...tokens, ...tokens.map(t => decodeEncToken(t)?.accessKey ?? '')]
}
