// Protocol vocabulary every layer shares: the key URL families, the KMS's routes, the CPIX dialects and the SPEKE versions.

/** The URL families that serve keys; each key route carries its name as `config: { keyRoute }`. */
export type KeyRouteName = 'speke' | 'pallycon-v1' | 'pallycon-v2' | 'anevia' | 'keys-json'

/** Which of the KMS's URL families a request is sent to (the JSON key API goes out as pallycon-v2). */
export type KeyRoute = Exclude<KeyRouteName, 'keys-json'>

/** The KMS route a key route is sent to: the JSON key API is PallyCon's v2 CPIX API underneath. */
export function kmsRouteOf (route: KeyRouteName): KeyRoute {
  return route === 'keys-json' ? 'pallycon-v2' : route
}

/** What an Anevia GET asks for, from its path: the streaming format and the content id. */
export interface AneviaAsk { format: 'dash' | 'hls', contentId: string }

/** Who is asking decides which profile applies: SPEKE v1, SPEKE v2.0/2.1, or PallyCon's own CPIX API. */
export type Dialect = 'speke-v1' | 'speke-v2.0' | 'speke-v2.1' | 'pallycon'

export type SpekeV2Dialect = 'speke-v2.0' | 'speke-v2.1'

/** The X-Speke-Version values SPEKE v2 callers send, and the dialect each one selects; no header means SPEKE v1. */
export const SPEKE_V2_VERSIONS: Readonly<Record<string, SpekeV2Dialect>> = { '2.0': 'speke-v2.0', 2.1: 'speke-v2.1' }

/** The SPEKE version a SPEKE v1 caller speaks (it sends no X-Speke-Version header). */
export const SPEKE_V1_VERSION = '1.0'

export function isSpekeV2 (dialect: Dialect): dialect is SpekeV2Dialect {
  return dialect === 'speke-v2.0' || dialect === 'speke-v2.1'
}
