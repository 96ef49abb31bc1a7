// Which CPIX profile a caller speaks, from the URL family and the X-Speke-Version header.

import { badRequest } from '../errors.js'
import type { Dialect } from '../cpix/validate.js'
import type { KeyRoute } from '../kms/provider.js'

const SPEKE_V2_VERSIONS: Record<string, Dialect> = { '2.0': 'speke-v2.0', '2.1': 'speke-v2.1' }

/** SPEKE v1 without the header, v2.0/v2.1 with it, PallyCon's profile on its own API and Anevia; anything else is AWS's 400. */
export function dialectFor (route: KeyRoute, spekeVersion: string | undefined): Dialect {
  if (route !== 'speke') return 'pallycon'
  if (spekeVersion === undefined) return 'speke-v1'
  const dialect = SPEKE_V2_VERSIONS[spekeVersion.trim()]
  if (dialect === undefined) throw badRequest('Unsupported SPEKE version', 'UNSUPPORTED_SPEKE_VERSION')
  return dialect
}
