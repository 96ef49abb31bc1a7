// PallyCon's own CPIX API shapes: POST /v1|v2/cpix/pallycon/getKey/{token}[?key-rotation=true].

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { KeyRoute } from '../kms/provider.js'
import { handleKeyRequest } from '../speke/pipeline.js'
import type { KeyRouteOptions } from './key-reply.js'
import { sendKeyResponse } from './key-reply.js'
import { requireCaller } from './key-route.js'
import { bodyOf } from './speke.js'

export async function pallyconRoutes (app: FastifyInstance, opts: KeyRouteOptions): Promise<void> {
  const handler = (route: KeyRoute) => async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const { caller, token } = requireCaller(request)
    const query = request.query as Record<string, string | string[] | undefined>
    const response = await handleKeyRequest(opts.pipeline, {
      route,
      caller,
      credential: token,
      keyRotation: query['key-rotation'] === 'true',
      body: bodyOf(request.body),
      contentType: request.headers['content-type'],
      requestId: request.id
    })
    return await sendKeyResponse(request, reply, response, opts)
  }
  // A wildcard, not :token, because base64 enc-tokens may contain '/'.
  app.post('/v1/cpix/pallycon/getKey/*', { config: { keyRoute: 'pallycon-v1' } }, handler('pallycon-v1'))
  app.post('/v2/cpix/pallycon/getKey/*', { config: { keyRoute: 'pallycon-v2' } }, handler('pallycon-v2'))
}
