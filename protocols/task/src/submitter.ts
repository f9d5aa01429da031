import { randomUUID } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import * as C from './constants.js'
import { TaskNotFoundError } from './errors.js'
import { Dispatcher } from './dispatcher.js'
import { Control } from './pb/task.js'
import { wireTraceparent } from './limits.js'
import { taskInfo, validateRequest } from './requests.js'
import { ResultIntake } from './result-intake.js'
import { Retention, settleMap } from './retention.js'
import { RoundTrips } from './round-trips.js'
import { pushHistory, taskBody, taskEvent } from './spec.js'
import { assertTransition, backoffDelay, isLeased, isPending, isTerminal } from './state.js'
import type { DropReason } from './counters.js'
import type { DispatchTarget } from './dispatcher.js'
import type { LocalEvent } from './event-bus.js'
import type { Journal, TaskRecord } from './journal.js'
import type { TaskBody } from './pb/task.js'
import type { ResolveQuery } from './requests.js'
import type { ResultTarget } from './result-intake.js'
import type { SubmitRequest, TaskInfo, TaskState, TaskStats, TaskTracer } from './types.js'
import type { Logger, PeerId, PrivateKey } from '@libp2p/interface'

export interface SubmitterOptions {
  defaultLeaseMs: number
  defaultMaxAttempts: number
  backoffMs: number
  maxBackoffMs: number
  maxPayloadBytes: number
  maxOutputBytes: number
  reannounceMs: number
  retryElsewhereMs: number
  offerTimeoutMs: number
  retainMs: number
  maxRetained: number
}

export interface SubmitterInit {
  self: PeerId
  /** takes the spans workers return for traced tasks */
  tracer?: Pick<TaskTracer, 'adopt'>
  privateKey: PrivateKey
  domains: { task: string, result: string }
  journal: Journal
  channels: {
    send(peer: PeerId, message: Control): Promise<void>
    sendLazy(peer: PeerId, message: Control, delayMs: number): void
  }
  /** publish on the tasks topic */
  publish(data: Uint8Array): Promise<unknown>
  /** whether this node runs tasks too: its own worker then hears of each announced task */
  localWorker: boolean
  considerLocally(body: TaskBody | undefined): void
  /** a control message that needs no answer (failures are logged) */
  reply(peer: PeerId, msg: Partial<Control> & { type: Control.Type, taskId: string }): void
  /** a lifecycle event of one of this node's tasks */
  emit(event: LocalEvent): void
  resolveQuery?: ResolveQuery
  isStarted(): boolean
  options: SubmitterOptions
  log: Logger
  drop(reason: DropReason, n?: number): void
}

/** What the submitter counts */
export type SubmitterStats = Pick<TaskStats, 'submitted' | 'completed' | 'failedAttempts' | 'dead' | 'canceled' | 'announced'>

/**
 * The submitter: owns this node's tasks, in memory and in the journal. It
 * takes submissions (journaled before anything else), drives each task
 * through its states (assigned under a lease that heartbeats extend and
 * that expires a grace after its time, failed with backoff, dead after
 * `maxAttempts`, completed exactly once, canceled), settles map tasks from
 * their children, resumes from the journal after a restart and forgets
 * finished tasks after `retainMs`. Scheduling (queues, announcements,
 * offers) is its `Dispatcher`'s, results are taken by its `ResultIntake`.
 */
export class Submitter implements DispatchTarget, ResultTarget {
  private readonly init: SubmitterInit
  readonly dispatcher: Dispatcher
  readonly intake: ResultIntake
  private readonly records = new Map<string, TaskRecord>()
  private readonly retention: Retention
  private readonly active = new Set<string>()
  /** completed tasks whose completion is being journaled (their event is not out yet) */
  private readonly settling = new Set<string>()
  /** when the current attempt's ASSIGN went out, until the worker's first report: a round trip */
  private readonly assignSent = new Map<string, number>()
  readonly roundTrips = new RoundTrips()
  private readonly counts = { submitted: 0, completed: 0, failedAttempts: 0, dead: 0, canceled: 0 }

  constructor (init: SubmitterInit) {
    this.init = init
    this.retention = new Retention(init.options.retainMs, init.options.maxRetained)
    this.dispatcher = new Dispatcher({
      self: init.self,
      privateKey: init.privateKey,
      domain: init.domains.task,
      channels: init.channels,
      publish: init.publish,
      localWorker: init.localWorker,
      considerLocally: init.considerLocally,
      reply: init.reply,
      isStarted: init.isStarted,
      options: init.options,
      log: init.log,
      drop: init.drop
    }, this)
    this.intake = new ResultIntake({
      ownId: init.self.toMultihash().bytes,
      domain: init.domains.result,
      journal: init.journal,
      channels: init.channels,
      maxOutputBytes: init.options.maxOutputBytes,
      tracer: init.tracer,
      isStarted: init.isStarted,
      log: init.log,
      drop: init.drop
    }, this)
  }

  stats (): SubmitterStats {
    return { ...this.counts, announced: this.dispatcher.announced }
  }

  /** Forgets everything in memory (the journal keeps it) */
  stop (): void {
    this.dispatcher.stop()
    this.retention.clear()
    this.records.clear()
    this.active.clear()
    this.settling.clear()
    this.assignSent.clear()
  }

  record (id: string): TaskRecord | undefined {
    return this.records.get(id)
  }

  /** A peer has no connection left: its open offers go, and the attempts it holds fail */
  workerLost (peer: PeerId): void {
    this.dispatcher.workerLost(peer)
    const key = peer.toString()
    for (const id of [...this.active]) {
      const record = this.records.get(id)
      if (record != null && isLeased(record.state) && record.worker === key) {
        this.failAttempt(record, 'worker lost (disconnected)')
      }
    }
  }

  async completeResult (record: TaskRecord, output: unknown, worker: PeerId, unstage: number | undefined, ack: () => void): Promise<void> {
    this.complete(record, output)
    this.dispatcher.preferWorker(worker)
    if (unstage != null) {
      // the staged result makes the completion durable; the record follows, and the staged copy goes with it
      this.save(record, { unstage })
    } else {
      this.settling.add(record.id)
      try {
        await this.init.journal.save(record)
      } catch (err: any) {
        this.init.log.error('journal write failed for %s - %e', record.id, err)
      } finally {
        this.settling.delete(record.id)
      }
    }
    ack()
    this.init.emit(taskEvent(record, 'task.completed', { result: output }))
    this.onChildEnded(record)
  }

  async completeStaged (record: TaskRecord, output: unknown, worker: string, attempt: number): Promise<void> {
    record.worker = worker
    record.attempts = Math.max(record.attempts, attempt)
    this.complete(record, output)
    await this.init.journal.saveInBackground(record, { unstage: attempt })
  }

  private count (what: 'submitted' | 'completed' | 'failedAttempts' | 'dead' | 'canceled'): void {
    this.counts[what]++
  }

  /** A task (or a map task) journaled, announced; see `TaskService.submit` */
  async submit (req: SubmitRequest): Promise<{ id: string, state: TaskState }> {
    const spec = await validateRequest(req, { maxPayloadBytes: this.init.options.maxPayloadBytes, resolveQuery: this.init.resolveQuery })
    const now = Date.now()
    const maxAttempts = req.maxAttempts ?? this.init.options.defaultMaxAttempts
    const leaseMs = req.leaseMs ?? this.init.options.defaultLeaseMs
    const base = {
      capability: spec.capability,
      query: spec.query,
      requirements: req.requirements,
      to: spec.to,
      maxAttempts,
      leaseMs,
      timeoutMs: req.timeoutMs ?? 0,
      deadline: req.deadlineMs != null ? now + req.deadlineMs : 0,
      createdAt: now,
      updatedAt: now,
      attempts: 0,
      round: 0,
      traceparent: wireTraceparent(req.traceparent),
      state: 'submitted' as TaskState
    }
    const id = randomUUID()
    if (req.inputs == null) {
      const record: TaskRecord = { ...base, id, payload: spec.payloads[0], history: [{ at: now, state: 'submitted', attempt: 0 }] }
      this.records.set(id, record)
      await this.init.journal.save(record)
      this.count('submitted')
      this.activate(record)
      this.init.emit(taskEvent(record, 'task.created'))
      this.dispatcher.announce(record)
      return { id, state: record.state }
    }
    const parent: TaskRecord = { ...base, id, children: spec.payloads.length, history: [{ at: now, state: 'submitted', attempt: 0 }] }
    const children = spec.payloads.map((payload, index): TaskRecord => ({
      ...base, id: `${id}.${index}`, parent: id, index, payload, history: [{ at: now, state: 'submitted', attempt: 0 }]
    }))
    this.records.set(id, parent)
    for (const child of children) {
      this.records.set(child.id, child)
    }
    await Promise.all([parent, ...children].map(async r => { await this.init.journal.save(r) }))
    this.count('submitted')
    this.active.add(id)
    this.init.emit(taskEvent(parent, 'task.created'))
    if (children.length === 0) {
      this.finishParent(parent)
    }
    for (const child of children) {
      this.activate(child)
      this.dispatcher.announce(child)
    }
    return { id, state: parent.state }
  }

  /** Throws `TaskNotFoundError` */
  get (id: string): TaskInfo {
    const record = this.records.get(id)
    if (record == null) {
      throw new TaskNotFoundError(`no task ${id}`)
    }
    return taskInfo(record)
  }

  list (options: { state?: TaskState, parent?: string, limit?: number } = {}): TaskInfo[] {
    const out: TaskInfo[] = []
    for (const record of this.records.values()) {
      if (options.state != null && record.state !== options.state) {
        continue
      }
      if (options.parent !== undefined && record.parent !== options.parent) {
        continue
      }
      out.push(taskInfo(record))
    }
    out.sort((a, b) => a.createdAt - b.createdAt || (a.index ?? 0) - (b.index ?? 0))
    return options.limit != null ? out.slice(-options.limit) : out
  }

  /** Cancel a task (a map task with its children); throws `TaskNotFoundError` */
  async cancel (id: string, reason = 'canceled by the submitter'): Promise<TaskInfo> {
    const record = this.records.get(id)
    if (record == null) {
      throw new TaskNotFoundError(`no task ${id}`)
    }
    if (!isTerminal(record.state)) {
      if (record.children != null) {
        for (let i = 0; i < record.children; i++) {
          const child = this.records.get(`${id}.${i}`)
          if (child != null && !isTerminal(child.state)) {
            this.endTask(child, 'canceled', reason, false)
          }
        }
      }
      this.endTask(record, 'canceled', reason)
      await this.init.journal.save(record)
    }
    return taskInfo(record)
  }

  /** Load the journal and take every unfinished task up again */
  async resume (): Promise<void> {
    const { records, corrupt } = await this.init.journal.load()
    if (corrupt > 0) {
      this.init.drop('malformed', corrupt)
    }
    const now = Date.now()
    const parents: TaskRecord[] = []
    for (const record of records) {
      if (isTerminal(record.state) && now - record.updatedAt > this.init.options.retainMs) {
        this.init.journal.removeInBackground(record.id)
        continue
      }
      this.records.set(record.id, record)
    }
    await this.intake.applyStaged()
    const ended = [...this.records.values()].filter(r => isTerminal(r.state)).sort((a, b) => a.updatedAt - b.updatedAt)
    for (const record of ended) {
      this.retention.retire(record, record.updatedAt)
    }
    for (const record of this.records.values()) {
      if (isTerminal(record.state)) {
        continue
      }
      if (record.children != null) {
        this.active.add(record.id)
        parents.push(record)
        continue
      }
      // journals of older versions may hold leases under today's minimum
      record.leaseMs = Math.max(record.leaseMs, C.MIN_LEASE_MS)
      if (isLeased(record.state)) {
        // the worker may still be running it: give it a fresh lease to report back
        record.leaseUntil = now + record.leaseMs
        this.active.add(record.id)
      } else {
        this.activate(record)
      }
    }
    for (const parent of parents) {
      this.finishParent(parent)
    }
    if (this.active.size > 0) {
      this.init.log('resumed %d unfinished tasks from the journal', this.active.size)
    }
  }

  private activate (record: TaskRecord): void {
    this.active.add(record.id)
    if (isPending(record.state) && (record.notBefore ?? 0) <= Date.now()) {
      this.dispatcher.markReady(record)
    }
  }

  /** The task goes to `worker` under a fresh lease (`ref`: the task it offered for) */
  assign (record: TaskRecord, worker: PeerId, ref: string): void {
    const now = Date.now()
    assertTransition(record.state, 'assigned')
    this.dispatcher.unready(record)
    record.state = 'assigned'
    record.attempts++
    record.worker = worker.toString()
    record.leaseUntil = now + record.leaseMs
    record.notBefore = undefined
    record.progress = undefined
    pushHistory(record, { at: now, state: 'assigned', attempt: record.attempts, worker: record.worker })
    this.save(record)
    this.assignSent.set(record.id, now)
    const attempt = record.attempts
    this.init.channels.send(worker, {
      type: Control.Type.ASSIGN,
      taskId: record.id,
      attempt,
      ref,
      task: taskBody(record, true),
      leaseMs: record.leaseMs,
      free: 0
    }).catch(err => {
      if (record.state === 'assigned' && record.attempts === attempt && record.worker === worker.toString()) {
        this.failAttempt(record, `worker unreachable: ${err.message}`)
      }
    })
    this.init.emit(taskEvent(record, 'task.assigned'))
    if (record.parent != null) {
      const parent = this.records.get(record.parent)
      if (parent?.state === 'submitted') {
        parent.state = 'running'
        pushHistory(parent, { at: now, state: 'running', attempt: 0 })
        this.save(parent)
        this.init.emit(taskEvent(parent, 'task.running'))
      }
    }
  }

  /** Whether `peer` holds the lease of this attempt of the task */
  leaseHolder (record: TaskRecord | undefined, peer: PeerId, attempt: number): boolean {
    return record != null && isLeased(record.state) && record.worker === peer.toString() && record.attempts === attempt
  }

  /** A worker's start report, heartbeat or progress: the lease is extended */
  onProgress (worker: PeerId, msg: Control): void {
    const record = this.records.get(msg.taskId)
    if (record?.state === 'completed' && record.worker === worker.toString() && record.attempts === msg.attempt) {
      // a heartbeat that crossed the acknowledgement of its result
      return
    }
    if (!this.leaseHolder(record, worker, msg.attempt) || record == null) {
      if (record == null) {
        this.init.drop('unknownTask')
      } else {
        this.init.drop('notAssigned')
      }
      this.init.reply(worker, { type: Control.Type.CANCEL, taskId: msg.taskId, attempt: msg.attempt, reason: 'not assigned to you' })
      return
    }
    const now = Date.now()
    record.leaseUntil = now + record.leaseMs
    const sent = this.assignSent.get(record.id)
    if (sent != null) {
      // the worker's first report of the attempt: the round trip it took is allowed for before its leases expire
      this.assignSent.delete(record.id)
      this.roundTrips.sample(worker.toString(), now - sent)
    }
    if (record.state === 'assigned') {
      record.state = 'running'
      pushHistory(record, { at: now, state: 'running', attempt: record.attempts, worker: record.worker })
      // not journaled on its own: a restarted submitter treats assigned and running alike
      this.init.emit(taskEvent(record, 'task.running'))
    }
    if (msg.progress != null || msg.message != null) {
      if (msg.progress != null && Number.isFinite(msg.progress)) {
        record.progress = msg.progress
      }
      this.init.emit(taskEvent(record, 'task.progress', { progress: record.progress, message: msg.message?.slice(0, 1024) }))
    }
  }

  /** The record's state once a result is accepted (in memory) */
  private complete (record: TaskRecord, output: unknown): void {
    const now = Date.now()
    record.state = 'completed'
    record.result = output
    record.error = undefined
    record.leaseUntil = undefined
    // nothing runs it again: the journal and memory keep its result, not its input
    record.payload = undefined
    pushHistory(record, { at: now, state: 'completed', attempt: record.attempts, worker: record.worker })
    this.active.delete(record.id)
    this.dispatcher.forget(record.id)
    this.assignSent.delete(record.id)
    this.count('completed')
    this.retention.retire(record, now)
  }

  failAttempt (record: TaskRecord, reason: string): void {
    if (isTerminal(record.state) || isPending(record.state)) {
      return
    }
    const now = Date.now()
    const worker = record.worker
    this.count('failedAttempts')
    if (worker != null) {
      this.dispatcher.workerFailed(record.id, worker, now)
      // tell the worker to stop, in case it is still running the attempt
      this.init.reply(peerIdFromString(worker), { type: Control.Type.CANCEL, taskId: record.id, attempt: record.attempts, reason })
    }
    record.state = 'failed'
    record.error = reason
    record.leaseUntil = undefined
    this.assignSent.delete(record.id)
    pushHistory(record, { at: now, state: 'failed', attempt: record.attempts, worker, reason })
    this.init.emit(taskEvent(record, 'task.failed', { reason }))
    if (record.attempts >= record.maxAttempts) {
      const reasons = record.history.filter(h => h.state === 'failed').map(h => `#${h.attempt}: ${h.reason ?? 'failed'}`)
      this.endTask(record, 'dead', `dead after ${record.attempts} attempts (${reasons.join('; ')})`)
      return
    }
    record.notBefore = now + backoffDelay(record.attempts, this.init.options.backoffMs, this.init.options.maxBackoffMs)
    this.save(record)
  }

  /** Move a task to a terminal state other than completed */
  private endTask (record: TaskRecord, state: 'dead' | 'canceled', reason: string, notifyParent = true): void {
    if (isTerminal(record.state)) {
      return
    }
    const now = Date.now()
    if (isLeased(record.state) && record.worker != null) {
      this.init.reply(peerIdFromString(record.worker), { type: Control.Type.CANCEL, taskId: record.id, attempt: record.attempts, reason })
    }
    assertTransition(record.state, state)
    this.dispatcher.unready(record)
    record.state = state
    record.error = reason
    record.leaseUntil = undefined
    pushHistory(record, { at: now, state, attempt: record.attempts, worker: record.worker, reason })
    this.active.delete(record.id)
    this.dispatcher.forget(record.id)
    this.assignSent.delete(record.id)
    this.count(state === 'dead' ? 'dead' : 'canceled')
    this.retention.retire(record, now)
    this.save(record)
    this.init.emit(taskEvent(record, state === 'dead' ? 'task.dead' : 'task.canceled', { reason }))
    if (notifyParent) {
      this.onChildEnded(record)
    }
  }

  private onChildEnded (child: TaskRecord): void {
    if (child.parent == null) {
      return
    }
    const parent = this.records.get(child.parent)
    if (parent != null) {
      this.finishParent(parent)
    }
  }

  /** Settle a map task once its children allow it */
  private finishParent (parent: TaskRecord): void {
    if (isTerminal(parent.state) || parent.children == null) {
      return
    }
    const outcome = settleMap(parent, i => this.records.get(`${parent.id}.${i}`), id => this.settling.has(id))
    if (outcome.state === 'dead') {
      for (let j = 0; outcome.cancelOthers != null && j < parent.children; j++) {
        const other = this.records.get(`${parent.id}.${j}`)
        if (other != null && !isTerminal(other.state)) {
          this.endTask(other, 'canceled', outcome.cancelOthers, false)
        }
      }
      this.endTask(parent, 'dead', outcome.reason)
    } else if (outcome.state === 'completed') {
      const now = Date.now()
      parent.state = 'completed'
      parent.result = outcome.results
      pushHistory(parent, { at: now, state: 'completed', attempt: 0 })
      this.active.delete(parent.id)
      this.count('completed')
      this.retention.retire(parent, now)
      this.save(parent)
      this.init.emit(taskEvent(parent, 'task.completed', { result: outcome.results }))
    }
  }

  /** Deadlines, expired leases, backoffs that are over, announcements due, finished tasks to forget */
  sweep (now: number): void {
    for (const id of [...this.active]) {
      const record = this.records.get(id)
      if (record == null || isTerminal(record.state)) {
        this.active.delete(id)
        continue
      }
      if (record.deadline > 0 && now > record.deadline) {
        this.endTask(record, 'dead', 'deadline exceeded')
        continue
      }
      if (record.children != null) {
        continue
      }
      if (isLeased(record.state)) {
        // a lease expires once its time and the round trip to its worker have passed
        if ((record.leaseUntil ?? 0) + this.roundTrips.grace(record.worker) < now) {
          this.failAttempt(record, 'lease expired')
        }
        continue
      }
      if (isPending(record.state) && !this.dispatcher.isReady(record) && (record.notBefore ?? 0) <= now) {
        this.dispatcher.markReady(record)
        this.dispatcher.announce(record)
      }
    }
    this.dispatcher.announceReady(false)
    for (const id of this.retention.due(now)) {
      this.records.delete(id)
      this.init.journal.removeInBackground(id)
    }
  }

  /** The lease holder asks for an input too large to travel inline */
  onFetch (worker: PeerId, msg: Control): void {
    const record = this.records.get(msg.taskId)
    if (!this.leaseHolder(record, worker, msg.attempt) || record?.payload == null) {
      this.init.drop(record == null ? 'unknownTask' : 'notAssigned')
      this.init.reply(worker, { type: Control.Type.PAYLOAD, taskId: msg.taskId, attempt: msg.attempt, reason: 'not assigned to you' })
      return
    }
    this.init.reply(worker, { type: Control.Type.PAYLOAD, taskId: msg.taskId, attempt: msg.attempt, payload: record.payload })
  }

  /** Journals the record in the background: nothing waits for these writes (`unstage`: see `Journal.saveInBackground`) */
  private save (record: TaskRecord, options: { unstage?: number } = {}): void {
    this.init.journal.saveInBackground(record, options).catch(err => { this.init.log.error('journal write failed for %s - %e', record.id, err) })
  }
}
