// The ATEME NEA-DVR (Anevia) GET API: /cpix/anevia/{dash|hls}/{token}/{cid}, no request body.

import type { FastifyInstance } from 'fastify'
import { ProxyError } from '../errors.js'
import { handleKeyRequest } from '../speke/pipeline.js'
import type { KeyRouteOptions } from './key-reply.js'
import { refuseKeyRequest, sendKeyResponse } from './key-reply.js'
import { aneviaPath, requireCaller } from './key-route.js'

export async function aneviaRoutes (app: FastifyInstance, opts: KeyRouteOptions): Promise<void> {
  // Wildcard: the token may contain '/', the content id is the last segment (the key guard has checked the shape and the token).
  app.get('/cpix/anevia/:format/*', { config: { keyRoute: 'anevia' } }, async (request, reply) => {
    const { caller, token } = requireCaller(request)
    const { format, contentId } = aneviaPath(request.params)
    if (contentId.length > 200) {
      return await refuseKeyRequest(request, reply, new ProxyError(422, 'CONTENT_ID_TOO_LONG', `Content id is ${contentId.length} characters long; PallyCon accepts at most 200`), opts)
    }
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
