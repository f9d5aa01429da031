/**
 * Alerts on this node's own samples: a capability's p95 latency, its error
 * rate, its throughput against a floor, and GPU utilisation. Each alert is
 * raised once when its condition starts and cleared once when it ends.
 */
import { DEFAULT_ALERTS } from './constants.js'
import type { WindowStats } from './capability-stats.js'
import type { GpuTelemetry, TelemetryAlert } from './types.js'

export interface AlertThresholds {
  /** p95 latency above this raises `latency-p95` (ms, default 5000) */
  p95Ms?: number
  /** error rate above this raises `error-rate` (0..1, default 0.01) */
  errorRate?: number
  /** requests in the window before `error-rate` is judged (default 20) */
  minRequests?: number
  /** GPU utilisation below this raises `gpu-idle` (percent, default 30) */
  gpuIdlePercent?: number
  /** GPU utilisation above this raises `gpu-overloaded` (percent, default 95) */
  gpuOverloadedPercent?: number
  /** per capability: fewer requests per minute than this over the window raises `throughput` */
  minRatePerMin?: Record<string, number>
}

interface Condition {
  kind: string
  subject: string
  firing: boolean
  value: number
  threshold: number
  message: string
}

export class AlertEvaluator {
  private readonly t: Required<Omit<AlertThresholds, 'minRatePerMin'>> & { minRatePerMin: Record<string, number> }
  private readonly active = new Map<string, TelemetryAlert>()

  constructor (thresholds: AlertThresholds = {}) {
    this.t = { ...DEFAULT_ALERTS, minRatePerMin: {}, ...thresholds }
  }

  /** Names (`kind:subject`) of the active alerts */
  activeNames (): string[] {
    return [...this.active.keys()]
  }

  /** Active alerts */
  list (): TelemetryAlert[] {
    return [...this.active.values()]
  }

  /** Judges a sample; returns the alerts raised and cleared by it */
  evaluate (windows: Map<string, WindowStats>, gpus: GpuTelemetry[] | undefined, at: number): TelemetryAlert[] {
    const conditions: Condition[] = []
    for (const [name, w] of windows) {
      conditions.push({ kind: 'latency-p95', subject: name, firing: w.requests > 0 && w.p95Ms > this.t.p95Ms, value: w.p95Ms, threshold: this.t.p95Ms, message: `p95 latency of ${name} is ${w.p95Ms} ms (limit ${this.t.p95Ms} ms)` })
      const rate = w.requests > 0 ? w.errors / w.requests : 0
      conditions.push({ kind: 'error-rate', subject: name, firing: w.requests >= this.t.minRequests && rate > this.t.errorRate, value: round(rate), threshold: this.t.errorRate, message: `${(rate * 100).toFixed(1)} % of ${w.requests} requests to ${name} failed (limit ${(this.t.errorRate * 100).toFixed(1)} %)` })
      const floor = this.t.minRatePerMin[name]
      if (floor != null) {
        const perMin = w.requests / (w.spanMs / 60_000)
        conditions.push({ kind: 'throughput', subject: name, firing: perMin < floor, value: round(perMin), threshold: floor, message: `${name} served ${perMin.toFixed(1)} requests per minute (floor ${floor})` })
      }
    }
    for (const g of gpus ?? []) {
      const subject = `gpu${g.index}`
      conditions.push({ kind: 'gpu-idle', subject, firing: g.utilization < this.t.gpuIdlePercent, value: g.utilization, threshold: this.t.gpuIdlePercent, message: `GPU ${g.index} (${g.name}) is ${g.utilization} % busy (idle below ${this.t.gpuIdlePercent} %)` })
      conditions.push({ kind: 'gpu-overloaded', subject, firing: g.utilization > this.t.gpuOverloadedPercent, value: g.utilization, threshold: this.t.gpuOverloadedPercent, message: `GPU ${g.index} (${g.name}) is ${g.utilization} % busy (overloaded above ${this.t.gpuOverloadedPercent} %)` })
    }
    const changes: TelemetryAlert[] = []
    const seen = new Set<string>()
    for (const c of conditions) {
      const name = `${c.kind}:${c.subject}`
      seen.add(name)
      const was = this.active.get(name)
      if (c.firing && was == null) {
        const alert: TelemetryAlert = { kind: c.kind, subject: c.subject, name, active: true, value: c.value, threshold: c.threshold, message: c.message, at }
        this.active.set(name, alert)
        changes.push(alert)
      } else if (c.firing && was != null) {
        was.value = c.value
        was.message = c.message
      } else if (!c.firing && was != null) {
        this.active.delete(name)
        changes.push({ ...was, active: false, value: c.value, message: `cleared: ${c.message}`, at })
      }
    }
    // a capability or GPU that is gone takes its alerts with it
    for (const [name, was] of this.active) {
      if (!seen.has(name)) {
        this.active.delete(name)
        changes.push({ ...was, active: false, message: `cleared: ${was.subject} is gone`, at })
      }
    }
    return changes
  }
}

function round (x: number): number {
  return Math.round(x * 10000) / 10000
}
