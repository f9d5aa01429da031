import { LookupQueueFullError } from './errors.js'

export interface LimiterInit {
  /** lookups run at once, default 8 */
  concurrency?: number
  /** lookups waiting for a slot, default 64; more are refused with LookupQueueFullError */
  maxQueued?: number
  /** longest wait for a slot (ms), default 10 s; then LookupQueueFullError */
  maxWaitMs?: number
}

/**
 * Bounds the network lookups of one node: `concurrency` run at once, up to
 * `maxQueued` wait in order, the rest are refused at once (the HTTP API turns
 * that into 503 with Retry-After), so memory stays bounded whatever the load.
 */
export class LookupLimiter {
  readonly concurrency: number
  readonly maxQueued: number
  readonly maxWaitMs: number
  private running = 0
  private readonly queue: Array<{ resolve: () => void, reject: (err: Error) => void }> = []

  constructor (init: LimiterInit = {}) {
    this.concurrency = Math.max(1, init.concurrency ?? 8)
    this.maxQueued = Math.max(0, init.maxQueued ?? 64)
    this.maxWaitMs = Math.max(1, init.maxWaitMs ?? 10_000)
  }

  /** Lookups running and waiting */
  get load (): { running: number, queued: number } {
    return { running: this.running, queued: this.queue.length }
  }

  /**
   * Run `fn` when a slot is free. Throws LookupQueueFullError when the queue
   * is full or no slot freed within `maxWaitMs`, or the signal's reason when
   * aborted while waiting.
   */
  async run<T> (fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.queue.length >= this.maxQueued) {
        throw new LookupQueueFullError(`${this.running} lookups running and ${this.queue.length} waiting; try again shortly`)
      }
      signal?.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const leave = (err: Error): void => {
          clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
          const i = this.queue.indexOf(waiter)
          if (i >= 0) this.queue.splice(i, 1)
          reject(err)
        }
        const waiter = {
          resolve: () => { clearTimeout(timer); signal?.removeEventListener('abort', onAbort); resolve() },
          reject
        }
        const onAbort = (): void => { leave(signal?.reason ?? new Error('aborted')) }
        const timer = setTimeout(() => {
          leave(new LookupQueueFullError(`no lookup slot freed within ${this.maxWaitMs} ms; try again shortly`))
        }, this.maxWaitMs)
        signal?.addEventListener('abort', onAbort, { once: true })
        this.queue.push(waiter)
      })
    } else {
      this.running++
    }
    try {
      return await fn()
    } finally {
      const next = this.queue.shift()
      // the slot passes to the next waiter as is
      if (next != null) next.resolve()
      else this.running--
    }
  }
}
