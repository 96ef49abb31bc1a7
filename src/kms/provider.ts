// The one interface behind which key providers live: PallyCon over HTTP, or the embedded local provider.

import type { CpixDocument } from '../cpix/model.js'
import type { Dialect, KeyRoute } from '../protocol.js'

export interface ProviderRequest {
  route: KeyRoute
  /** The CPIX profile the pipeline chose for this caller (from the route and X-Speke-Version). */
  dialect: Dialect
  /** The enc-token to present upstream (the tenant's real token for managed tenants). */
  token: string
  /** X-Speke-Version when the caller sent one. */
  spekeVersion?: string
  /** `key-rotation=true` on the PallyCon API routes. */
  keyRotation?: boolean
  /** Anevia GET: streaming format and content id from the path. */
  anevia?: { format: 'dash' | 'hls', contentId: string }
  body?: Buffer
  /**
   * `body` as the pipeline parsed it and validated it for `dialect`, when it has: a provider that reads the request
   * (the embedded one) starts from this instead of parsing the bytes again. Read-only: the pipeline checks the reply against it.
   */
  document?: CpixDocument
  /** The caller's request content type, forwarded when it is an XML type. */
  contentType?: string
}

export interface ProviderReply {
  status: number
  contentType?: string
  body: Buffer
  /** Time spent waiting on the provider, milliseconds. */
  latencyMs: number
  /**
   * Why a non-2xx reply refused, written by this process (the embedded provider) and so fit to show the caller.
   * Never set from upstream text: a remote KMS's bytes are not quoted.
   */
  refusal?: string
}

export interface KeyProvider {
  readonly name: 'pallycon' | 'local'
  /** Ask for keys; `signal` aborts at the request's overall deadline. Throws ProxyError (502/504) on transport failure. */
  getKeys (request: ProviderRequest, signal: AbortSignal): Promise<ProviderReply>
  close (): Promise<void>
}
