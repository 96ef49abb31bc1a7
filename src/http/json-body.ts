// JSON request bodies for the key API and the admin routes, scoped to their plugins (CPIX routes take raw bytes).

import type { FastifyInstance } from 'fastify'

/** JSON bodies (key API, admin) are parsed when they parse; otherwise the bytes go on and the route says what is wrong. */
export function addJsonParser (app: FastifyInstance): void {
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body.toString('utf8')))
    } catch {
      done(null, body)
    }
  })
}
