// The ATEME NEA-DVR (Anevia) GET API: /cpix/anevia/{dash|hls}/{token}/{cid}, no request body.

import type { FastifyInstance } from 'fastify'
import { contentIdTooLong } from '../cpix/validate.js'
import { handleKeyRequest } from '../pipeline/key-request.js'
import type { KeyRouteOptions } from '../http/key-reply.js'
import { refuseKeyRequest, sendKeyResponse } from '../http/key-reply.js'
import { aneviaPath, requireCaller } from '../http/key-route.js'

export async function aneviaRoutes (app: FastifyInstance, opts: KeyRouteOptions): Promise<void> {
  // Wildcard: the token may contain '/', the content id is the last segment (the key guard has checked the shape and the token).
  app.get('/cpix/anevia/:format/*', { config: { keyRoute: 'anevia' } }, async (request, reply) => {
    const { caller, token } = requireCaller(request)
    const { format, contentId } = aneviaPath(request.params)
    const tooLong = contentIdTooLong(contentId)
    if (tooLong !== undefined) return await refuseKeyRequest(request, reply, tooLong, opts)
    const response = await handleKeyRequest(opts.pipeline, {
      route: 'anevia',
      caller,
      credential: token,
      anevia: { format, contentId },
      requestId: request.id
    })
    return await sendKeyResponse(request, reply, response, opts)
  })
}
