// The bench's fake KMS: a bare node:http server answering every request with the reply in the file named by argv[2].
// Prints its URL on stdout. Run as its own process, so the proxies under test and the load generator never share its event loop.

import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'

const reply = readFileSync(process.argv[2])
const server = createServer((req, res) => {
  req.resume()
  req.on('end', () => { res.writeHead(200, { 'content-type': 'application/xml' }); res.end(reply) })
})
server.keepAliveTimeout = 65_000
server.listen(Number(process.argv[3] ?? 0), '127.0.0.1', () => { process.stdout.write(`listening http://127.0.0.1:${server.address().port}\n`) })
process.on('SIGTERM', () => { server.closeAllConnections(); server.close(() => process.exit(0)) })
