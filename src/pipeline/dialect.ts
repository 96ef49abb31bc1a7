// Which CPIX profile a caller speaks, from the URL family and the X-Speke-Version header.

import { badRequest } from '../errors.js'
import { SPEKE_V2_VERSIONS } from '../protocol.js'
import type { Dialect, KeyRoute } from '../protocol.js'

/** SPEKE v1 without the header, v2.0/v2.1 with it, PallyCon's profile on its own API and Anevia; anything else is AWS's 400. */
export function dialectFor (route: KeyRoute, spekeVersion: string | undefined): Dialect {
  if (route !== 'speke') return 'pallycon'
  if (spekeVersion === undefined) return 'speke-v1'
  const version = spekeVersion.trim()
  if (!Object.hasOwn(SPEKE_V2_VERSIONS, version)) throw badRequest('Unsupported SPEKE version', 'UNSUPPORTED_SPEKE_VERSION')
  return SPEKE_V2_VERSIONS[version]
}
