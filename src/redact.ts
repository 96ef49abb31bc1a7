// Keeps enc-tokens and proxy credentials out of anything logged: URLs are rewritten before they reach a log line.

const QUERY_TOKEN = /([?&]enc-token=)[^&#]*/gi
const PALLYCON_PATH = /(\/cpix\/pallycon\/getKey\/)[^?#]*/i
const ANEVIA_PATH = /(\/cpix\/anevia\/[^/]+\/)(.*)(\/[^/?#]*)/i

export function redactUrl (url: string): string {
  return url
    .replace(QUERY_TOKEN, '$1[redacted]')
    .replace(PALLYCON_PATH, '$1[redacted]')
    .replace(ANEVIA_PATH, '$1[redacted]$3')
}

/** The raw enc-token query value, percent-decoded but with '+' kept (a base64 character, not a space). */
export function queryToken (url: string): string | undefined {
  const q = url.indexOf('?')
  if (q === -1) return undefined
  for (const part of url.slice(q + 1).split('&')) {
    const eq = part.indexOf('=')
    const name = eq === -1 ? part : part.slice(0, eq)
    if (name !== 'enc-token') continue
    const raw = eq === -1 ? '' : part.slice(eq + 1)
    try {
      return decodeURIComponent(raw)
    } catch {
      return raw
    }
  }
  return undefined
}
