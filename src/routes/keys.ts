// The JSON key API: POST /v2/keys answers with the JSON PallyCon's CPIX client produces, through the same CPIX pipeline.

import type { FastifyInstance } from 'fastify'
import { MAX_MESSAGE_CHARS, ProxyError, clip, isProxyError } from '../errors.js'
import { cpixForJsonRequest, jsonFromCpixReply, readJsonKeyRequest } from '../cpix/json-keys.js'
import { decodeXmlBytes } from '../cpix/decode.js'
import { parseCpix } from '../cpix/parse.js'
import { addJsonParser } from './json-body.js'
import { handleKeyRequest } from '../speke/pipeline.js'
import type { KeyResponse } from '../speke/pipeline.js'
import { sendKeyResponse } from './key-reply.js'
import type { KeyRouteOptions } from './key-reply.js'
import { requireCaller } from './key-route.js'

export async function keysRoutes (app: FastifyInstance, opts: KeyRouteOptions): Promise<void> {
  addJsonParser(app)
  // The key guard identified the caller from the URL before the body was read; the ask is checked and capped before any CPIX is built.
  app.post('/v2/keys', { config: { keyRoute: 'keys-json' } }, async (request, reply) => {
    const { caller, token } = requireCaller(request)
    let response: KeyResponse
    try {
      const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
      if (type !== 'application/json') throw new ProxyError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the key request as application/json')
      const asked = readJsonKeyRequest(Buffer.isBuffer(request.body) ? parseJson(request.body) : request.body)
      response = await handleKeyRequest(opts.pipeline, {
        route: 'pallycon-v2',
        label: 'keys-json',
        caller,
        credential: token,
        keyRotation: asked.key_rotation,
        body: Buffer.from(cpixForJsonRequest(asked), 'utf8'),
        contentType: 'application/xml',
        requestId: request.id
      })
      if (response.status === 200) {
        const json = jsonFromCpixReply(parseCpix(decodeXmlBytes(Buffer.from(response.body))), asked.drm_types)
        response = { ...response, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(json) }
      } else {
        response = { ...response, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify({ error: String(response.body) }) }
      }
    } catch (err) {
      if (!isProxyError(err)) opts.pipeline.onInternalError?.(err)
      const error = isProxyError(err) ? err : new ProxyError(500, 'INTERNAL', 'Internal error in speke-proxy')
      const message = clip(error.message, MAX_MESSAGE_CHARS)
      response = {
        status: error.status,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ error: message }),
        record: { route: 'keys-json', tenant: caller.tenant, authenticated: true, outcome: 'rejected', status: error.status, error: message, errorCode: error.code, keysReturned: 0 },
        returnedKeys: []
      }
    }
    return await sendKeyResponse(request, reply, response, opts)
  })
}

function parseJson (body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    throw new ProxyError(400, 'BAD_JSON', 'The body is not valid JSON')
  }
}
