/**
 * Samples of the node process and its machine: CPU time of this process,
 * memory, event-loop delay (node:perf_hooks' histogram, reset every sample).
 */
import { freemem, totalmem } from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'

type IntervalHistogram = ReturnType<typeof monitorEventLoopDelay>

export interface SystemSample {
  /** percent of one core since the previous sample */
  cpuPercent: number
  rssBytes: number
  heapUsedBytes: number
  memUsedPercent: number
  /** ms */
  eventLoopP99Ms: number
}

export class SystemSampler {
  private histogram?: IntervalHistogram
  private lastCpu = process.cpuUsage()
  private lastAt = performance.now()

  start (): void {
    this.histogram = monitorEventLoopDelay({ resolution: 20 })
    this.histogram.enable()
    this.lastCpu = process.cpuUsage()
    this.lastAt = performance.now()
  }

  stop (): void {
    this.histogram?.disable()
    this.histogram = undefined
  }

  sample (): SystemSample {
    const now = performance.now()
    const cpu = process.cpuUsage(this.lastCpu)
    const wallUs = Math.max(1, (now - this.lastAt) * 1000)
    this.lastCpu = process.cpuUsage()
    this.lastAt = now
    const mem = process.memoryUsage()
    const total = totalmem()
    const h = this.histogram
    const p99 = h != null && h.count > 0 ? h.percentile(99) / 1e6 : 0
    h?.reset()
    return {
      cpuPercent: Math.round(((cpu.user + cpu.system) / wallUs) * 1000) / 10,
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      memUsedPercent: total > 0 ? Math.round((1 - freemem() / total) * 1000) / 10 : 0,
      eventLoopP99Ms: Math.round(p99 * 1000) / 1000
    }
  }
}
