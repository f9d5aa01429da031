/** Load of one capability (the JSON shape of `GET /v1/network` and the table) */
export interface CapabilityTelemetry {
  name: string
  /** requests running now */
  inFlight: number
  /** concurrency limit */
  capacity: number
  /** requests waiting for a slot */
  queueDepth: number
  /** requests and errors since the node started */
  requests: number
  errors: number
  /** latency percentiles over the window, ms (0 when no request) */
  p50Ms: number
  p95Ms: number
  p99Ms: number
  /** requests per minute over the window */
  ratePerMin: number
}

/** One GPU as `nvidia-smi` reports it */
export interface GpuTelemetry {
  index: number
  name: string
  /** percent */
  utilization: number
  memoryUsedMiB: number
  memoryTotalMiB: number
}

/** What a node reports about itself; optional fields are absent when not sampled */
export interface NodeTelemetry {
  /** the sender's clock at sampling, unix ms */
  timeMs: number
  /** the sender's sampling interval, ms */
  intervalMs: number
  /** the longest the sender stays silent when nothing moved, ms (absent: it sends every interval) */
  heartbeatMs?: number
  version?: string
  /** CPU time of the node process over the last interval, percent of one core */
  cpuPercent?: number
  rssBytes?: number
  heapUsedBytes?: number
  /** used system memory, percent */
  memUsedPercent?: number
  /** event-loop delay p99 over the last interval, ms */
  eventLoopP99Ms?: number
  connections?: number
  bytesInPerSec?: number
  bytesOutPerSec?: number
  capabilities: CapabilityTelemetry[]
  /** absent where no GPU can be queried */
  gpus?: GpuTelemetry[]
  /** names of the node's active alerts */
  alerts: string[]
  /**
   * peer ids of the nodes it is connected to (at most 32), as far as this
   * node knows them: a full record names its neighbours by 4-byte tags, which
   * resolve against the nodes of the table; absent until a full record came
   */
  links?: string[]
}

/** One row of the network table */
export interface NodeEntry {
  peerId: string
  status: 'up' | 'down'
  /** ms since the last record (or sample, for this node) */
  lastSeenMs: number
  /** true for this node */
  self: boolean
  /** false while only deltas arrived since this node joined the table (fields may be missing) */
  complete: boolean
  telemetry: NodeTelemetry
}

/** What anycast scoring can read about a peer (`Telemetry.loadOf`) */
export interface PeerLoad {
  up: boolean
  lastSeenMs: number
  /** requests in flight / capacity over all capabilities, 0..1 (0 when it serves none) */
  load: number
  /** the worst p95 latency of its capabilities, ms */
  p95Ms: number
  /** errors / requests over its capabilities since it started, 0..1 */
  errorRate: number
  cpuPercent?: number
  /** per capability: in flight / capacity, p95 ms */
  capabilities: Record<string, { load: number, p95Ms: number }>
}

/** An alert raised or cleared on this node */
export interface TelemetryAlert {
  /** `latency-p95`, `error-rate`, `throughput`, `gpu-idle`, `gpu-overloaded` */
  kind: string
  /** the capability name or `gpu<index>` */
  subject: string
  /** `<kind>:<subject>` */
  name: string
  active: boolean
  value: number
  threshold: number
  message: string
  at: number
}

/** A `telemetry.alert` event, shaped like the task queue's lifecycle events */
export interface TelemetryAlertEvent {
  type: 'telemetry.alert'
  origin: string
  local: true
  at: number
  alert: TelemetryAlert
}

/**
 * What a consumer of the network table needs (anycast scoring, adaptive
 * batching): `TelemetryService` implements it. Undefined for a peer that has
 * sent no telemetry.
 */
export interface PeerLoadSource {
  loadOf(peerId: { toString(): string } | string): PeerLoad | undefined
}
