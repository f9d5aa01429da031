import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import * as C from './constants.js'
import { OutputTooLargeError, PayloadTooLargeError, TaskTimeoutError } from './errors.js'
import { ANNOUNCE_DECODE_LIMITS, attemptTimeout, bodyWithinLimits, wireLease, wireTraceparent } from './limits.js'
import { Announce, Control } from './pb/task.js'
import { ReplayWindow } from './replay-window.js'
import { ResultOutbox } from './result-outbox.js'
import { openRecord } from './signing.js'
import { bodyKey, decodeJson, encodeJson, specOf } from './spec.js'
import type { DropReason } from './counters.js'
import type { TaskBody } from './pb/task.js'
import type { ControlSender, Outcome } from './result-outbox.js'
import type { TaskExecutor, TaskTracer } from './types.js'
import type { Logger, PeerId, PrivateKey } from '@libp2p/interface'

export interface WorkerOptions {
  defaultLeaseMs: number
  taskTimeoutMs: number
  maxPayloadBytes: number
  maxOutputBytes: number
  offerTimeoutMs: number
  resultRetryMs: number
  maxRecordAgeMs: number
  maxHeldResults: number
  maxHeldBytes: number
}

export interface WorkerInit {
  self: PeerId
  privateKey: PrivateKey
  /** runs the tasks; without one the worker refuses every assignment and offers nothing */
  executor?: TaskExecutor
  /** continues the submitter's trace of a task that carries a traceparent */
  tracer?: Pick<TaskTracer, 'continue'>
  channels: ControlSender
  /** whether a peer has a connection open now */
  isConnected(peer: PeerId): boolean
  /** signature domains of announcements and results */
  domains: { task: string, result: string }
  options: WorkerOptions
  log: Logger
  drop(reason: DropReason): void
}

/** "this submitter has work of this kind": a worker pulls from it while it has free slots */
interface BacklogEntry {
  submitter: PeerId
  /** the newest announced task of the kind, named in offers */
  taskId: string
  at: number
  deadline: number
}

interface Reservation {
  slots: number
  timer: ReturnType<typeof setTimeout>
  backlogKey: string
  sentAt: number
}

interface RunningTask {
  submitter: PeerId
  taskId: string
  attempt: number
  controller: AbortController
  canceled: boolean
}

/**
 * The worker: hears of work (signed announcements), offers its free slots to
 * the submitters that have work it can do, runs what it is assigned under a
 * lease (heartbeats every third of it, progress, the attempt's timeout, the
 * output limit) and hands the outcome to its `ResultOutbox`, which delivers
 * it until acknowledged. Everything it knows is per submitter; it keeps no
 * state that matters (a worker that dies loses its leases).
 */
export class Worker {
  private readonly init: WorkerInit
  private readonly opts: WorkerOptions
  private readonly ownId: Uint8Array
  private readonly replays: ReplayWindow
  readonly outbox: ResultOutbox
  private readonly backlog = new Map<string, BacklogEntry>()
  private readonly reservations = new Map<string, Reservation>()
  private reserved = 0
  private pumpScheduled = false
  private readonly running = new Map<string, RunningTask>()
  private readonly fetches = new Map<string, PromiseWithResolvers<Uint8Array>>()
  private started = false
  /** tasks run */
  executed = 0
  /** offers sent */
  offersSent = 0

  constructor (init: WorkerInit) {
    this.init = init
    this.opts = init.options
    this.ownId = init.self.toMultihash().bytes
    this.replays = new ReplayWindow(this.opts.maxRecordAgeMs)
    this.outbox = new ResultOutbox({
      privateKey: init.privateKey,
      domain: init.domains.result,
      channels: init.channels,
      isConnected: init.isConnected,
      resultRetryMs: this.opts.resultRetryMs,
      limits: {
        perSubmitter: this.opts.maxHeldResults,
        bytesPerSubmitter: this.opts.maxHeldBytes,
        total: Math.max(C.MAX_HELD_RESULTS_TOTAL, this.opts.maxHeldResults),
        bytesTotal: Math.max(C.MAX_HELD_BYTES_TOTAL, this.opts.maxHeldBytes)
      },
      log: init.log
    })
  }

  /** tasks running now */
  get runningCount (): number {
    return this.running.size
  }

  start (): void {
    this.started = true
    this.outbox.start()
  }

  /** Aborts what runs, gives back reservations and forgets what it holds */
  stop (): void {
    this.started = false
    for (const run of this.running.values()) {
      run.canceled = true
      run.controller.abort(new Error('worker stopped'))
    }
    this.running.clear()
    for (const r of this.reservations.values()) {
      clearTimeout(r.timer)
    }
    this.reservations.clear()
    this.reserved = 0
    for (const f of this.fetches.values()) {
      f.reject(new Error('worker stopped'))
    }
    this.fetches.clear()
    this.backlog.clear()
    this.outbox.stop()
  }

  private free (): number {
    return this.init.executor == null ? 0 : this.init.executor.capacity() - this.reserved
  }

  private canRun (body: TaskBody): boolean {
    return this.init.executor?.canRun(specOf(body)) === true
  }

  private send (peer: PeerId, message: Control): Promise<void> {
    return this.init.channels.send(peer, message)
  }

  /** A signed batch of announcements, from gossip (`publisher`) or straight from its submitter (`via`) */
  async onAnnounceRecord (bytes: Uint8Array, via: PeerId | undefined, publisher?: PeerId): Promise<void> {
    if (bytes.byteLength > C.MAX_ANNOUNCE_BYTES) {
      this.init.drop('oversize')
      return
    }
    let submitter: PeerId
    let announce: Announce
    try {
      const opened = await openRecord(bytes, this.init.domains.task)
      submitter = opened.signer
      announce = Announce.decode(opened.payload, { limits: ANNOUNCE_DECODE_LIMITS })
    } catch (err: any) {
      this.init.drop(err?.name === 'InvalidSignatureError' ? 'badSignature' : 'malformed')
      return
    }
    if ((via != null && !via.equals(submitter)) || (publisher != null && !publisher.equals(submitter))) {
      this.init.drop('badSignature')
      return
    }
    if (submitter.equals(this.init.self)) {
      return
    }
    const issuedAt = Number(announce.issuedAt)
    if (!this.replays.fresh(issuedAt)) {
      this.init.drop('replayed')
      return
    }
    let fresh = 0
    for (const item of announce.tasks) {
      if (item.task == null || item.task.id.length === 0) {
        this.init.drop('malformed')
        continue
      }
      if (!bodyWithinLimits(item.task, C.INLINE_PAYLOAD_BYTES)) {
        this.init.drop('oversize')
        continue
      }
      if (this.replays.seenBefore(`a/${submitter.toString()}/${item.task.id}/${item.round}`, issuedAt)) {
        continue
      }
      fresh++
      this.considerAnnounce(submitter, item.task)
    }
    if (fresh === 0 && announce.tasks.length > 0) {
      this.init.drop('replayed')
    }
  }

  /** A task `submitter` has (announced, or this node's own): remember that work of its kind waits, and offer */
  considerAnnounce (submitter: PeerId, body: TaskBody | undefined): void {
    if (body == null || !this.started) {
      return
    }
    if (body.to != null && !uint8ArrayEquals(body.to, this.ownId)) {
      return
    }
    const deadline = Number(body.deadline)
    if (deadline > 0 && deadline < Date.now()) {
      return
    }
    if (!this.canRun(body)) {
      return
    }
    const key = `${submitter.toString()}/${body.id}`
    if (this.running.has(key) || this.outbox.holds(submitter, body.id) || this.reservations.has(key)) {
      return
    }
    const backlogKey = `${submitter.toString()}/${bodyKey(body)}`
    this.backlog.delete(backlogKey)
    this.backlog.set(backlogKey, { submitter, taskId: body.id, at: Date.now(), deadline })
    if (this.backlog.size > C.MAX_BACKLOG) {
      const oldest = this.backlog.keys().next().value
      if (oldest != null) {
        this.backlog.delete(oldest)
      }
    }
    if (this.free() > 0) {
      this.pump()
    }
  }

  private schedulePump (): void {
    if (!this.pumpScheduled) {
      this.pumpScheduled = true
      setImmediate(() => {
        this.pumpScheduled = false
        this.pump()
      })
    }
  }

  /** Offer our free slots for the kinds of work we know are waiting, newest first */
  private pump (): void {
    if (!this.started) {
      return
    }
    const now = Date.now()
    const entries = [...this.backlog].reverse()
    for (const [backlogKey, entry] of entries) {
      const free = this.free()
      if (free <= 0) {
        return
      }
      if ((entry.deadline > 0 && entry.deadline < now) || now - entry.at > this.opts.maxRecordAgeMs) {
        this.backlog.delete(backlogKey)
        continue
      }
      const key = `${entry.submitter.toString()}/${entry.taskId}`
      if (this.reservations.has(key)) {
        continue
      }
      this.offer(entry.submitter, entry.taskId, backlogKey, free)
    }
  }

  private offer (submitter: PeerId, taskId: string, backlogKey: string, slots: number): void {
    const key = `${submitter.toString()}/${taskId}`
    this.reservations.set(key, {
      slots,
      backlogKey,
      sentAt: Date.now(),
      timer: setTimeout(() => {
        this.release(key)
        this.pump()
      }, this.opts.offerTimeoutMs)
    })
    this.reserved += slots
    this.offersSent++
    this.send(submitter, { type: Control.Type.OFFER, taskId, attempt: 0, leaseMs: this.opts.offerTimeoutMs, free: slots })
      .catch(err => {
        this.init.log('offer for %s to %p failed - %e', taskId, submitter, err)
        this.release(key)
        this.backlog.delete(backlogKey)
      })
  }

  /** Give back what is left of a reservation */
  private release (key: string): Reservation | undefined {
    const r = this.reservations.get(key)
    if (r == null) {
      return undefined
    }
    clearTimeout(r.timer)
    this.reservations.delete(key)
    this.reserved -= r.slots
    return r
  }

  /** One slot of a reservation turns into a running task */
  private consume (key: string): boolean {
    const r = this.reservations.get(key)
    if (r == null) {
      return false
    }
    r.slots--
    this.reserved--
    if (r.slots <= 0) {
      clearTimeout(r.timer)
      this.reservations.delete(key)
    }
    return true
  }

  /** The submitter has nothing (more) for an offer */
  onDecline (submitter: PeerId, msg: Control): void {
    const r = this.release(`${submitter.toString()}/${msg.ref ?? msg.taskId}`)
    if (r == null) {
      return
    }
    // nothing more of that kind is waiting, unless it was announced after we offered
    const entry = this.backlog.get(r.backlogKey)
    if (entry != null && entry.at <= r.sentAt) {
      this.backlog.delete(r.backlogKey)
    }
    this.schedulePump()
  }

  /** A task to run under a lease */
  onAssign (submitter: PeerId, msg: Control): void {
    const body = msg.task
    if (body == null || body.id !== msg.taskId || msg.attempt < 1) {
      this.init.drop('malformed')
      return
    }
    const sub = submitter.toString()
    const key = `${sub}/${msg.taskId}`
    const reserved = this.consume(`${sub}/${msg.ref ?? msg.taskId}`)
    // work of this kind keeps coming: keep offering for it
    const entry = this.backlog.get(`${sub}/${bodyKey(body)}`)
    if (entry != null) {
      entry.at = Date.now()
    }
    const existing = this.running.get(key)
    if (existing != null) {
      if (existing.attempt === msg.attempt) {
        this.init.drop('duplicate')
        return
      }
      existing.canceled = true
      existing.controller.abort(new Error('superseded by a new attempt'))
      this.running.delete(key)
    }
    this.outbox.forget(submitter, msg.taskId)
    // a refusal is sent once and not held: an assignment nobody asked for costs the worker no memory or
    // work later on (if the refusal is lost, the submitter's lease expires)
    const refuse = (error: string): void => { this.outbox.send(submitter, msg.taskId, msg.attempt, { ok: false, code: 'rejected', error }, false) }
    if (!this.canRun(body)) {
      refuse('this worker cannot run the task')
      return
    }
    if (!reserved && this.free() <= 0) {
      refuse('no free capacity')
      return
    }
    if (!this.outbox.hasRoom(submitter)) {
      refuse('too many unacknowledged results')
      return
    }
    const run: RunningTask = { submitter, taskId: msg.taskId, attempt: msg.attempt, controller: new AbortController(), canceled: false }
    this.running.set(key, run)
    this.execute(run, body, wireLease(msg.leaseMs, this.opts.defaultLeaseMs))
      .catch(err => { this.init.log.error('task %s failed unexpectedly - %e', msg.taskId, err) })
      .finally(() => {
        if (this.running.get(key) === run) {
          this.running.delete(key)
        }
        this.schedulePump()
      })
  }

  private async fetchPayload (run: RunningTask): Promise<Uint8Array> {
    const key = `${run.submitter.toString()}/${run.taskId}`
    const pending = Promise.withResolvers<Uint8Array>()
    this.fetches.set(key, pending)
    const timer = setTimeout(() => { pending.reject(new Error('fetching the input timed out')) }, 30_000)
    try {
      await this.send(run.submitter, { type: Control.Type.FETCH, taskId: run.taskId, attempt: run.attempt, leaseMs: 0, free: 0 })
      return await pending.promise
    } finally {
      clearTimeout(timer)
      if (this.fetches.get(key) === pending) {
        this.fetches.delete(key)
      }
    }
  }

  /** The input of a task, fetched because it was too large to travel inline */
  onPayload (submitter: PeerId, msg: Control): void {
    const pending = this.fetches.get(`${submitter.toString()}/${msg.taskId}`)
    if (pending == null) {
      this.init.drop('unknownTask')
      return
    }
    if (msg.payload == null) {
      pending.reject(new Error(msg.reason ?? 'the submitter refused to send the input'))
      return
    }
    if (msg.payload.byteLength > this.opts.maxPayloadBytes) {
      this.init.drop('oversize')
      pending.reject(new PayloadTooLargeError('input exceeds the limit'))
      return
    }
    pending.resolve(msg.payload)
  }

  private async execute (run: RunningTask, body: TaskBody, leaseMs: number): Promise<void> {
    const executor = this.init.executor
    if (executor == null) {
      return
    }
    const { submitter, taskId, attempt, controller } = run
    const progressMsg = (progress?: number, message?: string): Control => ({
      type: Control.Type.PROGRESS, taskId, attempt, leaseMs: 0, free: 0, progress, message
    })
    const beat = (): void => {
      if (!run.canceled) {
        this.send(submitter, progressMsg()).catch(() => {})
      }
    }
    // the start report goes out with the results of this tick: a quick task's PROGRESS and RESULT share one write
    this.outbox.queueStart(submitter, progressMsg())
    // renewed every third of the lease: two renewals in a row may be late or lost before it runs out
    const heartbeat = setInterval(beat, Math.floor(leaseMs / 3))
    let lastProgress = 0
    const onProgress = (p: { progress?: number, message?: string }): void => {
      const now = Date.now()
      if (run.canceled || now - lastProgress < 100) {
        return
      }
      lastProgress = now
      this.send(submitter, progressMsg(typeof p?.progress === 'number' ? p.progress : undefined, typeof p?.message === 'string' ? p.message.slice(0, 1024) : undefined)).catch(() => {})
    }
    // clamped: a timeout or deadline from the wire never overflows the timer
    const timeoutMs = attemptTimeout(body.timeoutMs, body.deadline, this.opts.taskTimeoutMs)
    const traceparent = wireTraceparent(body.traceparent)
    const span = traceparent == null
      ? undefined
      : this.init.tracer?.continue(traceparent, 'task.run', {
        'aistack.task': taskId,
        'aistack.attempt': attempt,
        'aistack.capability': (body.capability ?? '').slice(0, 64),
        'aistack.submitter': submitter.toString()
      })
    let timer: ReturnType<typeof setTimeout> | undefined
    let outcome: Outcome
    try {
      const payload = body.payload ?? await this.fetchPayload(run)
      const input = decodeJson(payload)
      this.executed++
      // one promise for the handler, its timeout and cancellation: the timer aborts the run
      const value = await new Promise<unknown>((resolve, reject) => {
        controller.signal.addEventListener('abort', () => { reject(controller.signal.reason) }, { once: true })
        timer = setTimeout(() => {
          controller.abort(new TaskTimeoutError(`the handler ran past its timeout of ${timeoutMs} ms`))
        }, timeoutMs)
        executor.run(specOf(body), input, { signal: controller.signal, onProgress, taskId, submitter, attempt, inputBytes: payload.byteLength })
          .then(resolve, reject)
      })
      const output = encodeJson(value)
      if (output.byteLength > this.opts.maxOutputBytes) {
        throw new OutputTooLargeError(`output of ${output.byteLength} bytes exceeds the limit of ${this.opts.maxOutputBytes}`)
      }
      outcome = { ok: true, output }
    } catch (err: any) {
      const code = err?.name === 'TaskTimeoutError' ? 'timeout' : err?.name === 'OutputTooLargeError' ? 'output-too-large' : 'handler-error'
      outcome = { ok: false, code, error: String(err?.message ?? err).slice(0, 1024) }
    } finally {
      clearTimeout(timer)
      clearInterval(heartbeat)
    }
    if (span != null) {
      span.setAttributes({ 'aistack.outcome': outcome.ok ? 'ok' : outcome.code })
      span.end(outcome.ok ? undefined : `${outcome.code}: ${outcome.error}`)
      outcome.spans = span.wireSpans()
    }
    if (run.canceled || this.running.get(`${submitter.toString()}/${taskId}`) !== run) {
      return
    }
    this.outbox.send(submitter, taskId, attempt, outcome)
  }

  /** The submitter has the result of an attempt: it is no longer held */
  onAck (submitter: PeerId, msg: Control): void {
    this.outbox.forget(submitter, msg.taskId, msg.attempt)
  }

  /** Stop running a task (`attempt` 0: whatever attempt runs) */
  onCancel (submitter: PeerId, msg: Control): void {
    const key = `${submitter.toString()}/${msg.taskId}`
    const run = this.running.get(key)
    if (run != null && (msg.attempt === 0 || run.attempt === msg.attempt)) {
      run.canceled = true
      run.controller.abort(new Error(msg.reason ?? 'canceled'))
      this.running.delete(key)
    }
    this.outbox.forget(submitter, msg.taskId, msg.attempt)
  }

  /** Periodic work: results due again, and offers for free slots */
  sweep (now: number): void {
    this.outbox.sweep(now)
    this.schedulePump()
  }

  onPeerConnect (peer: PeerId): void {
    this.outbox.onPeerConnect(peer)
  }
}
