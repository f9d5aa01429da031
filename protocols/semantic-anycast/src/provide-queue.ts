import type { CID } from 'multiformats/cid'
import type { Logger } from '@libp2p/interface'

/** The parts of a Kad-DHT the provide queue uses */
export interface ProvideDht {
  provide(key: CID, options?: { signal?: AbortSignal }): AsyncIterable<any>
}

/** The parts of libp2p content routing used when there is no `dht` service */
export interface ProvideRouting {
  provide(key: CID, options?: { signal?: AbortSignal }): Promise<void>
}

/** Progress of providing this node's bucket keys in the DHT */
export interface PublishStats {
  /** distinct bucket keys provided successfully since start */
  provided: number
  /** provide attempts that failed (each is retried with back-off) */
  failed: number
  /** keys waiting or being provided */
  pending: number
  /** keys waiting for a retry (after a failure, or for addresses and peers) */
  retrying: number
  /** DHT messages sent for providing */
  messages: number
}

export interface ProvideQueueInit {
  /** whether the node can provide: it has addresses to put in provider records and a peer to send them to */
  ready: () => boolean
  /** whether a key is still wanted (a key released meanwhile is not provided) */
  wanted: (id: string) => boolean
  log: Logger
  /** keys provided at once, default 4 */
  concurrency?: number
  /** time limit of one provide, default 30 s */
  timeoutMs?: number
  /** first retry delay after a failure, doubled per failure up to `maxRetryMs`; default 1 s */
  retryMs?: number
  /** default 60 s */
  maxRetryMs?: number
}

/**
 * Provides bucket keys in the DHT in the background, each distinct key once,
 * a few at a time. A provider record goes out only once the node has
 * addresses (kad-dht sends the address manager's addresses in it; one without
 * any is dropped by the receivers) and a peer; until then the key is retried
 * every `retryMs`. A failed provide is retried with exponential back-off
 * while the key is wanted.
 */
export class ProvideQueue {
  private readonly init: ProvideQueueInit
  private dht?: ProvideDht
  private contentRouting?: ProvideRouting
  private readonly queue = new Map<string, CID>()
  private readonly retries = new Map<string, { timer: ReturnType<typeof setTimeout>, attempts: number }>()
  private readonly attempts = new Map<string, number>()
  private workers = 0
  private idleWaiters: Array<() => void> = []
  private readonly stats: PublishStats = { provided: 0, failed: 0, pending: 0, retrying: 0, messages: 0 }
  private shutdown = new AbortController()
  private running = false

  constructor (init: ProvideQueueInit) {
    this.init = init
  }

  /** Start with the DHT (or, without one, the content routing) to provide through */
  start (dht?: ProvideDht, contentRouting?: ProvideRouting): void {
    this.dht = dht
    this.contentRouting = contentRouting
    this.shutdown = new AbortController()
    this.running = true
  }

  stop (): void {
    this.running = false
    this.shutdown.abort()
    this.queue.clear()
    for (const r of this.retries.values()) clearTimeout(r.timer)
    this.retries.clear()
    this.wake()
  }

  /** Counters */
  publishing (): PublishStats {
    return { ...this.stats, pending: this.queue.size + this.workers, retrying: this.retries.size }
  }

  /** True when nothing is queued or in flight (retries waiting on a timer do not count) */
  get idle (): boolean {
    return this.queue.size === 0 && this.workers === 0
  }

  /** Resolves once nothing is queued or in flight, or the queue stopped */
  async whenIdle (): Promise<void> {
    if (this.idle || !this.running) return
    await new Promise<void>(resolve => { this.idleWaiters.push(resolve) })
  }

  enqueue (keys: CID[]): void {
    if (this.dht == null && this.contentRouting == null) return
    for (const k of keys) {
      const id = k.toString()
      const retry = this.retries.get(id)
      if (retry != null) {
        clearTimeout(retry.timer)
        this.retries.delete(id)
      }
      this.queue.set(id, k)
    }
    const limit = Math.max(1, this.init.concurrency ?? 4)
    while (this.running && this.workers < limit && this.queue.size > 0) {
      this.workers++
      this.worker().catch(() => {}).finally(() => {
        this.workers--
        this.wake()
      })
    }
  }

  private wake (): void {
    if (this.running && !this.idle) return
    const waiters = this.idleWaiters
    this.idleWaiters = []
    waiters.forEach(w => { w() })
  }

  /** Retry later: after a failure with exponential back-off, when not ready after `retryMs` */
  private retryLater (id: string, key: CID, failed = true): void {
    if (!this.running || !this.init.wanted(id)) return
    const attempts = (this.attempts.get(id) ?? 0) + (failed ? 1 : 0)
    this.attempts.set(id, attempts)
    const delay = Math.min(this.init.maxRetryMs ?? 60_000, (this.init.retryMs ?? 1000) * 2 ** Math.max(0, Math.min(16, attempts - 1)))
    const timer = setTimeout(() => {
      this.retries.delete(id)
      if (this.init.wanted(id)) this.enqueue([key])
    }, delay)
    timer.unref?.()
    this.retries.set(id, { timer, attempts })
  }

  private async worker (): Promise<void> {
    while (this.running && this.queue.size > 0) {
      const [id, key] = this.queue.entries().next().value as [string, CID]
      this.queue.delete(id)
      if (!this.init.wanted(id)) continue
      if (!this.init.ready()) {
        this.init.log('provide %s waits: the node has no addresses or no peers yet', key)
        this.retryLater(id, key, false)
        continue
      }
      const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(this.init.timeoutMs ?? 30_000)])
      try {
        if (this.dht != null) {
          let stored = 0
          for await (const ev of this.dht.provide(key, { signal })) {
            if (ev?.name === 'SEND_QUERY') this.stats.messages++
            if (ev?.name === 'PEER_RESPONSE' && String(ev.messageName) === 'ADD_PROVIDER') stored++
          }
          if (stored === 0) throw new Error('no peer stored the provider record')
        } else if (this.contentRouting != null) {
          await this.contentRouting.provide(key, { signal })
        }
        this.stats.provided++
        this.attempts.delete(id)
      } catch (err) {
        this.stats.failed++
        this.init.log('provide %s failed, retried with back-off - %e', key, err)
        this.retryLater(id, key)
      }
    }
  }
}
