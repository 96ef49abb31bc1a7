// PallyCon's own CPIX API shapes: POST /v1|v2/cpix/pallycon/getKey/{token}[?key-rotation=true].

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { handleKeyRequest } from '../pipeline/key-request.js'
import type { KeyRouteOptions } from '../http/key-reply.js'
import { sendKeyResponse } from '../http/key-reply.js'
import { bodyOf, requireCaller } from '../http/key-route.js'

export async function pallyconRoutes (app: FastifyInstance, opts: KeyRouteOptions): Promise<void> {
  const handler = (route: 'pallycon-v1' | 'pallycon-v2') => async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const { caller, token } = requireCaller(request)
    const query = request.query as Record<string, string | string[] | undefined>
    const response = await handleKeyRequest(opts.pipeline, {
      route,
      caller,
      credential: token,
      keyRotation: query['key-rotation'] === 'true',
      body: bodyOf(request),
      contentType: request.headers['content-type'],
      requestId: request.id
    })
    return await sendKeyResponse(request, reply, response, opts)
  }
  // A wildcard, not :token, because base64 enc-tokens may contain '/'.
  app.post('/v1/cpix/pallycon/getKey/*', { config: { keyRoute: 'pallycon-v1' } }, handler('pallycon-v1'))
  app.post('/v2/cpix/pallycon/getKey/*', { config: { keyRoute: 'pallycon-v2' } }, handler('pallycon-v2'))
}
