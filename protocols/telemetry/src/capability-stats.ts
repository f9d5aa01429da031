/**
 * Per-capability request statistics: counters since start and latency
 * percentiles over a sliding window of sampling intervals, kept in
 * HdrHistograms (hdr-histogram-js, 2 significant digits, microseconds).
 */
import * as hdr from 'hdr-histogram-js'
import { LIMITS } from './constants.js'
import type { CapabilityTelemetry } from './types.js'
import type { Histogram } from 'hdr-histogram-js'

/** What the node tells about the capabilities it serves now */
export interface CapabilityLoad {
  name: string
  inFlight: number
  capacity: number
  queueDepth?: number
}

/** Longest latency tracked: one hour, in µs; longer ones count as one hour */
const MAX_LATENCY_US = 3_600_000_000

function newHistogram (): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: MAX_LATENCY_US, numberOfSignificantValueDigits: 2, bitBucketSize: 'packed' })
}

interface Slot {
  histogram: Histogram
  requests: number
  errors: number
}

interface Stats {
  requests: number
  errors: number
  /** one slot per interval of the window, the current one last */
  window: Slot[]
}

/** Window statistics of one capability, as alerts read them */
export interface WindowStats {
  requests: number
  errors: number
  p95Ms: number
  /** ms the window covers */
  spanMs: number
}

export class CapabilityStatsRecorder {
  private readonly stats = new Map<string, Stats>()
  private readonly windowIntervals: number

  constructor (windowIntervals: number) {
    this.windowIntervals = Math.max(1, windowIntervals)
  }

  private statsOf (name: string): Stats | undefined {
    let s = this.stats.get(name)
    if (s == null) {
      // a bound on names that are no longer served is kept by `rotate`
      if (this.stats.size >= LIMITS.maxCapabilities * 4) return undefined
      s = { requests: 0, errors: 0, window: [{ histogram: newHistogram(), requests: 0, errors: 0 }] }
      this.stats.set(name, s)
    }
    return s
  }

  /** Counts one finished request of `name` that took `latencyMs` */
  record (name: string, latencyMs: number, ok: boolean): void {
    const s = this.statsOf(name)
    if (s == null) return
    const slot = s.window[s.window.length - 1]
    s.requests++
    slot.requests++
    if (!ok) {
      s.errors++
      slot.errors++
    }
    slot.histogram.recordValue(Math.min(MAX_LATENCY_US, Math.max(1, Math.round(latencyMs * 1000))))
  }

  /**
   * Statistics of every capability in `served` (and of none other) over the
   * window; starts a new interval. `intervalMs` is the sampling interval.
   */
  sample (served: CapabilityLoad[], intervalMs: number): { capabilities: CapabilityTelemetry[], windows: Map<string, WindowStats> } {
    const capabilities: CapabilityTelemetry[] = []
    const windows = new Map<string, WindowStats>()
    const names = new Set(served.map(c => c.name))
    for (const name of this.stats.keys()) {
      if (!names.has(name)) this.stats.delete(name)
    }
    for (const c of served) {
      const s = this.statsOf(c.name)
      if (s == null) continue
      const merged = newHistogram()
      let requests = 0
      let errors = 0
      for (const slot of s.window) {
        merged.add(slot.histogram)
        requests += slot.requests
        errors += slot.errors
      }
      const ms = (p: number): number => merged.totalCount === 0 ? 0 : Math.round(merged.getValueAtPercentile(p) / 10) / 100
      const spanMs = s.window.length * intervalMs
      const t: CapabilityTelemetry = {
        name: c.name,
        inFlight: c.inFlight,
        capacity: c.capacity,
        queueDepth: c.queueDepth ?? 0,
        requests: s.requests,
        errors: s.errors,
        p50Ms: ms(50),
        p95Ms: ms(95),
        p99Ms: ms(99),
        ratePerMin: Math.round(requests / (spanMs / 60_000) * 1000) / 1000
      }
      capabilities.push(t)
      windows.set(c.name, { requests, errors, p95Ms: t.p95Ms, spanMs })
      s.window.push({ histogram: newHistogram(), requests: 0, errors: 0 })
      if (s.window.length > this.windowIntervals) s.window.shift()
    }
    return { capabilities, windows }
  }
}
