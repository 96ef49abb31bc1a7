// The JSON key API: POST /v2/keys answers with the JSON PallyCon's CPIX client produces, through the same CPIX pipeline.

import type { FastifyInstance } from 'fastify'
import { ProxyError } from '../errors.js'
import { cpixForJsonRequest, jsonFromCpixReply, readJsonKeyRequest } from '../cpix/json-keys.js'
import { decodeXmlBytes } from '../cpix/decode.js'
import { parseCpix } from '../cpix/parse.js'
import { addJsonParser } from '../http/json-body.js'
import { handleKeyRequest } from '../pipeline/key-request.js'
import { asProxyError, refusal } from '../pipeline/response.js'
import type { KeyResponse } from '../pipeline/response.js'
import { sendKeyResponse } from '../http/key-reply.js'
import type { KeyRouteOptions } from '../http/key-reply.js'
import { requireCaller } from '../http/key-route.js'

export async function keysRoutes (app: FastifyInstance, opts: KeyRouteOptions): Promise<void> {
  addJsonParser(app)
  // The key guard identified the caller from the URL before the body was read; the ask is checked and capped before any CPIX is built.
  app.post('/v2/keys', { config: { keyRoute: 'keys-json' } }, async (request, reply) => {
    const { caller, token } = requireCaller(request)
    let response: KeyResponse
    try {
      const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
      if (type !== 'application/json') throw new ProxyError('UNSUPPORTED_MEDIA_TYPE', 'Send the key request as application/json')
      const asked = readJsonKeyRequest(Buffer.isBuffer(request.body) ? parseJson(request.body) : request.body)
      response = await handleKeyRequest(opts.pipeline, {
        route: 'keys-json',
        caller,
        credential: token,
        keyRotation: asked.key_rotation,
        body: Buffer.from(cpixForJsonRequest(asked), 'utf8'),
        contentType: 'application/xml',
        requestId: request.id
      })
      // Refusals come back from the pipeline already written as JSON (the keys-json route).
      if (response.status === 200) {
        // The pipeline read the reply already (to check it, or for its keys): its document, else the bytes once more.
        const json = jsonFromCpixReply(response.document ?? parseCpix(decodeXmlBytes(Buffer.from(response.body))), asked.drm_types)
        response = { ...response, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(json) }
      }
    } catch (err) {
      response = refusal(asProxyError(err, opts.pipeline.onInternalError), { route: 'keys-json', tenant: caller.tenant, authenticated: true, outcome: 'rejected' })
    }
    return await sendKeyResponse(request, reply, response, opts)
  })
}

function parseJson (body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    throw new ProxyError('BAD_JSON', 'The body is not valid JSON')
  }
}
