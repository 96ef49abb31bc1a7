// The process logger: pino JSON lines, with request URLs redacted so no enc-token is ever written.

import { pino } from 'pino'
import type { Logger } from 'pino'
import { redactUrl } from './redact.js'

export function createLogger (level: string, stream?: NodeJS.WritableStream): Logger {
  return pino({
    level,
    serializers: {
      req: (req: { method?: string, url?: string }) => ({ method: req.method, url: redactUrl(req.url ?? '') })
    }
  }, stream ?? process.stdout)
}
