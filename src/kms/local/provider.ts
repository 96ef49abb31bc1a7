// The embedded key provider (KMS_URL=local): a complete CPIX key server in process, with deterministic keys.

import type { Config } from '../../config.js'
import { ProxyError, isProxyError } from '../../errors.js'
import { decodeXmlBytes } from '../../cpix/decode.js'
import { fillResponse } from '../../cpix/fill.js'
import type { CpixDocument } from '../../cpix/model.js'
import { cloneCpix, parseCpix } from '../../cpix/parse.js'
import { aneviaRequestXml } from '../../cpix/anevia.js'
import { validateRequest } from '../../cpix/validate.js'
import { decodeEncToken } from '../../tenants/enc-token.js'
import type { KeyProvider, ProviderRequest } from '../provider.js'
import { credentialKey, credentialPrk, deriveKeyAndIv, deriveKid } from './derive.js'
import { loadOrCreateSecret } from './secret.js'

export interface LocalProviderSettings {
  secret: Buffer
  playReadyLaUrl: string
  hlsKeyUrlBase: string
  widevineProvider: string
}

export function createLocalProvider (config: Config): KeyProvider {
  return localProvider({
    secret: loadOrCreateSecret(config.dataDir, config.local.secret),
    playReadyLaUrl: config.local.playReadyLaUrl,
    hlsKeyUrlBase: config.local.hlsKeyUrlBase,
    widevineProvider: config.local.widevineProvider
  })
}

export function localProvider (settings: LocalProviderSettings): KeyProvider {
  return {
    name: 'local',
    async getKeys (request) {
      const started = performance.now()
      try {
        const body = answer(settings, request)
        return { status: 200, contentType: 'application/xml', body: Buffer.from(body, 'utf8'), latencyMs: performance.now() - started }
      } catch (err) {
        if (!isProxyError(err)) throw err
        // Answer as a key server would: the status and a plain-text reason, which (written here) may be shown.
        return { status: err.status, contentType: 'text/plain; charset=utf-8', body: Buffer.from(err.message), refusal: err.message, latencyMs: performance.now() - started }
      }
    },
    async close () {}
  }
}

function answer (settings: LocalProviderSettings, request: ProviderRequest): string {
  const token = decodeEncToken(request.token)
  if (token === undefined) throw new ProxyError('BAD_TOKEN', 'The enc-token is not a PallyCon KMS token (base64 of JSON with site_id and access_key)')
  const dialect = request.dialect
  const doc = requestDocument(request)
  if (doc.lists.delivery) throw new ProxyError('ENCRYPTED_DELIVERY_UNSUPPORTED', 'The embedded key provider delivers keys in the clear only: remove DeliveryDataList')
  const kmsAssignsKids = request.route !== 'speke'
  // Keys belong to the whole upstream credential (site id and access key), never to the site id alone.
  // Extracted once per request: each key and kid then costs one HMAC (HKDF-Expand).
  const credential = credentialPrk(credentialKey(settings.secret, token.siteId, token.accessKey))
  // fillResponse writes the answer into the request's tree.
  return fillResponse(doc, {
    dialect,
    playReadyLaUrl: settings.playReadyLaUrl,
    hlsKeyUrlBase: settings.hlsKeyUrlBase,
    widevineProvider: settings.widevineProvider,
    keyFor: ({ kid, contentId, trackType, periodIndex }) => {
      const answeredKid = kmsAssignsKids ? deriveKid(credential, contentId, trackType, periodIndex) : kid
      const { key, iv } = deriveKeyAndIv(credential, contentId, answeredKid, periodIndex)
      return { kid: answeredKid, key, iv }
    }
  })
}

/**
 * The request to answer, as a tree of its own (filling it in edits it): a copy of the one the pipeline parsed and validated
 * for this dialect, else the body (or the Anevia ask) parsed and validated here.
 */
function requestDocument (request: ProviderRequest): CpixDocument {
  if (request.document !== undefined) return cloneCpix(request.document)
  const { anevia } = request
  const xml = anevia !== undefined ? aneviaRequestXml(anevia.format, anevia.contentId) : decodeXmlBytes(request.body ?? Buffer.alloc(0))
  const doc = parseCpix(xml)
  validateRequest(doc, request.dialect)
  return doc
}
