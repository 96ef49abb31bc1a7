// The process logger: pino JSON lines, with request URLs redacted so no enc-token is ever written.

import { pino } from 'pino'
import type { Logger } from 'pino'
import { redactUrl } from './redact.js'

export function createLogger (level: string, stream?: NodeJS.WritableStream): Logger {
  return pino({
    level,
    serializers: {
      req: (req: { method?: string, url?: string }) => ({ method: req.method, url: redactUrl(req.url ?? '') }),
      // Never the raw request bytes (Node's client errors carry them as rawPacket) or anything but a redacted message.
      err: (err: { name?: string, code?: string, message?: string, stack?: string }) => ({
        type: err.name,
        code: err.code,
        message: redactUrl(err.message ?? ''),
        stack: err.stack === undefined ? undefined : redactUrl(err.stack)
      })
    }
  }, stream ?? process.stdout)
}
