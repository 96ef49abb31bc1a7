// The SPEKE face AWS Elemental calls: POST /cpix/getKey?enc-token=… (v1, v2.0, v2.1) and its heartbeat.

import type { FastifyInstance } from 'fastify'
import { handleKeyRequest } from '../pipeline/key-request.js'
import type { KeyRouteOptions } from '../http/key-reply.js'
import { sendKeyResponse } from '../http/key-reply.js'
import { bodyOf, requireCaller, spekeVersionOf } from '../http/key-route.js'

export async function spekeRoutes (app: FastifyInstance, opts: KeyRouteOptions): Promise<void> {
  app.get('/cpix/getKey/heartbeat', async (_request, reply) => {
    return await reply.type('text/plain; charset=utf-8').send('SUCCESS')
  })

  app.post('/cpix/getKey', { config: { keyRoute: 'speke' } }, async (request, reply) => {
    const { caller, token } = requireCaller(request)
    const response = await handleKeyRequest(opts.pipeline, {
      route: 'speke',
      caller,
      credential: token,
      spekeVersion: spekeVersionOf(request),
      body: bodyOf(request),
      contentType: request.headers['content-type'],
      requestId: request.id
    })
    return await sendKeyResponse(request, reply, response, opts)
  })
}
