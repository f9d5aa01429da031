export const DEFAULT_NETWORK = 'aistack'
export const WIRE_VERSION = '1'

/** `/<network>/anycast/1.0.0` */
export function anycastProtocol (network: string): string {
  return `/${network}/anycast/1.0.0`
}

/** `<network>/1/caps` */
export function capsTopic (network: string): string {
  return `${network}/${WIRE_VERSION}/caps`
}

/**
 * Signature domain of capability records on the default network
 * (`domainsFor(network).capability` of `@aistack/handshake` in general)
 */
export const CAPABILITY_RECORD_DOMAIN = 'aistack/1/capability-record'

/** Default LSH parameters (chosen from the anycast benchmark, see docs/benchmarks.md) */
export const DEFAULT_LSH_TABLES = 8
export const DEFAULT_LSH_BITS = 6
export const DEFAULT_LSH_PROBES = 7
export const DEFAULT_LSH_PUBLISH_PROBES = 1

export const DEFAULT_RECORD_TTL_MS = 30 * 60_000
export const MAX_RECORD_TTL_MS = 24 * 60 * 60_000

export const LIMITS = {
  /** Signed envelope of one record */
  maxRecordBytes: 16 * 1024,
  maxNameLength: 64,
  maxDescriptionLength: 1024,
  maxTags: 16,
  maxTagLength: 32,
  maxExamples: 8,
  maxExampleLength: 256,
  maxModelLength: 128,
  maxDim: 4096,
  maxAttributeLength: 64,
  /** Records in one GET_RECORDS response */
  maxRecordsPerResponse: 256,
  /** LSH keys in one GET_RECORDS request */
  maxKeysPerRequest: 1024,
  /** characters of a request's `traceparent`; a longer one is ignored */
  maxTraceparentLength: 256,
  /** spans in one INVOKE response; a response with more is malformed */
  maxSpansPerResponse: 32,
  /** attributes of one returned span; a response with more is malformed */
  maxSpanAttributes: 16
} as const

export const DEFAULT_MAX_INPUT_BYTES = 1024 * 1024
export const DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024
export const DEFAULT_TIMEOUT_MS = 30_000
export const DEFAULT_MAX_ATTEMPTS = 3

/** Names accepted for capabilities */
export const CAPABILITY_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/

/** A new or changed record, or a tombstone, is gossiped again this much later (ms): see `Announcer` */
export const CHANGE_REGOSSIP_MS = 1500
