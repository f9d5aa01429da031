/**
 * A candidate's score: its similarity less penalties for load, latency and
 * error rate. Load comes from the last anycast answer of its owner (in
 * flight / capacity, carried in every response) or from a load source such as
 * the node's telemetry table, whichever is fresher.
 */
import { makeRoom } from './bounded.js'
import type { LoadSource, ScoreWeights } from './types.js'

/** The weights anycast scores with unless `weights` overrides them */
export const DEFAULT_SCORE_WEIGHTS: ScoreWeights = { load: 0.1, latency: 0.05, errors: 0.1 }

/** What the last anycast answer of an owner said of one capability's load, and when */
export interface ObservedLoad {
  inflight: number
  capacity: number
  /** when the answer arrived, ms since the epoch */
  at: number
}

/** Owners (or `owner/capability` pairs) whose load and round-trip time are kept at most; the oldest are forgotten first */
export const MAX_OBSERVED = 10_000

/**
 * The load of each `owner/capability` as anycast answers reported it,
 * stamped with the time it was set: a `Map` that records `at` itself,
 * bounded to `MAX_OBSERVED` entries.
 */
export class ObservedLoads extends Map<string, ObservedLoad> {
  override set (key: string, value: { inflight: number, capacity: number, at?: number }): this {
    this.delete(key)
    makeRoom(this, MAX_OBSERVED)
    return super.set(key, { inflight: value.inflight, capacity: value.capacity, at: value.at ?? Date.now() })
  }
}

/** The figures a candidate is scored with */
export interface ScoreInputs {
  /** in flight / capacity, 0..1 */
  load: number
  /** ms, undefined when unknown */
  latencyMs?: number
  /** errors / requests, 0..1 (0 when unknown) */
  errorRate: number
  /** where load, latency and error rate came from */
  loadFrom: 'anycast' | 'telemetry' | 'none'
}

/**
 * Picks a candidate's load, latency and error rate: from `source` (the
 * telemetry table) when it holds a live record of `owner` that arrived after
 * the last anycast answer for `owner/name`, else from that answer and the
 * smoothed round-trip time. Telemetry's latency is the capability's p95
 * (its own p95 when the record lists it, else the node's worst), its error
 * rate the node's errors / requests.
 */
export function scoreInputs (owner: string, name: string, observed: ObservedLoad | undefined, rttMs: number | undefined, source: LoadSource | undefined, now = Date.now()): ScoreInputs {
  let t: ReturnType<LoadSource['loadOf']>
  try {
    t = source?.loadOf(owner)
  } catch {
    t = undefined
  }
  if (t != null && t.up && (observed == null || now - t.lastSeenMs > observed.at)) {
    const cap = t.capabilities[name]
    const p95 = cap?.p95Ms ?? t.p95Ms
    return {
      load: clamp01(cap?.load ?? t.load),
      latencyMs: p95 > 0 ? p95 : rttMs,
      errorRate: clamp01(t.errorRate),
      loadFrom: 'telemetry'
    }
  }
  if (observed == null && rttMs == null) return { load: 0, errorRate: 0, loadFrom: 'none' }
  const load = observed != null && observed.capacity > 0 ? Math.min(1, observed.inflight / observed.capacity) : 0
  return { load, latencyMs: rttMs, errorRate: 0, loadFrom: 'anycast' }
}

/**
 * similarity − weights.load × load − weights.latency × min(1, latency / 1 s)
 * − weights.errors × error rate
 */
export function score (similarity: number, inputs: ScoreInputs, weights: ScoreWeights): number {
  const latencyPenalty = inputs.latencyMs == null ? 0 : Math.min(1, inputs.latencyMs / 1000)
  return similarity - weights.load * inputs.load - weights.latency * latencyPenalty - weights.errors * inputs.errorRate
}

function clamp01 (x: number): number {
  return Number.isFinite(x) ? Math.max(0, Math.min(1, x)) : 0
}
