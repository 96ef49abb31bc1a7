// Every error code speke-proxy reports, declared once: its HTTP status, what it means, what to do, and its metric kind.

/**
 * The `kind` label of speke_proxy_upstream_errors_total: what failed when a request ends as `upstream_error`. Codes
 * that are not a failure of the key provider or the audit trail have `other` (the local provider's refusals count so).
 */
export type ErrorKind = 'timeout' | 'connection' | 'kms_error' | 'not_cpix' | 'invalid_reply' | 'audit' | 'other'

export interface ErrorSpec {
  /** The HTTP status; `4xx` where another party's client-error status is passed on (the KMS's, or Fastify's). */
  status: number | '4xx'
  kind: ErrorKind
  /** What happened, in the words of the message (which names the particulars). */
  meaning: string
  /** What the caller or the operator does about it. */
  action: string
}

/** In the order a key request meets them: route and credential, body, CPIX, key provider, reply, audit; then the admin API. */
export const ERROR_CODES = {
  OVERLOADED: {
    status: 503,
    kind: 'other',
    meaning: 'speke-proxy is shedding key requests: its event loop is delayed beyond MAX_EVENT_LOOP_DELAY_MS.',
    action: 'Retry after the Retry-After seconds; if it persists, add instances or CPU.'
  },
  RATE_LIMITED_ADDRESS: {
    status: 429,
    kind: 'other',
    meaning: 'Too many key requests from this client address in the current minute (RATE_LIMIT_PER_IP_PER_MINUTE).',
    action: 'Retry after the Retry-After seconds, or raise the limit for this deployment.'
  },
  RATE_LIMITED: {
    status: 429,
    kind: 'other',
    meaning: 'Too many requests in the current minute: key requests of this tenant (RATE_LIMIT_PER_MINUTE), or admin requests from this address (30 with a missing or wrong token, then every admin request waits; 600 with the right one).',
    action: 'Retry after the Retry-After seconds, or raise the limit for this tenant.'
  },
  MISSING_TOKEN: {
    status: 401,
    kind: 'other',
    meaning: 'The URL carries no enc-token.',
    action: 'Put the proxy credential (or, with ALLOW_PASSTHROUGH, the PallyCon enc-token) in the enc-token position of the URL.'
  },
  REPEATED_TOKEN: {
    status: 400,
    kind: 'other',
    meaning: 'The enc-token query parameter appears more than once.',
    action: 'Give enc-token once.'
  },
  BAD_TOKEN: {
    status: 401,
    kind: 'other',
    meaning: 'The enc-token is neither a known proxy credential nor a PallyCon KMS token, or it holds whitespace or control characters.',
    action: 'Copy the credential again exactly; check it with "speke-proxy token inspect" or "speke-proxy tenant hash".'
  },
  PASSTHROUGH_REFUSED: {
    status: 403,
    kind: 'other',
    meaning: 'A raw PallyCon enc-token was presented, and this proxy accepts only proxy credentials (ALLOW_PASSTHROUGH=false).',
    action: 'Use the proxy credential issued for the tenant (speke-proxy tenant new).'
  },
  UNKNOWN_FORMAT: {
    status: 404,
    kind: 'other',
    meaning: 'The Anevia URL names a streaming format other than dash or hls.',
    action: 'Use /cpix/anevia/dash/… or /cpix/anevia/hls/….'
  },
  BAD_ANEVIA_PATH: {
    status: 400,
    kind: 'other',
    meaning: 'An Anevia URL lacks its enc-token or content id.',
    action: 'Use /cpix/anevia/{format}/{enc-token}/{content-id}.'
  },
  BODY_TOO_LARGE: {
    status: 413,
    kind: 'other',
    meaning: 'The request body is larger than BODY_LIMIT bytes.',
    action: 'Send a smaller document (split the request), or raise BODY_LIMIT.'
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    kind: 'other',
    meaning: 'The Content-Type is not one the route accepts.',
    action: 'Send CPIX as application/xml or text/xml (or with no Content-Type), and /v2/keys requests as application/json.'
  },
  UNSUPPORTED_SPEKE_VERSION: {
    status: 400,
    kind: 'other',
    meaning: 'X-Speke-Version is neither 2.0 nor 2.1 (the body is AWS\'s string "Unsupported SPEKE version").',
    action: 'Send X-Speke-Version 2.0 or 2.1 for SPEKE v2, or no header for SPEKE v1.'
  },
  EMPTY_BODY: {
    status: 400,
    kind: 'other',
    meaning: 'The request body is empty.',
    action: 'Send the CPIX XML document as the body.'
  },
  UNSUPPORTED_ENCODING: {
    status: 400,
    kind: 'other',
    meaning: 'The XML declaration names an encoding other than UTF-8 or UTF-16.',
    action: 'Send the document in UTF-8 or UTF-16.'
  },
  BAD_ENCODING: {
    status: 400,
    kind: 'other',
    meaning: 'The body is not valid text in the encoding its byte order mark or declaration names.',
    action: 'Check the bytes against the declared encoding; send UTF-8.'
  },
  DOCTYPE_REFUSED: {
    status: 400,
    kind: 'other',
    meaning: 'The document has a DOCTYPE: DTDs and external entities are not allowed in CPIX.',
    action: 'Remove the DOCTYPE.'
  },
  ENTITY_REFUSED: {
    status: 400,
    kind: 'other',
    meaning: 'The document declares XML entities.',
    action: 'Remove the entity declarations.'
  },
  MALFORMED_XML: {
    status: 400,
    kind: 'other',
    meaning: 'The body is not well-formed XML (the message names the line and column, or the undeclared prefix or entity).',
    action: 'Fix the XML where the message says.'
  },
  XML_TOO_LARGE: {
    status: 400,
    kind: 'other',
    meaning: 'The document has far more elements or attributes than any CPIX document needs.',
    action: 'Send one CPIX document per request; split large key requests.'
  },
  NOT_CPIX: {
    status: 400,
    kind: 'other',
    meaning: 'The root element is not <CPIX> in the namespace urn:dashif:org:cpix.',
    action: 'Send a CPIX document.'
  },
  TOO_MANY_ENTRIES: {
    status: 400,
    kind: 'other',
    meaning: 'A list (ContentKey, DRMSystem, ContentKeyPeriod, ContentKeyUsageRule) has more entries than speke-proxy accepts per request.',
    action: 'Split the request into several.'
  },
  MISSING_CONTENT_ID: {
    status: 400,
    kind: 'other',
    meaning: 'The document names no content id.',
    action: 'Set CPIX@contentId (SPEKE v2) or CPIX@id (SPEKE v1, PallyCon API).'
  },
  CONTENT_ID_TOO_LONG: {
    status: 422,
    kind: 'other',
    meaning: 'The content id is longer than the 200 characters PallyCon accepts.',
    action: 'Use a shorter content id.'
  },
  CONTENT_ID_INVALID: {
    status: 422,
    kind: 'other',
    meaning: 'The content id holds a double quote or a control character, which cannot travel in HLS key tags.',
    action: 'Use letters, digits and punctuation other than the double quote.'
  },
  NO_CONTENT_KEY: {
    status: 422,
    kind: 'other',
    meaning: 'The document asks for no key: it has no ContentKey.',
    action: 'Add a ContentKeyList with at least one ContentKey.'
  },
  DUPLICATE_KID: {
    status: 422,
    kind: 'other',
    meaning: 'Two ContentKeys have the same kid.',
    action: 'List each kid once.'
  },
  DANGLING_REFERENCE: {
    status: 422,
    kind: 'other',
    meaning: 'A DRMSystem, ContentKeyUsageRule, KeyPeriodFilter or dependsOnKey refers to a kid or period the document does not define.',
    action: 'Refer only to a ContentKey@kid or ContentKeyPeriod@id of the same document.'
  },
  TRACK_TYPE_TOO_LONG: {
    status: 422,
    kind: 'other',
    meaning: 'A ContentKeyUsageRule@intendedTrackType is longer than the 64 characters speke-proxy accepts.',
    action: 'Use a track type name such as SD, HD, UHD1, AUDIO or SD+HD1.'
  },
  UNKNOWN_SCHEME: {
    status: 422,
    kind: 'other',
    meaning: 'ContentKey@commonEncryptionScheme is not cenc, cbcs, cens or cbc1.',
    action: 'Use one of cenc, cbcs, cens, cbc1.'
  },
  MISSING_SYSTEM_ID: {
    status: 400,
    kind: 'other',
    meaning: 'A DRMSystem has no systemId attribute.',
    action: 'Give every DRMSystem its system id.'
  },
  UNKNOWN_DRM_SYSTEM: {
    status: 422,
    kind: 'other',
    meaning: 'A DRMSystem names a system id speke-proxy does not know.',
    action: 'Use Widevine, PlayReady, FairPlay, WisePlay, NCG or the HLS AES-128/SAMPLE-AES system ids.'
  },
  DUPLICATE_DRM_SYSTEM: {
    status: 422,
    kind: 'other',
    meaning: 'The same DRM system appears twice for one kid.',
    action: 'List each DRM system once per kid.'
  },
  SCHEME_NOT_COMPATIBLE: {
    status: 422,
    kind: 'other',
    meaning: 'A DRM system, or HLS signalling, cannot be used with the key\'s encryption scheme.',
    action: 'Use a scheme the DRM system supports (the message names both), or leave HLSSignalingData out.'
  },
  HLS_NOT_AVAILABLE: {
    status: 422,
    kind: 'other',
    meaning: 'HLSSignalingData is asked for a DRM system that has no HLS key tag.',
    action: 'Leave HLSSignalingData out for that DRM system.'
  },
  BAD_PLAYLIST: {
    status: 400,
    kind: 'other',
    meaning: 'HLSSignalingData@playlist is not media or master (multiVariant in CPIX 2.4).',
    action: 'Use media, or master (multiVariant in CPIX 2.4).'
  },
  DUPLICATE_HLS_SIGNALING: {
    status: 422,
    kind: 'other',
    meaning: 'A DRMSystem has two HLSSignalingData elements for the same playlist.',
    action: 'Give one HLSSignalingData per playlist.'
  },
  PLAYLIST_NOT_IN_CPIX_VERSION: {
    status: 400,
    kind: 'other',
    meaning: 'A SPEKE v2 request names the master playlist with the word of the other CPIX version (master in 2.4, multiVariant in 2.3).',
    action: 'Use multiVariant with CPIX@version 2.4 and master with 2.3.'
  },
  DUPLICATE_PERIOD: {
    status: 422,
    kind: 'other',
    meaning: 'Two ContentKeyPeriods have the same id.',
    action: 'Give each ContentKeyPeriod its own id.'
  },
  BAD_PERIOD: {
    status: 400,
    kind: 'other',
    meaning: 'A ContentKeyPeriod has both index and start/end, only one of start and end, an index that is not a 32-bit whole number, or start/end that are not xs:dateTime.',
    action: 'Give either an index from 0 to 4294967295 or both start and end as xs:dateTime.'
  },
  PERIOD_ENDS_BEFORE_START: {
    status: 422,
    kind: 'other',
    meaning: 'A ContentKeyPeriod ends at or before its start.',
    action: 'Make end later than start.'
  },
  BAD_KID: {
    status: 400,
    kind: 'other',
    meaning: 'A kid is not a UUID.',
    action: 'Write kids as 8-4-4-4-12 hexadecimal digits.'
  },
  BAD_BASE64: {
    status: 400,
    kind: 'other',
    meaning: 'A value that must be base64 (a key, an IV, a pssh, a PlayReady header) is not.',
    action: 'Send standard base64.'
  },
  BAD_LENGTH: {
    status: 400,
    kind: 'other',
    meaning: 'A base64 value decodes to the wrong number of bytes (a 16-byte key or IV, for instance).',
    action: 'Send a value of the length the message names.'
  },
  SPEKE_V2_PROFILE: {
    status: 422,
    kind: 'other',
    meaning: 'A SPEKE v2 request breaks AWS\'s SPEKE v2 profile; the body is AWS\'s own string (e.g. "Malformed encryption contract").',
    action: 'Follow the SPEKE v2 encryption contract: CPIX@contentId and CPIX@version, ContentKey and DRMSystem lists, usage rules.'
  },
  BAD_JSON: {
    status: 400,
    kind: 'other',
    meaning: 'The /v2/keys body is not valid JSON.',
    action: 'Send a JSON object.'
  },
  BAD_JSON_REQUEST: {
    status: 422,
    kind: 'other',
    meaning: 'A field of the /v2/keys request is missing or has the wrong type or value (the message names it).',
    action: 'Send {content_id, drm_types, encryption_scheme, track_types, key_rotation, period_index} as openapi.yaml describes.'
  },
  JSON_REQUEST_TOO_LARGE: {
    status: 400,
    kind: 'other',
    meaning: 'The /v2/keys request asks for more track types or DRM system entries than one request may.',
    action: 'Split it into several requests.'
  },
  REPEATED_JSON_ENTRY: {
    status: 400,
    kind: 'other',
    meaning: 'A /v2/keys list (drm_types, track_types) repeats an entry.',
    action: 'Give each entry once.'
  },
  MULTIPLE_DELIVERY_DATA: {
    status: 400,
    kind: 'other',
    meaning: 'A SPEKE request asks for keys encrypted for more than one recipient (several DeliveryData); speke-proxy encrypts for one.',
    action: 'Send one DeliveryData with the packager\'s certificate.'
  },
  DELIVERY_KEY_MISSING: {
    status: 400,
    kind: 'other',
    meaning: 'A SPEKE request has a DeliveryDataList without exactly one DeliveryData/DeliveryKey/ds:X509Data/ds:X509Certificate.',
    action: 'Give the recipient certificate there, or leave DeliveryDataList out for keys in the clear.'
  },
  DELIVERY_KEY_UNREADABLE: {
    status: 400,
    kind: 'other',
    meaning: 'The DeliveryKey certificate is not base64 of a DER X.509 certificate, or its signature algorithm or validity cannot be read.',
    action: 'Send the certificate as base64 DER (a PEM body without its BEGIN/END lines).'
  },
  DELIVERY_KEY_WEAK: {
    status: 400,
    kind: 'other',
    meaning: 'The DeliveryKey certificate is not one AWS accepts: not RSA, an RSA key under DELIVERY_MIN_RSA_BITS (2048 unless set), or signed with SHA-1 or MD5.',
    action: 'Issue an RSA certificate of at least that size signed with SHA-256 or better.'
  },
  DELIVERY_KEY_NOT_VALID_NOW: {
    status: 400,
    kind: 'other',
    meaning: 'The DeliveryKey certificate has expired or is not valid yet.',
    action: 'Renew the certificate (and the packager\'s certificate ARN), or check the clocks.'
  },
  ENCRYPTED_DELIVERY_UNSUPPORTED: {
    status: 422,
    kind: 'other',
    meaning: 'A PallyCon API request asks the embedded key provider (KMS_URL=local) for encrypted key delivery, which it offers on /cpix/getKey only.',
    action: 'Remove DeliveryDataList, or use the SPEKE route /cpix/getKey.'
  },
  KMS_TIMEOUT: {
    status: 504,
    kind: 'timeout',
    meaning: 'The KMS did not answer within KMS_TIMEOUT_MS.',
    action: 'Retry; if it persists, check PallyCon\'s status and the network path, or raise KMS_TIMEOUT_MS.'
  },
  KMS_UNREACHABLE: {
    status: 502,
    kind: 'connection',
    meaning: 'No connection to the KMS (refused, reset, DNS failure), also after a retry.',
    action: 'Check KMS_URL, DNS and outbound network access to the KMS.'
  },
  KMS_ERROR: {
    status: 502,
    kind: 'kms_error',
    meaning: 'The KMS answered with a server error, or with a JSON error that does not blame the request.',
    action: 'Retry later; if it persists, contact PallyCon with the time and content id.'
  },
  KMS_REFUSED: {
    status: '4xx',
    kind: 'kms_error',
    meaning: 'The KMS refused the request with a client error (its status is passed on): a wrong enc-token or site, or a request it finds invalid.',
    action: 'Check the tenant\'s enc-token (speke-proxy token inspect) and the request against the message.'
  },
  KMS_NO_CPIX: {
    status: 502,
    kind: 'not_cpix',
    meaning: 'The KMS answered with something other than CPIX: an HTML page, an empty body, or another content type.',
    action: 'Check KMS_URL: it must be the PallyCon KMS base URL, with no proxy or portal page in front.'
  },
  KMS_REPLY_NOT_CPIX: {
    status: 502,
    kind: 'not_cpix',
    meaning: 'The KMS reply looks like XML but is not a usable CPIX document.',
    action: 'Retry; if it persists, contact PallyCon with the time and content id.'
  },
  KMS_REPLY_TOO_LARGE: {
    status: 502,
    kind: 'invalid_reply',
    meaning: 'The KMS reply is larger than the reply limit (4 MiB).',
    action: 'Ask for fewer keys per request; if it persists, contact PallyCon.'
  },
  KMS_REPLY_QUOTES_SECRET: {
    status: 502,
    kind: 'invalid_reply',
    meaning: 'The KMS reply quotes the enc-token or its access key, so it is withheld.',
    action: 'Contact PallyCon; the reply never reaches the caller.'
  },
  KMS_REPLY_INVALID: {
    status: 502,
    kind: 'invalid_reply',
    meaning: 'The KMS reply does not answer the request: wrong content id or kids, missing or bad keys, pssh, PlayReady header or HLS tags.',
    action: 'Retry; if it persists, contact PallyCon with the message, the time and the content id.'
  },
  KMS_REPLY_NOT_SPEKE_V2: {
    status: 502,
    kind: 'invalid_reply',
    meaning: 'The KMS reply cannot be repaired into the SPEKE v2 shape AWS requires.',
    action: 'Contact PallyCon with the message; RESPONSE_MODE=repair is already on.'
  },
  AUDIT_UNAVAILABLE: {
    status: 503,
    kind: 'audit',
    meaning: 'No audit sink confirmed the record of the request, so no key is served.',
    action: 'Retry later; the operator checks the audit directory (space, permissions) or database named in the log.'
  },
  INTERNAL: {
    status: 500,
    kind: 'other',
    meaning: 'A bug in speke-proxy.',
    action: 'Report it with the log line "internal error" (it holds the stack) and the request id.'
  },
  BAD_AUDIT_QUERY: {
    status: 400,
    kind: 'other',
    meaning: 'An admin read (audit search, key lookup, activity, audit state) has a query parameter that is unknown, repeated or not valid (the message names it).',
    action: 'Fix the parameter as the /admin paths in openapi.yaml describe.'
  },
  KEY_LOOKUP_TOO_BROAD: {
    status: 400,
    kind: 'other',
    meaning: 'A key lookup over the audit files matches more than 10000 keys, more than the server holds in memory for one answer.',
    action: 'Narrow the lookup: add tenant or kid, or use a more specific content_id (a PostgreSQL audit store has no such bound).'
  },
  BAD_ADMIN_REQUEST: {
    status: '4xx',
    kind: 'other',
    meaning: 'An admin request is not valid: 400 for a bad parameter or value, or the status Fastify gives a body it cannot take.',
    action: 'Fix the request as openapi.yaml describes.'
  }
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERROR_CODES

/** The codes whose status is one fixed number, and the codes of one given status. */
export type CodeWithStatus<S extends number | '4xx'> = { [C in ErrorCode]: (typeof ERROR_CODES)[C]['status'] extends S ? C : never }[ErrorCode]

export function isErrorCode (value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value)
}

/** The metric kind of a code; `other` for a missing or unknown one (say, from an older record). */
export function errorKind (code: string | undefined): ErrorKind {
  return code !== undefined && isErrorCode(code) ? ERROR_CODES[code].kind : 'other'
}
