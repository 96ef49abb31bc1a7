// GET /admin/: the operator console, three static files shipped in console/ and read once at registration.
// A fixed list of routes, one per file: nothing from the URL ever names a file. The console itself asks the admin API
// with the token the operator types in; the files hold no secret, so they are served without one (when ADMIN_TOKEN is set).

import { readFileSync } from 'node:fs'
import type { FastifyInstance, FastifyReply } from 'fastify'

/** ../../console/ from src/routes (tests) and from dist/routes (built), since dist mirrors src. */
export const CONSOLE_DIR = new URL('../../console/', import.meta.url)

/** No inline script or style, no eval, nothing from another origin, no framing, no form posted elsewhere. */
export const CONSOLE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/** Every file the console has: URL under /admin/, file in console/, content type, cache policy. */
const FILES = [
  { url: '/admin/', file: 'index.html', type: 'text/html; charset=utf-8', cache: 'no-store' },
  { url: '/admin/console.js', file: 'console.js', type: 'text/javascript; charset=utf-8', cache: 'no-cache' },
  { url: '/admin/console.css', file: 'console.css', type: 'text/css; charset=utf-8', cache: 'no-cache' }
] as const

function secure (reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cross-origin-resource-policy', 'same-origin')
}

/** Registers the console routes; the caller registers them only when ADMIN_TOKEN is set. */
export async function consoleRoutes (app: FastifyInstance): Promise<void> {
  for (const { url, file, type, cache } of FILES) {
    const body = readFileSync(new URL(file, CONSOLE_DIR))
    app.get(url, async (_request, reply) => await secure(reply).type(type).header('cache-control', cache).send(body))
  }
  // Relative, so the console also works behind a reverse proxy that adds a path prefix.
  app.get('/admin', async (_request, reply) => await secure(reply).header('cache-control', 'no-store').redirect('admin/', 302))
}
