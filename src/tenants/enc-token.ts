// PallyCon enc-tokens: base64 of JSON {site_id, access_key}. Decoding yields the site id for logs; the access key stays inside.

export interface EncToken {
  siteId: string
  accessKey: string
}

/** Decode an enc-token; undefined when it is not base64 JSON with string site_id and access_key. */
export function decodeEncToken (token: string): EncToken | undefined {
  const compact = token.trim()
  if (compact === '' || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact)) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(compact, 'base64').toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const record = parsed as Record<string, unknown>
  const siteId = record.site_id
  const accessKey = record.access_key
  if (typeof siteId !== 'string' || siteId === '' || typeof accessKey !== 'string' || accessKey === '') return undefined
  return { siteId, accessKey }
}

export function encodeEncToken (siteId: string, accessKey: string): string {
  return Buffer.from(JSON.stringify({ site_id: siteId, access_key: accessKey })).toString('base64')
}
