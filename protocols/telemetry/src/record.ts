/**
 * The telemetry record: conversion between `NodeTelemetry` and its wire form
 * (`TelemetryRecord`, src/pb/telemetry.proto), deltas against the last full
 * record, and their checks. Values are quantised on the wire (per mille,
 * microseconds, whole bytes) so that a quiet node's delta stays empty.
 */
import { createHash } from 'node:crypto'
import { InvalidTelemetryRecordError } from './errors.js'
import { CHANGE_THRESHOLDS, LIMITS, RECORD_FORMAT } from './constants.js'
import { CapabilityStats, GpuStats, TelemetryRecord } from './pb/telemetry.js'
import type { CapabilityTelemetry, GpuTelemetry, NodeTelemetry } from './types.js'

const SCALAR_FIELDS = ['cpuPermille', 'rssBytes', 'heapUsedBytes', 'memUsedPermille', 'eventLoopP99Us', 'connections', 'bytesInPerSec', 'bytesOutPerSec', 'version'] as const

const uint = (x: number | undefined): number | undefined => x == null || !Number.isFinite(x) ? undefined : Math.max(0, Math.round(x))
const big = (x: number | undefined): bigint | undefined => x == null || !Number.isFinite(x) ? undefined : BigInt(Math.max(0, Math.round(x)))
const U32 = 0xffffffff
const u32 = (x: number): number => Math.min(U32, Math.max(0, Math.round(x)))

function capabilityToWire (c: CapabilityTelemetry): CapabilityStats {
  return {
    name: c.name,
    inFlight: u32(c.inFlight),
    capacity: u32(c.capacity),
    queueDepth: u32(c.queueDepth),
    requests: BigInt(Math.max(0, Math.round(c.requests))),
    errors: BigInt(Math.max(0, Math.round(c.errors))),
    p50Us: u32(c.p50Ms * 1000),
    p95Us: u32(c.p95Ms * 1000),
    p99Us: u32(c.p99Ms * 1000),
    rateMilliPerMin: u32(c.ratePerMin * 1000)
  }
}

function capabilityFromWire (c: CapabilityStats): CapabilityTelemetry {
  return {
    name: c.name,
    inFlight: c.inFlight,
    capacity: c.capacity,
    queueDepth: c.queueDepth,
    requests: Number(c.requests),
    errors: Number(c.errors),
    p50Ms: c.p50Us / 1000,
    p95Ms: c.p95Us / 1000,
    p99Ms: c.p99Us / 1000,
    ratePerMin: c.rateMilliPerMin / 1000
  }
}

function gpuToWire (g: GpuTelemetry): GpuStats {
  return { index: u32(g.index), name: g.name.slice(0, LIMITS.maxNameLength), utilization: u32(g.utilization), memoryUsedMib: u32(g.memoryUsedMiB), memoryTotalMib: u32(g.memoryTotalMiB) }
}

function gpuFromWire (g: GpuStats): GpuTelemetry {
  return { index: g.index, name: g.name, utilization: g.utilization, memoryUsedMiB: g.memoryUsedMib, memoryTotalMiB: g.memoryTotalMib }
}

/** Bytes of a neighbour's tag in a full record */
export const NEIGHBOUR_TAG_BYTES = 4

/** A peer's tag in the `neighbours` of a record: the first 4 bytes of SHA-256 over its peer id string, as hex */
export function neighbourTag (peerId: string): string {
  return createHash('sha256').update(peerId).digest('hex').slice(0, NEIGHBOUR_TAG_BYTES * 2)
}

/**
 * The neighbours a record names: at most `LIMITS.maxNeighbours` distinct
 * peers, those of the lowest tags (a stable choice), in tag order
 */
export function pickNeighbours (peerIds: Iterable<string>): string[] {
  const tagged = [...new Set(peerIds)].map(p => ({ p, tag: neighbourTag(p) }))
  tagged.sort((a, b) => a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0)
  return tagged.slice(0, LIMITS.maxNeighbours).map(t => t.p)
}

/** The tags of a record's `neighbours` field, as hex */
export function neighbourTags (bytes: Uint8Array): string[] {
  const out: string[] = []
  for (let i = 0; i + NEIGHBOUR_TAG_BYTES <= bytes.byteLength; i += NEIGHBOUR_TAG_BYTES) out.push(Buffer.from(bytes.subarray(i, i + NEIGHBOUR_TAG_BYTES)).toString('hex'))
  return out
}

/** The wire form of a full record for `t` (capabilities cut to the limit, busiest first) */
export function fullRecord (t: NodeTelemetry, seq: bigint): TelemetryRecord {
  const caps = t.capabilities.length > LIMITS.maxCapabilities
    ? [...t.capabilities].sort((a, b) => b.requests - a.requests).slice(0, LIMITS.maxCapabilities)
    : t.capabilities
  return {
    format: RECORD_FORMAT,
    seq,
    baseSeq: seq,
    full: true,
    timeMs: BigInt(Math.max(0, Math.round(t.timeMs))),
    intervalMs: u32(t.intervalMs),
    heartbeatMs: t.heartbeatMs == null ? undefined : u32(t.heartbeatMs),
    cpuPermille: uint(t.cpuPercent == null ? undefined : t.cpuPercent * 10),
    rssBytes: big(t.rssBytes),
    heapUsedBytes: big(t.heapUsedBytes),
    memUsedPermille: uint(t.memUsedPercent == null ? undefined : t.memUsedPercent * 10),
    eventLoopP99Us: uint(t.eventLoopP99Ms == null ? undefined : t.eventLoopP99Ms * 1000),
    connections: uint(t.connections),
    bytesInPerSec: big(t.bytesInPerSec),
    bytesOutPerSec: big(t.bytesOutPerSec),
    version: t.version?.slice(0, LIMITS.maxVersionLength),
    capabilitiesSet: true,
    capabilities: caps.map(capabilityToWire),
    gpusSet: t.gpus != null,
    gpus: (t.gpus ?? []).slice(0, LIMITS.maxGpus).map(gpuToWire),
    alertsSet: true,
    alerts: t.alerts.slice(0, LIMITS.maxAlerts).map(a => a.slice(0, LIMITS.maxAlertLength)),
    neighbours: Buffer.from(pickNeighbours(t.links ?? []).map(neighbourTag).join(''), 'hex')
  }
}

function sameList<T> (a: T[], b: T[], encode: (x: T) => Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    if (!Buffer.from(encode(a[i])).equals(encode(b[i]))) return false
  }
  return true
}

/**
 * A delta: `next` with only the fields that differ from `base` (a full
 * record). Lists (capabilities, GPUs, alerts) go whole when any entry differs.
 */
export function deltaRecord (base: TelemetryRecord, next: TelemetryRecord): TelemetryRecord {
  const delta: TelemetryRecord = {
    format: RECORD_FORMAT,
    seq: next.seq,
    baseSeq: base.seq,
    full: false,
    timeMs: next.timeMs,
    intervalMs: next.intervalMs,
    heartbeatMs: next.heartbeatMs,
    capabilitiesSet: false,
    capabilities: [],
    gpusSet: false,
    gpus: [],
    alertsSet: false,
    alerts: [],
    // neighbours travel in full records only
    neighbours: new Uint8Array(0)
  }
  for (const f of SCALAR_FIELDS) {
    if (next[f] !== base[f]) (delta as any)[f] = next[f]
  }
  if (!sameList(base.capabilities, next.capabilities, CapabilityStats.encode)) {
    delta.capabilitiesSet = true
    delta.capabilities = next.capabilities
  }
  if (base.gpusSet !== next.gpusSet || !sameList(base.gpus, next.gpus, GpuStats.encode)) {
    // in a delta, gpus_set says the list changed; an empty list means no GPU any more
    delta.gpusSet = true
    delta.gpus = next.gpus
  }
  if (base.alerts.join('\n') !== next.alerts.join('\n')) {
    delta.alertsSet = true
    delta.alerts = next.alerts
  }
  return delta
}

const moved = (a: number | bigint | undefined, b: number | bigint | undefined, abs: number, ratio: number): boolean => {
  if (a == null || b == null) return a !== b
  const x = Number(a)
  const y = Number(b)
  const d = Math.abs(x - y)
  return d > 0 && d >= abs && d >= ratio * Math.max(Math.abs(x), 1)
}

/**
 * Whether `next` moved far enough from `sent` (the last record sent, both in
 * full form) to be worth a delta before the next heartbeat: a scalar beyond
 * its `CHANGE_THRESHOLDS`, or any change of the capabilities (load, counters,
 * latencies), the alerts, the version or the set of GPUs.
 */
export function changedEnough (sent: TelemetryRecord, next: TelemetryRecord): boolean {
  const T = CHANGE_THRESHOLDS
  if (sent.intervalMs !== next.intervalMs || sent.heartbeatMs !== next.heartbeatMs || sent.version !== next.version) return true
  if (moved(sent.cpuPermille, next.cpuPermille, T.cpuPermille, 0)) return true
  if (moved(sent.memUsedPermille, next.memUsedPermille, T.memUsedPermille, 0)) return true
  if (moved(sent.rssBytes, next.rssBytes, 0, T.memoryRatio) || moved(sent.heapUsedBytes, next.heapUsedBytes, 0, T.memoryRatio)) return true
  if (moved(sent.eventLoopP99Us, next.eventLoopP99Us, T.eventLoopUs, T.eventLoopRatio)) return true
  if (moved(sent.connections, next.connections, T.connections, T.connectionsRatio)) return true
  if (moved(sent.bytesInPerSec, next.bytesInPerSec, T.bytesPerSec, T.bytesPerSecRatio) || moved(sent.bytesOutPerSec, next.bytesOutPerSec, T.bytesPerSec, T.bytesPerSecRatio)) return true
  if (!sameList(sent.capabilities, next.capabilities, CapabilityStats.encode)) return true
  if (sent.alerts.join('\n') !== next.alerts.join('\n')) return true
  if (sent.gpusSet !== next.gpusSet || sent.gpus.length !== next.gpus.length) return true
  return sent.gpus.some((g, i) => {
    const h = next.gpus[i]
    return g.index !== h.index || g.name !== h.name || g.memoryTotalMib !== h.memoryTotalMib ||
      moved(g.utilization, h.utilization, T.gpuUtilization, 0) || moved(g.memoryUsedMib, h.memoryUsedMib, 1, T.gpuMemoryRatio)
  })
}

/** Applies a delta to the full record it was made against; returns the resulting full record */
export function applyDelta (base: TelemetryRecord, delta: TelemetryRecord): TelemetryRecord {
  if (delta.full) return delta
  const out: TelemetryRecord = { ...base, seq: delta.seq, timeMs: delta.timeMs, intervalMs: delta.intervalMs, heartbeatMs: delta.heartbeatMs }
  for (const f of SCALAR_FIELDS) {
    if (delta[f] !== undefined) (out as any)[f] = delta[f]
  }
  if (delta.capabilitiesSet) out.capabilities = delta.capabilities
  if (delta.gpusSet) {
    out.gpus = delta.gpus
    out.gpusSet = delta.gpus.length > 0
  }
  if (delta.alertsSet) out.alerts = delta.alerts
  return out
}

/** `NodeTelemetry` of a full record */
export function telemetryOf (r: TelemetryRecord): NodeTelemetry {
  const t: NodeTelemetry = {
    timeMs: Number(r.timeMs),
    intervalMs: r.intervalMs,
    capabilities: r.capabilities.map(capabilityFromWire),
    alerts: [...r.alerts]
  }
  if (r.version != null) t.version = r.version
  if (r.heartbeatMs != null) t.heartbeatMs = r.heartbeatMs
  if (r.cpuPermille != null) t.cpuPercent = r.cpuPermille / 10
  if (r.rssBytes != null) t.rssBytes = Number(r.rssBytes)
  if (r.heapUsedBytes != null) t.heapUsedBytes = Number(r.heapUsedBytes)
  if (r.memUsedPermille != null) t.memUsedPercent = r.memUsedPermille / 10
  if (r.eventLoopP99Us != null) t.eventLoopP99Ms = r.eventLoopP99Us / 1000
  if (r.connections != null) t.connections = r.connections
  if (r.bytesInPerSec != null) t.bytesInPerSec = Number(r.bytesInPerSec)
  if (r.bytesOutPerSec != null) t.bytesOutPerSec = Number(r.bytesOutPerSec)
  if (r.gpusSet) t.gpus = r.gpus.map(gpuFromWire)
  return t
}

/**
 * Decodes a record payload and checks its limits; throws
 * InvalidTelemetryRecordError. protons bounds the repeated fields while decoding.
 */
export function decodeRecord (payload: Uint8Array): TelemetryRecord {
  let r: TelemetryRecord
  try {
    r = TelemetryRecord.decode(payload, {
      limits: { capabilities: LIMITS.maxCapabilities, gpus: LIMITS.maxGpus, alerts: LIMITS.maxAlerts }
    })
  } catch (err: any) {
    throw new InvalidTelemetryRecordError(`not a telemetry record: ${String(err?.message ?? err)}`)
  }
  if (r.format !== RECORD_FORMAT) throw new InvalidTelemetryRecordError(`record format ${r.format} is not ${RECORD_FORMAT}`)
  if (r.seq === 0n) throw new InvalidTelemetryRecordError('seq must be positive')
  if (r.full ? r.baseSeq !== r.seq : r.baseSeq >= r.seq) throw new InvalidTelemetryRecordError('base_seq does not fit seq')
  if (r.intervalMs < LIMITS.minIntervalMs || r.intervalMs > LIMITS.maxIntervalMs) {
    throw new InvalidTelemetryRecordError(`interval ${r.intervalMs} ms is outside ${LIMITS.minIntervalMs}..${LIMITS.maxIntervalMs}`)
  }
  if (r.heartbeatMs != null && (r.heartbeatMs < r.intervalMs || r.heartbeatMs > LIMITS.maxHeartbeatMs)) {
    throw new InvalidTelemetryRecordError(`heartbeat ${r.heartbeatMs} ms is outside interval..${LIMITS.maxHeartbeatMs}`)
  }
  for (const c of r.capabilities) {
    if (c.name.length === 0 || c.name.length > LIMITS.maxNameLength) throw new InvalidTelemetryRecordError('capability name length')
  }
  for (const g of r.gpus) {
    if (g.name.length > LIMITS.maxNameLength) throw new InvalidTelemetryRecordError('gpu name length')
  }
  for (const a of r.alerts) {
    if (a.length > LIMITS.maxAlertLength) throw new InvalidTelemetryRecordError('alert name length')
  }
  if (r.version != null && r.version.length > LIMITS.maxVersionLength) throw new InvalidTelemetryRecordError('version length')
  if (r.neighbours.byteLength % NEIGHBOUR_TAG_BYTES !== 0 || r.neighbours.byteLength > LIMITS.maxNeighbours * NEIGHBOUR_TAG_BYTES) {
    throw new InvalidTelemetryRecordError(`neighbours must be at most ${LIMITS.maxNeighbours} tags of ${NEIGHBOUR_TAG_BYTES} bytes`)
  }
  if (!r.full && r.neighbours.byteLength > 0) throw new InvalidTelemetryRecordError('a delta carries no neighbours')
  return r
}

export function encodeRecord (r: TelemetryRecord): Uint8Array {
  return TelemetryRecord.encode(r)
}
