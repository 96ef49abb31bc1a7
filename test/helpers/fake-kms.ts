// A fake PallyCon KMS: a real HTTP server on 127.0.0.1 that records what it received and replies as each test scripts.

import { createServer } from 'node:http'
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Received {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: Buffer
}

export type FakeHandler = (req: Received, res: ServerResponse) => void

export interface FakeKms {
  url: string
  received: Received[]
  /** Replace the handler (tests change behaviour between requests). */
  handle: (handler: FakeHandler) => void
  close: () => Promise<void>
}

export async function startFakeKms (handler: FakeHandler): Promise<FakeKms> {
  let current = handler
  const received: Received[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) }
      received.push(r)
      current(r, res)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    handle: (h) => { current = h },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

export function replyWith (status: number, contentType: string | undefined, body: string | Buffer): FakeHandler {
  return (_req, res) => {
    const headers: Record<string, string> = {}
    if (contentType !== undefined) headers['content-type'] = contentType
    res.writeHead(status, headers)
    res.end(body)
  }
}
