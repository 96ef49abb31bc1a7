// Verifies every CPIX reply against its request and, for SPEKE v2 callers, repairs it (RESPONSE_MODE=repair).

import { ProxyError, isProxyError } from '../errors.js'
import { aneviaRequestXml } from '../cpix/anevia.js'
import { decodeXmlBytes } from '../cpix/decode.js'
import type { CpixDocument } from '../cpix/model.js'
import { parseCpix, readCpix } from '../cpix/parse.js'
import { repairForSpekeV2 } from '../cpix/repair.js'
import { signallingReader } from '../cpix/signalling-reader.js'
import { spekeV2Problems } from '../cpix/speke-v2-conformance.js'
import { isSpekeV2 } from '../protocol.js'
import { verifyReply } from '../cpix/verify-reply.js'
import { writeXml } from '../cpix/xml.js'
import type { ReplyCheck } from './key-request.js'

export function verifyAndRepair (): ReplyCheck {
  return ({ request, reply, dialect, anevia }) => {
    if (reply.status < 200 || reply.status >= 300) return reply
    const asked = request ?? (anevia === undefined ? undefined : parseCpix(aneviaRequestXml(anevia.format, anevia.contentId)))
    const answer = readReply(reply.body)
    if (asked === undefined) return { ...reply, document: answer }
    // One reader for this reply: verification, repair and the SPEKE v2 checks decode each PSSH, header and tag once between them.
    const reader = signallingReader()
    const verified = verifyReply(asked, answer, reader)
    if (!isSpekeV2(dialect)) return { ...reply, returnedKeys: verified.keys, document: answer }

    const result = repairForSpekeV2(asked, answer, verified.kidMap, reader)
    // Repair edits the element tree: judge the document that goes out, its model read again from that tree.
    const body = result.changed ? Buffer.from(writeXml(answer.root), 'utf8') : reply.body
    const sent = result.changed ? readCpix(answer.root) : answer
    const problems = spekeV2Problems(asked, sent, verified.kidMap, reader)
    if (problems.length > 0) throw new ProxyError('KMS_REPLY_NOT_SPEKE_V2', `KMS reply cannot be made SPEKE v2 compliant: ${problems[0]}`)
    return {
      ...reply,
      contentType: result.changed ? 'application/xml' : reply.contentType,
      body,
      returnedKeys: verified.keys,
      repairs: result.repairs,
      document: sent
    }
  }
}

function readReply (body: Buffer): CpixDocument {
  try {
    return parseCpix(decodeXmlBytes(body))
  } catch (err) {
    const reason = isProxyError(err) ? err.message : 'unreadable'
    throw new ProxyError('KMS_REPLY_NOT_CPIX', `KMS reply is not a usable CPIX document: ${reason}`)
  }
}
