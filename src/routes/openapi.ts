// GET /openapi.yaml: the OpenAPI 3.1 description of every route, read once at registration from the project root.

import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'

/** ../../openapi.yaml from src/routes (tests) and from dist/routes (built), since dist mirrors src. */
export const OPENAPI_FILE = new URL('../../openapi.yaml', import.meta.url)

export async function openapiRoutes (app: FastifyInstance): Promise<void> {
  const document = readFileSync(OPENAPI_FILE, 'utf8')
  app.get('/openapi.yaml', async (_request, reply) => {
    return await reply.type('application/yaml; charset=utf-8').send(document)
  })
}
