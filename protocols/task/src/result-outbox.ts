import { inBatches } from './batches.js'
import * as C from './constants.js'
import { HeldResults } from './held-results.js'
import { Control, ResultBatch } from './pb/task.js'
import { sealRecord } from './signing.js'
import type { HeldResultsLimits } from './held-results.js'
import type { Result } from './pb/task.js'
import type { WireSpan } from './types.js'
import type { Logger, PeerId, PrivateKey } from '@libp2p/interface'

/** Sends control messages to a peer (the task protocol's channels) */
export interface ControlSender {
  send(peer: PeerId, message: Control): Promise<void>
}

export interface ResultOutboxInit {
  privateKey: PrivateKey
  /** signature domain of result batches */
  domain: string
  channels: ControlSender
  /** whether a peer has a connection open now */
  isConnected(peer: PeerId): boolean
  resultRetryMs: number
  limits: HeldResultsLimits
  log: Logger
}

/** A task's outcome as the worker reports it */
export type Outcome = ({ ok: true, output: Uint8Array } | { ok: false, code: string, error: string }) & { spans?: WireSpan[] }

/**
 * The worker's way out to submitters: start reports and results queued in
 * one turn of the event loop leave together per submitter, start reports
 * first, results signed as one `ResultBatch`. It holds each result it is
 * told to (`send(…, hold)`) until the submitter acknowledges it, sending it
 * again every `resultRetryMs` while the submitter is connected and at once
 * when it connects again, for at most `DEFAULT_RESULT_HOLD_MS`; within the
 * limits of `HeldResults`.
 */
export class ResultOutbox {
  private readonly init: ResultOutboxInit
  readonly held: HeldResults
  private outgoing = new Map<string, { submitter: PeerId, started: Control[], results: Result[] }>()
  private scheduled = false
  private started = false

  constructor (init: ResultOutboxInit) {
    this.init = init
    this.held = new HeldResults(init.limits)
  }

  start (): void {
    this.started = true
  }

  stop (): void {
    this.started = false
    this.held.clear()
    this.outgoing.clear()
  }

  /** Whether `submitter` may be given another task: what is held for it is within the limits */
  hasRoom (submitter: PeerId): boolean {
    return this.held.hasRoom(submitter.toString())
  }

  /** Whether a result for this task of this submitter waits for an acknowledgement */
  holds (submitter: PeerId, taskId: string): boolean {
    return this.held.has(`${submitter.toString()}/${taskId}`)
  }

  /** Forget a held result (`attempt`: only that attempt's) */
  forget (submitter: PeerId, taskId: string, attempt?: number): void {
    const key = `${submitter.toString()}/${taskId}`
    const held = this.held.get(key)
    if (held != null && (attempt == null || held.result.attempt === attempt)) {
      this.held.delete(key)
    }
  }

  /** A start report: it goes out with the results of this turn */
  queueStart (submitter: PeerId, message: Control): void {
    this.queue(submitter, { started: message })
  }

  /** Sends a result; `hold`: keep it and send it again until it is acknowledged */
  send (submitter: PeerId, taskId: string, attempt: number, outcome: Outcome, hold = true): void {
    const result: Result = {
      taskId,
      attempt,
      submitter: submitter.toMultihash().bytes,
      ok: outcome.ok,
      output: outcome.ok ? outcome.output : undefined,
      code: outcome.ok ? undefined : outcome.code,
      error: outcome.ok ? undefined : outcome.error,
      spans: outcome.spans ?? []
    }
    if (hold) {
      const now = Date.now()
      this.held.set(`${submitter.toString()}/${taskId}`, { submitter, result, since: now, lastSent: now })
    }
    this.queue(submitter, { result })
  }

  /** Sends again what is due, to connected submitters; forgets what was held too long */
  sweep (now: number): void {
    const connected = new Map<string, boolean>()
    const isConnected = (peer: PeerId): boolean => {
      const key = peer.toString()
      let up = connected.get(key)
      if (up == null) {
        up = this.init.isConnected(peer)
        connected.set(key, up)
      }
      return up
    }
    for (const [key, held] of this.held.entries()) {
      if (now - held.since > C.DEFAULT_RESULT_HOLD_MS) {
        this.held.delete(key)
      } else if (now - held.lastSent >= this.init.resultRetryMs && isConnected(held.submitter)) {
        // sent again while the submitter is connected; one that went away gets its results when it is back (onPeerConnect)
        held.lastSent = now
        this.queue(held.submitter, { result: held.result })
      }
    }
  }

  /** A peer connected: the results held for it go out again */
  onPeerConnect (peer: PeerId): void {
    const now = Date.now()
    for (const held of this.held.values()) {
      if (held.submitter.equals(peer)) {
        held.lastSent = now
        this.queue(held.submitter, { result: held.result })
      }
    }
  }

  /**
   * Start reports and results for one submitter queued in the same tick go
   * out together, start reports first, the results signed as one batch
   */
  private queue (submitter: PeerId, item: { started?: Control, result?: Result }): void {
    const key = submitter.toString()
    let queue = this.outgoing.get(key)
    if (queue == null) {
      queue = { submitter, started: [], results: [] }
      this.outgoing.set(key, queue)
    }
    if (item.started != null) {
      queue.started.push(item.started)
    }
    if (item.result != null) {
      queue.results.push(item.result)
    }
    if (!this.scheduled) {
      this.scheduled = true
      // a tick callback queued from a promise job runs once the job queue is empty: by then
      // every task of this turn that finishes without waiting on I/O has finished, and the
      // batch still goes out in this turn of the event loop (queued from a promise job
      // even when called from an event handler, where a tick callback would run first)
      queueMicrotask(() => { process.nextTick(() => { this.flush() }) })
    }
  }

  private flush (): void {
    this.scheduled = false
    const queues = this.outgoing
    this.outgoing = new Map()
    for (const { submitter, started, results } of queues.values()) {
      for (const message of started) {
        this.init.channels.send(submitter, message).catch(() => {})
      }
      for (const batch of inBatches(results, result => (result.output?.byteLength ?? 0) + (result.error?.length ?? 0) + 128, C.RESULT_BATCH_BYTES, C.RESULT_BATCH_COUNT)) {
        this.sendBatch(submitter, batch)
      }
    }
  }

  private sendBatch (submitter: PeerId, results: Result[]): void {
    sealRecord(this.init.privateKey, this.init.domain, ResultBatch.encode({ results }))
      .then(async record => {
        if (!this.started) {
          return
        }
        await this.init.channels.send(submitter, { type: Control.Type.RESULT, taskId: results[0].taskId, attempt: results[0].attempt, leaseMs: 0, free: 0, record })
      })
      .catch(err => { this.init.log('%d results for %p not delivered yet - %e', results.length, submitter, err) })
  }
}
