// The product's name and version as it presents itself to callers and the KMS.

export const VERSION = '0.1.0'
export const USER_AGENT = `speke-proxy/${VERSION}`
