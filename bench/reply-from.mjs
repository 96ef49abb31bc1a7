// The peer: @fastify/reply-from as a plain passthrough proxy (what a user would pick for a dumb reverse proxy) in front of
// the fake KMS named by argv[2]; listens on argv[3]. Bodies are passed as bytes, no logging.

import Fastify from 'fastify'
import replyFrom from '@fastify/reply-from'

const app = Fastify({ logger: false })
app.removeAllContentTypeParsers()
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => { done(null, body) })
await app.register(replyFrom, { base: process.argv[2] })
app.post('/*', (request, reply) => { reply.from(request.url) })
await app.listen({ host: '127.0.0.1', port: Number(process.argv[3] ?? 0) })
process.stdout.write(`listening http://127.0.0.1:${app.server.address().port}\n`)
process.on('SIGTERM', () => { app.close().then(() => process.exit(0)) })
