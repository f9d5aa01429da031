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

/**
 * Shortest lease a task may have. A worker renews its leases every third of
 * the lease, and the submitter waits a lease plus the worker's grace (see
 * `RoundTrips`) past the last renewal. Beside three CPU-bound processes on
 * two cores (load average 15), the longest gap between a worker's renewals
 * was 990 ms and its first report came 535 ms after the assignment
 * (test/lease-load.spec.ts): 1 s plus the grace holds; 50 ms, the minimum
 * before, expired leases of healthy workers under load.
 */
export const MIN_LEASE_MS = 1_000
export const MAX_LEASE_MS = 24 * 3600_000
/** longest per-attempt timeout (and what a timeout from the wire is clamped to) */
export const MAX_TASK_TIMEOUT_MS = 24 * 3600_000
/** longest relative deadline of a task */
export const MAX_DEADLINE_MS = 30 * 24 * 3600_000
/** how long past a lease the submitter waits for a worker whose round trip it has not measured yet */
export const INITIAL_LEASE_GRACE_MS = 1_000
/** the least and the most the measured round trip may add to a lease before it expires */
export const MIN_LEASE_GRACE_MS = 500
export const MAX_LEASE_GRACE_MS = 10_000
/** workers whose round trip the submitter remembers */
export const MAX_ROUND_TRIPS = 4096

/** Longest task id accepted from the wire (the submitter's ids are 36-42 characters) */
export const MAX_TASK_ID_LENGTH = 128
export const MAX_CAPABILITY_LENGTH = 256
export const MAX_QUERY_LENGTH = 4096
/** requirements of a task: at most this many, each name and value at most MAX_REQUIREMENT_LENGTH characters */
export const MAX_REQUIREMENTS = 32
export const MAX_REQUIREMENT_LENGTH = 256
/** reasons, progress messages and error texts from the wire */
export const MAX_TEXT_LENGTH = 4096
/** error codes in results */
export const MAX_CODE_LENGTH = 64
/** the JSON details of one event */
export const MAX_EVENT_DATA_LENGTH = 8192
/** a peer id as multihash bytes */
export const MAX_PEER_ID_BYTES = 64
/** characters of a task's `traceparent`; a longer one is ignored (the task runs untraced) */
export const MAX_TRACEPARENT_LENGTH = 256
/** spans in one result, and attributes per span (protons decode limits) */
export const MAX_RESULT_SPANS = 32
export const MAX_SPAN_ATTRIBUTES = 16

/** results a worker holds until acknowledged, per submitter: past it, the submitter's new assignments are refused */
export const DEFAULT_MAX_HELD_RESULTS = 4096
/** bytes of output a worker holds until acknowledged, per submitter */
export const DEFAULT_MAX_HELD_BYTES = 64 * 1024 * 1024
/** results and bytes of output a worker holds for all submitters together */
export const MAX_HELD_RESULTS_TOTAL = 16_384
export const MAX_HELD_BYTES_TOTAL = 256 * 1024 * 1024
