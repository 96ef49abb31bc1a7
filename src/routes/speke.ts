// The SPEKE face AWS Elemental calls: POST /cpix/getKey?enc-token=… (v1, v2.0, v2.1) and its heartbeat.

import type { FastifyInstance } from 'fastify'
import { queryToken } from '../redact.js'
import { handleKeyRequest } from '../speke/pipeline.js'
import type { KeyRouteOptions } from './key-reply.js'
import { sendKeyResponse } from './key-reply.js'

export async function spekeRoutes (app: FastifyInstance, opts: KeyRouteOptions): Promise<void> {
  app.get('/cpix/getKey/heartbeat', async (_request, reply) => {
    return await reply.type('text/plain; charset=utf-8').send('SUCCESS')
  })

  app.post('/cpix/getKey', async (request, reply) => {
    const response = await handleKeyRequest(opts.pipeline, {
      route: 'speke',
      credential: queryToken(request.url),
      spekeVersion: header(request.headers['x-speke-version']),
      body: bodyOf(request.body),
      contentType: request.headers['content-type'],
      requestId: request.id
    })
    return await sendKeyResponse(request, reply, response, opts)
  })
}

export function header (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

export function bodyOf (body: unknown): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.alloc(0)
}
