// The ATEME NEA-DVR (Anevia) GET API: /cpix/anevia/{dash|hls}/{token}/{cid}, no request body.

import type { FastifyInstance } from 'fastify'
import { ProxyError } from '../errors.js'
import { handleKeyRequest } from '../speke/pipeline.js'
import type { KeyRouteOptions } from './key-reply.js'
import { refuseKeyRequest, sendKeyResponse } from './key-reply.js'

export async function aneviaRoutes (app: FastifyInstance, opts: KeyRouteOptions): Promise<void> {
  // Wildcard: the token may contain '/', the content id is the last segment.
  app.get('/cpix/anevia/:format/*', async (request, reply) => {
    const params = request.params as { format: string, '*': string }
    const format = params.format
    if (format !== 'dash' && format !== 'hls') {
      return await refuseKeyRequest(request, reply, new ProxyError(404, 'UNKNOWN_FORMAT', /^[a-z0-9]{1,12}$/i.test(format) ? `Unknown Anevia streaming format "${format}": use dash or hls` : 'Unknown Anevia streaming format: use /cpix/anevia/{dash|hls}/{enc-token}/{content-id}'), opts)
    }
    const rest = params['*']
    const slash = rest.lastIndexOf('/')
    const token = slash === -1 ? '' : rest.slice(0, slash)
    const contentId = slash === -1 ? rest : rest.slice(slash + 1)
    if (contentId === '' || token === '') {
      return await refuseKeyRequest(request, reply, new ProxyError(400, 'BAD_ANEVIA_PATH', 'Anevia URLs have the form /cpix/anevia/{dash|hls}/{enc-token}/{content-id}'), opts)
    }
    if (contentId.length > 200) {
      return await refuseKeyRequest(request, reply, new ProxyError(422, 'CONTENT_ID_TOO_LONG', `Content id is ${contentId.length} characters long; PallyCon accepts at most 200`), opts)
    }
    const response = await handleKeyRequest(opts.pipeline, {
      route: 'anevia',
      credential: token,
      anevia: { format, contentId },
      requestId: request.id
    })
    return await sendKeyResponse(request, reply, response, opts)
  })
}
