import { domainsFor } from '@aistack/handshake'

export const DEFAULT_NETWORK = 'aistack'
/**
 * Version of the topic name: 2 since records travel bare, authenticated by
 * gossipsub's StrictSign signature of their author (1: inside a signed envelope)
 */
export const WIRE_VERSION = '2'
/** The `format` every record carries: 2, a bare `TelemetryRecord` as the gossipsub message data */
export const RECORD_FORMAT = 2

/**
 * `<network>/2/telemetry`: the gossipsub topic of telemetry records; throws
 * RangeError for an invalid network id
 */
export function telemetryTopic (network: string): string {
  // the same network-id rule as every record domain of @aistack/handshake
  domainsFor(network)
  return `${network}/${WIRE_VERSION}/telemetry`
}

/** Sampling and publishing interval, ms */
export const DEFAULT_INTERVAL_MS = 5_000
/**
 * A full record every this many intervals (the heartbeat); in between, a
 * delta only at an interval where a value moved beyond `CHANGE_THRESHOLDS`
 */
export const DEFAULT_FULL_EVERY = 12
/** A node silent for this many of its intervals is `down` */
export const DOWN_AFTER_INTERVALS = 3
/**
 * How far a value must move from the last record sent before a delta goes
 * out between heartbeats. Lists (capabilities, alerts) and the version count
 * on any change; the capability list carries load and counters, which
 * anycast reads.
 */
export const CHANGE_THRESHOLDS = {
  /** CPU of the node process, per mille of one core, absolute */
  cpuPermille: 100,
  /**
   * used system memory, per mille, absolute: Infinity, it never triggers a
   * delta (other processes on the host move it; on a shared host it caused
   * most deltas of idle nodes); it travels in full records and any delta
   */
  memUsedPermille: Infinity,
  /** rss and heap, relative to the last value sent (the heap swings with every collection) */
  memoryRatio: 0.5,
  /** event-loop p99: both at least this many µs (1 s: a node in trouble) and this ratio (it is noisy on a busy host) */
  eventLoopUs: 1_000_000,
  eventLoopRatio: 1,
  /** open connections: at least this many and this ratio */
  connections: 4,
  connectionsRatio: 0.25,
  /** bytes in or out per second: at least this many and this ratio */
  bytesPerSec: 16 * 1024,
  bytesPerSecRatio: 0.5,
  /** GPU utilisation, percent, absolute; GPU memory relative */
  gpuUtilization: 10,
  gpuMemoryRatio: 0.1
} as const

/** A `down` node leaves the table after this long without a record */
export const DEFAULT_FORGET_AFTER_MS = 10 * 60_000
/** Latency percentiles and rates cover this many intervals */
export const DEFAULT_WINDOW_INTERVALS = 12

export const LIMITS = {
  /** Shortest sampling interval a node may use, and the floor applied to a peer's declared interval */
  minIntervalMs: 250,
  /** Longest interval a peer may declare */
  maxIntervalMs: 10 * 60_000,
  /** Longest heartbeat a peer may declare (and at least its interval) */
  maxHeartbeatMs: 60 * 60_000,
  /** Signed envelope of one record */
  maxRecordBytes: 8 * 1024,
  /** Capabilities in one record (the busiest first) */
  maxCapabilities: 32,
  maxNameLength: 64,
  maxGpus: 16,
  maxAlerts: 16,
  maxAlertLength: 96,
  maxVersionLength: 32,
  /** Connected peers a full record names (4 bytes each) */
  maxNeighbours: 32,
  /** Nodes in the table */
  maxNodes: 1024,
  /** Records accepted from one node per declared interval (its own rate is one) */
  maxRecordsPerInterval: 2,
  /** Records accepted from all nodes per second */
  maxRecordsPerSecond: 200,
  /** nvidia-smi gets this long to answer */
  gpuQueryTimeoutMs: 2_000,
  /** nvidia-smi output read at most */
  gpuQueryMaxBytes: 64 * 1024
} as const

/** Default alert thresholds */
export const DEFAULT_ALERTS = {
  /** p95 latency of a capability above this, ms */
  p95Ms: 5_000,
  /** errors / requests of a capability over the window above this (0.01 = 1 %) */
  errorRate: 0.01,
  /** requests in the window needed before the error rate counts */
  minRequests: 20,
  /** GPU utilisation below this, percent: idle */
  gpuIdlePercent: 30,
  /** GPU utilisation above this, percent: overloaded */
  gpuOverloadedPercent: 95
} as const

/** Spans kept for traces */
export const TRACE_LIMITS = {
  maxSpans: 10_000,
  maxTraces: 2_000,
  maxSpansPerTrace: 256,
  maxAttributes: 32,
  maxAttributeLength: 512,
  /** A trace is forgotten this long after its last span */
  ttlMs: 15 * 60_000
} as const

/**
 * Trace context and spans from other nodes (a request's `traceparent`, the
 * spans returned with an answer): what is over a limit is dropped, never an error
 */
export const WIRE_TRACE_LIMITS = {
  /** characters of a `traceparent` value (version 00 has 55) */
  maxTraceparentLength: 256,
  /** spans returned with one answer */
  maxSpans: 32,
  /** characters of a span name */
  maxNameLength: 64,
  /** attributes of one span */
  maxAttributes: 16,
  maxAttributeKeyLength: 64,
  maxAttributeValueLength: 256,
  /** a returned span may last at most this long */
  maxDurationMs: 24 * 60 * 60_000,
  /** and start at most this far from the receiver's clock */
  maxClockSkewMs: 24 * 60 * 60_000
} as const
