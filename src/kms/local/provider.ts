// The embedded key provider (KMS_URL=local): answers CPIX requests in process with deterministic keys.

import type { Config } from '../../config.js'
import { ProxyError } from '../../errors.js'
import type { KeyProvider } from '../provider.js'

export function createLocalProvider (_config: Config): KeyProvider {
  return {
    name: 'local',
    async getKeys () {
      throw new ProxyError(501, 'NOT_IMPLEMENTED', 'The embedded key provider is not built yet')
    },
    async close () {}
  }
}
