import { domainsFor } from '@aistack/handshake'

/** Default network id; it prefixes the protocol id and the topics */
export const DEFAULT_NETWORK = 'aistack'
export const PROTOCOL_NAME = 'task'
export const PROTOCOL_VERSION = '1.0.0'
export const WIRE_VERSION = '1'

export function protocolId (network: string): string {
  return `/${network}/${PROTOCOL_NAME}/${PROTOCOL_VERSION}`
}

export function tasksTopic (network: string): string {
  return `${network}/${WIRE_VERSION}/tasks`
}

export function eventsTopic (network: string): string {
  return `${network}/${WIRE_VERSION}/events`
}

/**
 * Signature domains of the records this module signs: the handshake's
 * per-network domains (`<network>/1/task-record`, `<network>/1/result-record`,
 * `<network>/1/event-record`)
 */
export function recordDomains (network: string): { task: string, result: string, event: string } {
  const { task, result, event } = domainsFor(network)
  return { task, result, event }
}

/** The domains of the default network */
export const DOMAIN_TASK = recordDomains(DEFAULT_NETWORK).task
export const DOMAIN_RESULT = recordDomains(DEFAULT_NETWORK).result
export const DOMAIN_EVENT = recordDomains(DEFAULT_NETWORK).event

/** Datastore prefix of the submitter's journal */
export const JOURNAL_PREFIX = '/aistack/tasks'

export const DEFAULT_LEASE_MS = 30_000
export const DEFAULT_MAX_ATTEMPTS = 5
export const DEFAULT_BACKOFF_MS = 500
export const DEFAULT_MAX_BACKOFF_MS = 60_000
/** Inputs up to this size travel inside the announcement */
export const INLINE_PAYLOAD_BYTES = 64 * 1024
/** Largest accepted input (JSON-encoded) */
export const DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
/** Largest accepted output (JSON-encoded) */
export const DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024
/** Largest signed batch of announcements (several inline payloads plus the envelope) */
export const MAX_ANNOUNCE_BYTES = 1024 * 1024
/** A batch of announcements is cut at this many bytes of tasks, or this many tasks */
export const ANNOUNCE_BATCH_BYTES = 256 * 1024
export const ANNOUNCE_BATCH_COUNT = 512
/** results signed together: at most this many, and this many bytes of output (a larger one goes alone) */
export const RESULT_BATCH_COUNT = 256
export const RESULT_BATCH_BYTES = 256 * 1024
/** Largest signed batch of events */
export const MAX_EVENT_BATCH_BYTES = 256 * 1024
/** Lifecycle events are published in batches this often */
export const EVENT_FLUSH_MS = 50
/** Most tasks one offer can take */
export const MAX_OFFER_SLOTS = 64
/** Largest map task */
export const MAX_MAP_INPUTS = 10_000
export const DEFAULT_TASK_TIMEOUT_MS = 5 * 60_000
export const DEFAULT_SWEEP_INTERVAL_MS = 200
export const DEFAULT_REANNOUNCE_MS = 3_000
/** How long a worker keeps a slot reserved after an offer that got no answer */
export const DEFAULT_OFFER_TIMEOUT_MS = 3_000
/** How often a worker re-sends a result that was not acknowledged */
export const DEFAULT_RESULT_RETRY_MS = 2_000
/** an acknowledgement waits at most this long for another message to the worker to travel with */
export const ACK_DELAY_MS = 20
/** How long a worker keeps trying to deliver a result */
export const DEFAULT_RESULT_HOLD_MS = 10 * 60_000
/** Announcements and events older than this are treated as replays */
export const DEFAULT_MAX_RECORD_AGE_MS = 5 * 60_000
/** Bounded sizes of the worker's backlog and of the replay windows */
export const MAX_BACKLOG = 10_000
export const MAX_SEEN = 50_000
/** Terminal tasks are removed from the journal after this long */
export const DEFAULT_RETAIN_MS = 24 * 60 * 60_000
/** workers remembered for a bad result signature (their results are then checked before being staged) */
export const MAX_BAD_SIGNERS = 1024
/** finished tasks kept at most, in memory and in the journal */
export const DEFAULT_MAX_RETAINED = 100_000
