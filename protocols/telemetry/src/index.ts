/**
 * @aistack/telemetry: every node samples its own state (CPU, memory,
 * event-loop delay, connections, per-capability load and latency, bytes,
 * GPUs) and publishes it as a signed record on `<network>/2/telemetry`; every
 * node keeps the table of the network from those records, raises alerts on
 * its own state and keeps the spans of semantic traces.
 *
 * ```ts
 * services: { pubsub: gossipsub(), telemetry: telemetry({ network: 'aistack', capabilities: () => [...] }) }
 * ```
 */
export { telemetry, TelemetryService } from './service.js'
export type { TelemetryComponents, TelemetryInit, TelemetryEvents, TelemetryPubSub, TelemetryTraffic } from './service.js'
export { NetworkTable, loadFromTelemetry } from './table.js'
export { AlertEvaluator } from './alerts.js'
export type { AlertThresholds } from './alerts.js'
export { CapabilityStatsRecorder } from './capability-stats.js'
export type { CapabilityLoad, WindowStats } from './capability-stats.js'
export { TraceHandle, TraceStore, Tracing, isSpanId, isTraceId } from './traces.js'
export type { SpanAttributes, TraceSpan, TraceView, TracingInit } from './traces.js'
export { acceptWireSpans, formatTraceparent, parseTraceparent, toWireSpans } from './trace-context.js'
export type { AcceptedSpan, TraceParent, WireSpan } from './trace-context.js'
export { parseNvidiaSmi, queryGpus, NVIDIA_SMI_ARGS } from './gpu.js'
export { NEIGHBOUR_TAG_BYTES, applyDelta, changedEnough, decodeRecord, deltaRecord, encodeRecord, fullRecord, neighbourTag, neighbourTags, pickNeighbours, telemetryOf } from './record.js'
export * from './constants.js'
export * from './errors.js'
export type * from './types.js'
export type { TelemetryRecord, CapabilityStats, GpuStats } from './pb/telemetry.js'
