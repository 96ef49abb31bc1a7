// The query-string parser of every route: values percent-decoded with '+' kept (a base64 character in enc-tokens), names taken as sent.

/**
 * `a=1&b=x%2By+z` → { a: '1', b: 'x+y+z' }; a repeated name gives a list. Names are not decoded, so an
 * enc-token is only ever read from the literal `enc-token=` that the log redaction also recognises.
 * A value with a broken percent-escape is kept as sent (the route then refuses it as a bad token).
 */
export function parseQueryString (query: string): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>
  if (query === '') return result
  for (const part of query.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const name = eq === -1 ? part : part.slice(0, eq)
    const value = decode(eq === -1 ? '' : part.slice(eq + 1))
    const known = result[name]
    if (known === undefined) result[name] = value
    else if (Array.isArray(known)) known.push(value)
    else result[name] = [known, value]
  }
  return result
}

function decode (raw: string): string {
  if (!raw.includes('%')) return raw
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw
  }
}
