import { randomUUID } from 'node:crypto'
import { TypedEventEmitter } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { inBatches } from './batches.js'
import { Channels } from './channel.js'
import { Worker } from './worker.js'
import { DropCounter } from './counters.js'
import { EventBus } from './event-bus.js'
import * as C from './constants.js'
import { InvalidTaskError, NotStartedError, PayloadTooLargeError, TaskNotFoundError } from './errors.js'
import { Journal } from './journal.js'
import { clamp, controlWithinLimits, resultWithinLimits } from './limits.js'
import { Announce, Control, ResultBatch } from './pb/task.js'
import { RoundTrips } from './round-trips.js'
import { decodeJson, encodeJson, specKey } from './spec.js'
import { openRecord, readRecord, sealRecord } from './signing.js'
import { assertTransition, backoffDelay, isLeased, isPending, isTerminal } from './state.js'
import type { TaskRecord } from './journal.js'
import type { LocalEvent } from './event-bus.js'
import type { ReadRecord } from './signing.js'
import type { AnnouncedTask, Result, TaskBody } from './pb/task.js'
import type { HistoryEntry, SubmitRequest, TaskEvent, TaskExecutor, TaskInfo, TaskState, TaskStats } from './types.js'
import type { ComponentLogger, EventHandler, Logger, Metrics, PeerId, PrivateKey, Stream, StreamHandler, StreamHandlerOptions, Connection } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

/** The slice of gossipsub this module uses */
export interface PubSubLike {
  subscribe(topic: string): void
  unsubscribe(topic: string): void
  publish(topic: string, data: Uint8Array): Promise<unknown>
  getSubscribers(topic: string): PeerId[]
  addEventListener(type: string, listener: any): void
  removeEventListener(type: string, listener: any): void
}

export interface TaskQueueComponents {
  peerId: PeerId
  privateKey: PrivateKey
  registrar: {
    handle(protocol: string, handler: StreamHandler, options?: StreamHandlerOptions): Promise<void>
    unhandle(protocol: string): Promise<void>
  }
  connectionManager: {
    openStream(peer: PeerId, protocol: string, options?: { signal?: AbortSignal }): Promise<Stream>
    getConnections(peer?: PeerId): Connection[]
  }
  datastore: Datastore
  pubsub: PubSubLike
  events: {
    addEventListener(type: string, listener: any): void
    removeEventListener(type: string, listener: any): void
  }
  logger: ComponentLogger
  metrics?: Metrics
}

export interface TaskQueueInit {
  /** network id: protocol `/${network}/task/1.0.0`, topics `${network}/1/tasks` and `${network}/1/events` */
  network?: string
  /** runs tasks on this node; without one the node only submits */
  executor?: TaskExecutor
  /** resolves a query to a capability name and/or a peer (e.g. with semantic anycast) at submit time */
  resolveQuery?(query: string, options: { signal?: AbortSignal }): Promise<{ capability?: string, peer?: PeerId | string } | undefined>
  defaultLeaseMs?: number
  defaultMaxAttempts?: number
  /** first retry delay; doubles on every failed attempt */
  backoffMs?: number
  maxBackoffMs?: number
  /** per-attempt execution limit used when the task does not set one */
  taskTimeoutMs?: number
  maxPayloadBytes?: number
  maxOutputBytes?: number
  sweepIntervalMs?: number
  /** pending tasks are announced again this often */
  reannounceMs?: number
  /** a worker that failed a task is passed over for it during this long after the task is queued again */
  retryElsewhereMs?: number
  offerTimeoutMs?: number
  resultRetryMs?: number
  maxRecordAgeMs?: number
  /** sign and publish lifecycle events on the events topic (default true) */
  publishEvents?: boolean
  /**
   * receive other nodes' events from the events topic: always (true), never
   * (false), or while something listens for events on this service
   * ('on-demand', the default), so that nodes nobody watches are not sent
   * every other node's events
   */
  subscribeEvents?: boolean | 'on-demand'
  /**
   * how long a finished task (completed, dead, canceled) stays known, in
   * memory and in the journal, after it ends (default 24 hours)
   */
  retainMs?: number
  /** at most this many finished tasks are kept; beyond it the oldest go first (default 100,000) */
  maxRetained?: number
  /**
   * results a worker holds until acknowledged, per submitter (default 4,096);
   * past it, or past `maxHeldBytes`, that submitter's new assignments are refused
   */
  maxHeldResults?: number
  /** bytes of output a worker holds until acknowledged, per submitter (default 64 MiB) */
  maxHeldBytes?: number
}

export interface TaskQueueEvents {
  event: CustomEvent<TaskEvent>
}

/** Slots a worker offered for a kind of work that no ready task used yet */
interface Credit {
  worker: PeerId
  ref: string
  slots: number
  until: number
}

const EMPTY_DROPPED = (): TaskStats['dropped'] => ({ badSignature: 0, oversize: 0, malformed: 0, unknownTask: 0, notAssigned: 0, replayed: 0, duplicate: 0 })

/**
 * A durable work queue without a server. The submitter journals each task,
 * announces it, assigns it to a worker that offered, watches the lease and
 * retries with backoff; workers run tasks with the node's executor.
 */
export class TaskService extends TypedEventEmitter<TaskQueueEvents> {
  readonly protocol: string
  readonly tasksTopic: string
  readonly eventsTopic: string
  /** signature domains of announcements, results and events on this network */
  readonly domains: { task: string, result: string, event: string }

  private readonly components: TaskQueueComponents
  /** this node's peer id as multihash bytes, as results and `to` name it */
  private readonly ownId: Uint8Array
  private readonly log: Logger
  private readonly executor?: TaskExecutor
  private readonly resolveQuery?: TaskQueueInit['resolveQuery']
  private readonly journal: Journal
  private readonly channels: Channels
  private readonly opts: Required<Omit<TaskQueueInit, 'network' | 'executor' | 'resolveQuery'>>
  private started = false

  // submitter side
  private readonly records = new Map<string, TaskRecord>()
  /** finished tasks, oldest first, with when they ended: forgotten after retainMs or beyond maxRetained */
  private readonly finished = new Map<string, number>()
  private readonly active = new Set<string>()
  /** ready to assign, by spec key, in queue order */
  private readonly ready = new Map<string, Set<string>>()
  /** when each group of ready tasks was last announced */
  private readonly groupAnnounced = new Map<string, number>()
  private announceQueue: AnnouncedTask[] = []
  private announceFlush?: ReturnType<typeof setImmediate>
  private readonly failedWorkers = new Map<string, Map<string, number>>()
  private readonly readySince = new Map<string, number>()
  /** open offers by kind of work: new tasks of that kind are assigned at once */
  private readonly credits = new Map<string, Credit[]>()
  /** completed tasks whose completion is being journaled (their event is not out yet) */
  private readonly settling = new Set<string>()
  /** workers that sent a result whose signature failed on the staged path (newest last) */
  private readonly badSigners = new Set<string>()
  /** when the current attempt's ASSIGN went out, until the worker's first report: a round trip */
  private readonly assignSent = new Map<string, number>()
  private readonly roundTrips = new RoundTrips()

  /** peers seen on the tasks topic */
  private readonly agents = new Set<string>()
  private readonly bus: EventBus
  private readonly worker: Worker
  private readonly dropped: DropCounter

  private sweepTimer?: ReturnType<typeof setInterval>
  private reannounceTimer?: ReturnType<typeof setTimeout>
  private readonly statsData: TaskStats = {
    submitted: 0, completed: 0, failedAttempts: 0, dead: 0, canceled: 0, executed: 0, offersSent: 0, announced: 0, eventBatches: 0, dropped: EMPTY_DROPPED()
  }

  constructor (components: TaskQueueComponents, init: TaskQueueInit = {}) {
    super()
    const network = init.network ?? C.DEFAULT_NETWORK
    this.components = components
    this.ownId = components.peerId.toMultihash().bytes
    this.log = components.logger.forComponent('aistack:task')
    this.executor = init.executor
    this.resolveQuery = init.resolveQuery
    this.protocol = C.protocolId(network)
    this.tasksTopic = C.tasksTopic(network)
    this.eventsTopic = C.eventsTopic(network)
    this.domains = C.recordDomains(network)
    this.opts = {
      defaultLeaseMs: clamp(init.defaultLeaseMs ?? C.DEFAULT_LEASE_MS, C.MIN_LEASE_MS, C.MAX_LEASE_MS),
      defaultMaxAttempts: init.defaultMaxAttempts ?? C.DEFAULT_MAX_ATTEMPTS,
      backoffMs: init.backoffMs ?? C.DEFAULT_BACKOFF_MS,
      maxBackoffMs: init.maxBackoffMs ?? C.DEFAULT_MAX_BACKOFF_MS,
      taskTimeoutMs: init.taskTimeoutMs ?? C.DEFAULT_TASK_TIMEOUT_MS,
      maxPayloadBytes: init.maxPayloadBytes ?? C.DEFAULT_MAX_PAYLOAD_BYTES,
      maxOutputBytes: init.maxOutputBytes ?? C.DEFAULT_MAX_OUTPUT_BYTES,
      sweepIntervalMs: init.sweepIntervalMs ?? C.DEFAULT_SWEEP_INTERVAL_MS,
      reannounceMs: init.reannounceMs ?? C.DEFAULT_REANNOUNCE_MS,
      retryElsewhereMs: init.retryElsewhereMs ?? 1000,
      offerTimeoutMs: init.offerTimeoutMs ?? C.DEFAULT_OFFER_TIMEOUT_MS,
      resultRetryMs: init.resultRetryMs ?? C.DEFAULT_RESULT_RETRY_MS,
      maxRecordAgeMs: init.maxRecordAgeMs ?? C.DEFAULT_MAX_RECORD_AGE_MS,
      publishEvents: init.publishEvents ?? true,
      subscribeEvents: init.subscribeEvents ?? 'on-demand',
      retainMs: init.retainMs ?? C.DEFAULT_RETAIN_MS,
      maxRetained: init.maxRetained ?? C.DEFAULT_MAX_RETAINED,
      maxHeldResults: init.maxHeldResults ?? C.DEFAULT_MAX_HELD_RESULTS,
      maxHeldBytes: init.maxHeldBytes ?? C.DEFAULT_MAX_HELD_BYTES
    }

    this.journal = new Journal(components.datastore, C.JOURNAL_PREFIX)
    const maxFrameBytes = Math.max(this.opts.maxPayloadBytes, this.opts.maxOutputBytes) + 64 * 1024
    this.channels = new Channels({
      self: components.peerId,
      protocol: this.protocol,
      maxFrameBytes,
      connectionManager: components.connectionManager,
      log: this.log,
      onMessage: (peer, message) => { this.onControl(peer, message) },
      onBadFrame: (_peer, reason) => { this.drop(reason) }
    })
    this.dropped = new DropCounter(components.metrics)
    this.worker = new Worker({
      self: components.peerId,
      privateKey: components.privateKey,
      executor: init.executor,
      channels: this.channels,
      isConnected: (peer) => components.connectionManager.getConnections(peer).length > 0,
      domains: this.domains,
      options: this.opts,
      log: this.log,
      drop: (reason) => { this.drop(reason) }
    })
    this.bus = new EventBus({
      self: components.peerId,
      privateKey: components.privateKey,
      pubsub: components.pubsub,
      topic: this.eventsTopic,
      domain: this.domains.event,
      publish: this.opts.publishEvents,
      subscribe: this.opts.subscribeEvents,
      maxRecordAgeMs: this.opts.maxRecordAgeMs,
      log: this.log,
      lifecycleMetric: components.metrics?.registerCounterGroup('aistack_task_lifecycle_total', { label: 'event', help: 'task lifecycle transitions on this node' }),
      deliver: (event) => { this.safeDispatch(event) },
      listeners: () => this.listenerCount('event'),
      drop: (reason) => { this.drop(reason) }
    })
  }

  readonly [Symbol.toStringTag] = '@aistack/task'

  isStarted (): boolean {
    return this.started
  }

  override addEventListener<K extends keyof TaskQueueEvents>(type: K, listener: EventHandler<TaskQueueEvents[K]> | null, options?: boolean | AddEventListenerOptions): void {
    super.addEventListener(type, listener, options)
    if (type === 'event') {
      this.bus.updateSubscription()
    }
  }

  override removeEventListener<K extends keyof TaskQueueEvents>(type: K, listener?: EventHandler<TaskQueueEvents[K]> | null, options?: boolean | EventListenerOptions): void {
    super.removeEventListener(type, listener, options)
    if (type === 'event') {
      this.bus.updateSubscription()
    }
  }

  async start (): Promise<void> {
    if (this.started) {
      return
    }
    await this.resume()
    await this.components.registrar.handle(this.protocol, this.channels.handle, {
      maxInboundStreams: 64,
      maxOutboundStreams: 64
    })
    const pubsub = this.components.pubsub
    pubsub.addEventListener('message', this.onPubSubMessage)
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    pubsub.subscribe(this.tasksTopic)
    this.components.events.addEventListener('peer:disconnect', this.onPeerDisconnect)
    this.components.events.addEventListener('peer:connect', this.onPeerConnect)
    this.sweepTimer = setInterval(() => { this.sweep() }, this.opts.sweepIntervalMs)
    this.sweepTimer.unref?.()
    this.started = true
    this.worker.start()
    this.bus.start()
    this.emitEvent({ type: 'agent.joined' })
    this.announceReady(true)
  }

  async stop (): Promise<void> {
    if (!this.started) {
      return
    }
    this.emitEvent({ type: 'agent.left' })
    this.started = false
    clearInterval(this.sweepTimer)
    clearTimeout(this.reannounceTimer)
    const pubsub = this.components.pubsub
    pubsub.removeEventListener('message', this.onPubSubMessage)
    pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    try {
      pubsub.unsubscribe(this.tasksTopic)
    } catch {}
    this.components.events.removeEventListener('peer:disconnect', this.onPeerDisconnect)
    this.components.events.removeEventListener('peer:connect', this.onPeerConnect)
    this.worker.stop()
    clearImmediate(this.announceFlush)
    this.announceFlush = undefined
    this.announceQueue = []
    this.bus.stop()
    await this.components.registrar.unhandle(this.protocol)
    this.channels.closeAll()
    await this.journal.flush()
    this.records.clear()
    this.active.clear()
    this.ready.clear()
    this.readySince.clear()
    this.groupAnnounced.clear()
    this.credits.clear()
    this.settling.clear()
    this.failedWorkers.clear()
    this.assignSent.clear()
    this.agents.clear()
  }

  // ------------------------------------------------------------------ public API

  async submit (req: SubmitRequest): Promise<{ id: string, state: TaskState }> {
    if (!this.started) {
      throw new NotStartedError('the task service is not started')
    }
    const spec = await this.validate(req)
    const now = Date.now()
    const maxAttempts = req.maxAttempts ?? this.opts.defaultMaxAttempts
    const leaseMs = req.leaseMs ?? this.opts.defaultLeaseMs
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
      state: 'submitted' as TaskState
    }
    const id = randomUUID()
    if (req.inputs == null) {
      const record: TaskRecord = { ...base, id, payload: spec.payloads[0], history: [{ at: now, state: 'submitted', attempt: 0 }] }
      this.records.set(id, record)
      await this.journal.save(record)
      this.count('submitted')
      this.activate(record)
      this.emitTask(record, 'task.created')
      this.announce(record)
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
    await Promise.all([parent, ...children].map(async r => { await this.journal.save(r) }))
    this.count('submitted')
    this.active.add(id)
    this.emitTask(parent, 'task.created')
    if (children.length === 0) {
      this.finishParent(parent)
    }
    for (const child of children) {
      this.activate(child)
      this.announce(child)
    }
    return { id, state: parent.state }
  }

  get (id: string): TaskInfo {
    const record = this.records.get(id)
    if (record == null) {
      throw new TaskNotFoundError(`no task ${id}`)
    }
    return this.info(record)
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
      out.push(this.info(record))
    }
    out.sort((a, b) => a.createdAt - b.createdAt || (a.index ?? 0) - (b.index ?? 0))
    return options.limit != null ? out.slice(-options.limit) : out
  }

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
      await this.journal.save(record)
    }
    return this.info(record)
  }

  /** Lifecycle events as an async iterator; pass taskId for one task (a map task includes its children) */
  async * events (options: { taskId?: string, signal?: AbortSignal } = {}): AsyncGenerator<TaskEvent> {
    const queue: TaskEvent[] = []
    let wake: (() => void) | undefined
    const listener = (evt: CustomEvent<TaskEvent>): void => {
      const e = evt.detail
      if (options.taskId != null && e.taskId !== options.taskId && e.parent !== options.taskId) {
        return
      }
      queue.push(e)
      wake?.()
    }
    const onAbort = (): void => { wake?.() }
    this.addEventListener('event', listener)
    options.signal?.addEventListener('abort', onAbort)
    try {
      while (options.signal?.aborted !== true) {
        const next = queue.shift()
        if (next != null) {
          yield next
          continue
        }
        await new Promise<void>(resolve => { wake = resolve })
        wake = undefined
      }
    } finally {
      this.removeEventListener('event', listener)
      options.signal?.removeEventListener('abort', onAbort)
    }
  }

  stats (): TaskStats {
    return { ...this.statsData, executed: this.worker.executed, offersSent: this.worker.offersSent, eventBatches: this.bus.batches, dropped: this.dropped.snapshot() }
  }

  // ------------------------------------------------------------------ submitter

  private async validate (req: SubmitRequest): Promise<{ capability?: string, query?: string, to?: string, payloads: Uint8Array[] }> {
    if (req == null || typeof req !== 'object') {
      throw new InvalidTaskError('a task request must be an object')
    }
    let { capability, query } = req
    if (capability != null && (typeof capability !== 'string' || capability.length === 0 || capability.length > C.MAX_CAPABILITY_LENGTH)) {
      throw new InvalidTaskError(`capability must be a non-empty string of at most ${C.MAX_CAPABILITY_LENGTH} characters`)
    }
    if (query != null && (typeof query !== 'string' || query.length === 0 || query.length > C.MAX_QUERY_LENGTH)) {
      throw new InvalidTaskError(`query must be a non-empty string of at most ${C.MAX_QUERY_LENGTH} characters`)
    }
    if (capability == null && query == null) {
      throw new InvalidTaskError('a task needs a capability or a query')
    }
    if ((req.input !== undefined) === (req.inputs != null)) {
      throw new InvalidTaskError('give exactly one of input or inputs')
    }
    if (req.inputs != null && (!Array.isArray(req.inputs) || req.inputs.length > C.MAX_MAP_INPUTS)) {
      throw new InvalidTaskError(`inputs must be an array of at most ${C.MAX_MAP_INPUTS} items`)
    }
    for (const [name, value, min, max] of [
      ['maxAttempts', req.maxAttempts, 1, 100],
      ['leaseMs', req.leaseMs, C.MIN_LEASE_MS, C.MAX_LEASE_MS],
      ['deadlineMs', req.deadlineMs, 1, C.MAX_DEADLINE_MS],
      ['timeoutMs', req.timeoutMs, 1, C.MAX_TASK_TIMEOUT_MS]
    ] as const) {
      if (value != null && (!Number.isInteger(value) || value < min || value > max)) {
        throw new InvalidTaskError(`${name} must be an integer between ${min} and ${max}`)
      }
    }
    if (req.requirements != null && (typeof req.requirements !== 'object' || Object.values(req.requirements).some(v => typeof v !== 'string'))) {
      throw new InvalidTaskError('requirements must map names to strings')
    }
    if (req.requirements != null && (Object.keys(req.requirements).length > C.MAX_REQUIREMENTS ||
      Object.entries(req.requirements).some(([k, v]) => k.length > C.MAX_REQUIREMENT_LENGTH || v.length > C.MAX_REQUIREMENT_LENGTH))) {
      throw new InvalidTaskError(`requirements may have at most ${C.MAX_REQUIREMENTS} entries, names and values of at most ${C.MAX_REQUIREMENT_LENGTH} characters`)
    }
    let to: string | undefined
    if (req.to != null) {
      try {
        to = typeof req.to === 'string' ? peerIdFromString(req.to).toString() : req.to.toString()
      } catch {
        throw new InvalidTaskError('to must be a peer id')
      }
    }
    if (query != null && capability == null && to == null && this.resolveQuery != null) {
      const resolved = await this.resolveQuery(query, { signal: AbortSignal.timeout(30_000) })
      if (resolved?.capability != null) {
        capability = resolved.capability
      }
      if (resolved?.peer != null) {
        to = resolved.peer.toString()
      }
    }
    const inputs = req.inputs ?? [req.input]
    const payloads = inputs.map(input => {
      let payload: Uint8Array
      try {
        payload = encodeJson(input)
      } catch (err: any) {
        throw new InvalidTaskError(`input is not JSON-serialisable: ${err.message}`)
      }
      if (payload.byteLength > this.opts.maxPayloadBytes) {
        throw new PayloadTooLargeError(`input of ${payload.byteLength} bytes exceeds the limit of ${this.opts.maxPayloadBytes}`)
      }
      return payload
    })
    return { capability, query, to, payloads }
  }

  /** Load the journal and take every unfinished task up again */
  private async resume (): Promise<void> {
    const { records, corrupt } = await this.journal.load()
    if (corrupt > 0) {
      this.dropped.drop('malformed', corrupt)
    }
    const now = Date.now()
    const parents: TaskRecord[] = []
    for (const record of records) {
      if (isTerminal(record.state) && now - record.updatedAt > this.opts.retainMs) {
        this.journal.removeInBackground(record.id)
        continue
      }
      this.records.set(record.id, record)
    }
    await this.applyStagedResults()
    const ended = [...this.records.values()].filter(r => isTerminal(r.state)).sort((a, b) => a.updatedAt - b.updatedAt)
    for (const record of ended) {
      this.retire(record, record.updatedAt)
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
      this.log('resumed %d unfinished tasks from the journal', this.active.size)
    }
  }

  /**
   * Results that reached the journal (see `onSingleResult`) while their
   * task's record did not: each is checked as when it arrived and completes
   * its task. No event is sent for these, as for a task whose completion was
   * written just before a crash: the completion is in the task's history.
   */
  private async applyStagedResults (): Promise<void> {
    const writes: Array<Promise<void>> = []
    for (const { taskId, attempt, bytes } of await this.journal.stagedResults()) {
      const record = this.records.get(taskId)
      try {
        const opened = await openRecord(bytes, this.domains.result)
        const result = ResultBatch.decode(opened.payload, { limits: { results: C.RESULT_BATCH_COUNT } }).results.find(r => r.taskId === taskId && r.attempt === attempt)
        if (record != null && result?.ok === true && !isTerminal(record.state) && uint8ArrayEquals(result.submitter, this.ownId)) {
          const output = result.output == null ? null : decodeJson(result.output)
          record.worker = opened.signer.toString()
          record.attempts = Math.max(record.attempts, result.attempt)
          this.complete(record, output)
          writes.push(this.journal.saveInBackground(record, { unstage: attempt }))
          continue
        }
      } catch (err: any) {
        this.log('staged result for %s is not usable - %e', taskId, err)
      }
      this.journal.discardStaged(taskId, attempt)
    }
    await Promise.all(writes)
  }

  private activate (record: TaskRecord): void {
    this.active.add(record.id)
    if (isPending(record.state) && (record.notBefore ?? 0) <= Date.now()) {
      this.markReady(record)
    }
  }

  private markReady (record: TaskRecord): void {
    const key = specKey(record)
    let set = this.ready.get(key)
    if (set == null) {
      set = new Set()
      this.ready.set(key, set)
    }
    set.add(record.id)
    this.readySince.set(record.id, Date.now())
  }

  private unready (record: TaskRecord): void {
    const key = specKey(record)
    const set = this.ready.get(key)
    if (set != null) {
      set.delete(record.id)
      if (set.size === 0) {
        this.ready.delete(key)
      }
    }
    this.readySince.delete(record.id)
  }

  private isReady (record: TaskRecord): boolean {
    return this.ready.get(specKey(record))?.has(record.id) === true
  }

  private body (record: TaskRecord, withPayload: boolean): TaskBody {
    const payload = record.payload ?? new Uint8Array(0)
    const body: TaskBody = {
      id: record.id,
      capability: record.capability,
      query: record.query,
      requirements: new Map(Object.entries(record.requirements ?? {})),
      deadline: BigInt(record.deadline),
      timeoutMs: record.timeoutMs,
      payloadSize: payload.byteLength,
      parent: record.parent,
      index: record.index ?? 0
    }
    if (withPayload && payload.byteLength <= C.INLINE_PAYLOAD_BYTES) {
      body.payload = payload
    }
    if (record.to != null) {
      body.to = peerIdFromString(record.to).toMultihash().bytes
    }
    return body
  }

  /**
   * Announce a pending task: gossip (batched with the other tasks announced in
   * the same tick under one signature), or straight to the named peer.
   * Unless `force`d, a task of a kind whose waiting tasks were announced a
   * moment ago is not announced on its own.
   */
  private announce (record: TaskRecord, force = false): void {
    if (!this.started || !this.isReady(record)) {
      return
    }
    if (this.assignFromCredit(record)) {
      return
    }
    const key = specKey(record)
    const now = Date.now()
    // tasks of this kind announced a moment ago are still waiting: the workers that
    // heard of them pull this one with their next offers (the sweep re-announces
    // each waiting kind every reannounceMs)
    if (!force && record.to == null && (this.ready.get(key)?.size ?? 0) > 1 && now - (this.groupAnnounced.get(key) ?? 0) < this.opts.reannounceMs) {
      return
    }
    record.round++
    this.groupAnnounced.set(key, now)
    this.statsData.announced++
    const item: AnnouncedTask = { task: this.body(record, true), round: record.round }
    const to = record.to != null ? peerIdFromString(record.to) : undefined
    // our own executor gets a look too
    if (this.executor != null && (to == null || to.equals(this.components.peerId))) {
      this.worker.considerAnnounce(this.components.peerId, item.task)
    }
    if (to?.equals(this.components.peerId) === true) {
      return
    }
    if (to != null) {
      this.sealAnnounce([item])
        .then(async signed => {
          try {
            await this.channels.send(to, { type: Control.Type.ANNOUNCE, taskId: record.id, attempt: 0, leaseMs: 0, free: 0, record: signed })
          } catch (err: any) {
            this.log('direct announce of %s to %p failed, gossiping - %e', record.id, to, err)
            await this.components.pubsub.publish(this.tasksTopic, signed)
          }
        })
        .catch(err => { this.log('announce of %s failed - %e', record.id, err) })
      return
    }
    this.announceQueue.push(item)
    this.announceFlush ??= setImmediate(() => { this.flushAnnounces() })
  }

  /** A worker has an open offer for this kind of work: assign without announcing */
  private assignFromCredit (record: TaskRecord): boolean {
    const key = specKey(record)
    const list = this.credits.get(key)
    if (list == null) {
      return false
    }
    const now = Date.now()
    for (let i = 0; i < list.length; i++) {
      const credit = list[i]
      if (credit.until < now || credit.slots <= 0) {
        list.splice(i--, 1)
        continue
      }
      if (!this.canAssign(record, credit.worker, now)) {
        continue
      }
      credit.slots--
      if (credit.slots <= 0) {
        list.splice(i, 1)
      } else if (list.length > 1) {
        // spread work over the workers that have open offers
        list.splice(i, 1)
        list.push(credit)
      }
      if (list.length === 0) {
        this.credits.delete(key)
      }
      this.assign(record, credit.worker, credit.ref)
      return true
    }
    if (list.length === 0) {
      this.credits.delete(key)
    }
    return false
  }

  private async sealAnnounce (tasks: AnnouncedTask[]): Promise<Uint8Array> {
    return sealRecord(this.components.privateKey, this.domains.task, Announce.encode({ tasks, issuedAt: BigInt(Date.now()) }))
  }

  private flushAnnounces (): void {
    this.announceFlush = undefined
    const queue = this.announceQueue
    this.announceQueue = []
    for (const tasks of inBatches(queue, item => (item.task?.payload?.byteLength ?? 0) + 256, C.ANNOUNCE_BATCH_BYTES, C.ANNOUNCE_BATCH_COUNT)) {
      this.sealAnnounce(tasks)
        .then(async signed => this.components.pubsub.publish(this.tasksTopic, signed))
        .catch(err => { this.log('announcing %d tasks failed - %e', tasks.length, err) })
    }
  }

  /**
   * Announce the oldest ready task of each kind: a worker that learns of one
   * task of a kind pulls the others with its offers
   */
  private announceReady (force: boolean): void {
    const now = Date.now()
    for (const [key, set] of this.ready) {
      if (!force && now - (this.groupAnnounced.get(key) ?? 0) < this.opts.reannounceMs) {
        continue
      }
      const first = set.values().next().value
      const record = first != null ? this.records.get(first) : undefined
      if (record != null) {
        this.announce(record, true)
      }
    }
  }

  private canAssign (record: TaskRecord, worker: PeerId, now: number): boolean {
    if (record.to != null && record.to !== worker.toString()) {
      return false
    }
    const failedAt = this.failedWorkers.get(record.id)?.get(worker.toString())
    if (failedAt != null && now - (this.readySince.get(record.id) ?? 0) < this.opts.retryElsewhereMs) {
      return false
    }
    return true
  }

  /** A worker has free slots: hand it the offered task and others of the same kind, up to its slots */
  private onOffer (worker: PeerId, msg: Control): void {
    const now = Date.now()
    const offered = this.records.get(msg.taskId)
    if (offered == null || offered.children != null) {
      this.drop('unknownTask')
      this.reply(worker, { type: Control.Type.DECLINE, taskId: msg.taskId, ref: msg.taskId, reason: 'unknown task' })
      return
    }
    const slots = Math.max(1, Math.min(msg.free, C.MAX_OFFER_SLOTS))
    const chosen: TaskRecord[] = []
    if (this.isReady(offered) && this.canAssign(offered, worker, now)) {
      chosen.push(offered)
    }
    for (const id of this.ready.get(specKey(offered)) ?? []) {
      if (chosen.length >= slots) {
        break
      }
      const candidate = this.records.get(id)
      if (candidate != null && candidate !== offered && this.canAssign(candidate, worker, now)) {
        chosen.push(candidate)
      }
    }
    for (const record of chosen) {
      this.assign(record, worker, msg.taskId)
    }
    // keep what is left as an open offer: the next tasks of this kind go straight to the worker
    const kind = specKey(offered)
    const list = (this.credits.get(kind) ?? []).filter(c => !(c.worker.equals(worker) && c.ref === msg.taskId))
    if (chosen.length < slots) {
      const ttl = msg.leaseMs > 0 ? Math.min(msg.leaseMs, 60_000) : this.opts.offerTimeoutMs
      list.push({ worker, ref: msg.taskId, slots: slots - chosen.length, until: now + Math.floor(ttl * 0.8) })
    }
    if (list.length > 0) {
      this.credits.set(kind, list)
    } else {
      this.credits.delete(kind)
    }
  }

  private assign (record: TaskRecord, worker: PeerId, ref: string): void {
    const now = Date.now()
    assertTransition(record.state, 'assigned')
    this.unready(record)
    record.state = 'assigned'
    record.attempts++
    record.worker = worker.toString()
    record.leaseUntil = now + record.leaseMs
    record.notBefore = undefined
    record.progress = undefined
    this.pushHistory(record, { at: now, state: 'assigned', attempt: record.attempts, worker: record.worker })
    this.save(record)
    this.assignSent.set(record.id, now)
    const attempt = record.attempts
    this.channels.send(worker, {
      type: Control.Type.ASSIGN,
      taskId: record.id,
      attempt,
      ref,
      task: this.body(record, true),
      leaseMs: record.leaseMs,
      free: 0
    }).catch(err => {
      if (record.state === 'assigned' && record.attempts === attempt && record.worker === worker.toString()) {
        this.failAttempt(record, `worker unreachable: ${err.message}`)
      }
    })
    this.emitTask(record, 'task.assigned')
    if (record.parent != null) {
      const parent = this.records.get(record.parent)
      if (parent?.state === 'submitted') {
        parent.state = 'running'
        this.pushHistory(parent, { at: now, state: 'running', attempt: 0 })
        this.save(parent)
        this.emitTask(parent, 'task.running')
      }
    }
  }

  private leaseHolder (record: TaskRecord | undefined, peer: PeerId, attempt: number): boolean {
    return record != null && isLeased(record.state) && record.worker === peer.toString() && record.attempts === attempt
  }

  private onProgress (worker: PeerId, msg: Control): void {
    const record = this.records.get(msg.taskId)
    if (record?.state === 'completed' && record.worker === worker.toString() && record.attempts === msg.attempt) {
      // a heartbeat that crossed the acknowledgement of its result
      return
    }
    if (!this.leaseHolder(record, worker, msg.attempt) || record == null) {
      if (record == null) {
        this.drop('unknownTask')
      } else {
        this.drop('notAssigned')
      }
      this.reply(worker, { type: Control.Type.CANCEL, taskId: msg.taskId, attempt: msg.attempt, reason: 'not assigned to you' })
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
      this.pushHistory(record, { at: now, state: 'running', attempt: record.attempts, worker: record.worker })
      // not journaled on its own: a restarted submitter treats assigned and running alike
      this.emitTask(record, 'task.running')
    }
    if (msg.progress != null || msg.message != null) {
      if (msg.progress != null && Number.isFinite(msg.progress)) {
        record.progress = msg.progress
      }
      this.emitTask(record, 'task.progress', { progress: record.progress, message: msg.message?.slice(0, 1024) })
    }
  }

  /** A signed batch of results from a worker: one signature check, then each result on its own */
  private async onResult (worker: PeerId, msg: Control): Promise<void> {
    if (msg.record == null) {
      this.drop('malformed')
      return
    }
    // a busy journal writes in batches, and results come in batches too: this is for a task at a time
    if (!this.journal.busy) {
      const single = this.singleResult(worker, msg.record)
      if (single != null) {
        await this.onSingleResult(worker, single)
        return
      }
    }
    let batch: ResultBatch
    try {
      const opened = await openRecord(msg.record, this.domains.result)
      if (!opened.signer.equals(worker)) {
        this.drop('badSignature')
        return
      }
      batch = ResultBatch.decode(opened.payload, { limits: { results: C.RESULT_BATCH_COUNT } })
    } catch (err: any) {
      this.drop(err?.name === 'InvalidSignatureError' ? 'badSignature' : 'malformed')
      return
    }
    await Promise.all(batch.results.map(async result => {
      if (!uint8ArrayEquals(result.submitter, this.ownId) || result.taskId.length === 0) {
        this.drop('malformed')
        return
      }
      if (!resultWithinLimits(result, this.opts.maxOutputBytes)) {
        this.drop('oversize')
        return
      }
      await this.onOneResult(worker, result)
    }))
  }

  /**
   * The one successful result a batch holds, for a task leased to its
   * sender, read before the signature is checked; undefined for anything else
   */
  private singleResult (worker: PeerId, bytes: Uint8Array): { read: ReadRecord, result: Result } | undefined {
    try {
      const read = readRecord(bytes)
      const { envelope, signer } = read
      if (signer == null || !signer.peerId.equals(worker) || this.badSigners.has(worker.toString())) {
        return undefined
      }
      const batch = ResultBatch.decode(envelope.payload, { limits: { results: 1 } })
      const result = batch.results[0]
      if (batch.results.length !== 1 || !result.ok || !uint8ArrayEquals(result.submitter, this.ownId) || !resultWithinLimits(result, this.opts.maxOutputBytes)) {
        return undefined
      }
      return this.leaseHolder(this.records.get(result.taskId), worker, result.attempt) ? { read, result } : undefined
    } catch {
      return undefined
    }
  }

  /**
   * One result, the case of a task at a time: the record as received is
   * written to the journal (staged, on the datastore's threads) while its
   * signature is checked here, so the task is completed once both are done
   * rather than one after the other. Its own journal entry follows in the
   * background; after a crash in between, `resume()` completes it from the
   * staged record.
   */
  private async onSingleResult (worker: PeerId, { read, result }: { read: ReadRecord, result: Result }): Promise<void> {
    // the datastore takes the write before this thread turns to the signature
    const staged = this.journal.stageResult(result.taskId, result.attempt, read.bytes)
    try {
      await openRecord(read, this.domains.result)
    } catch (err: any) {
      this.drop(err?.name === 'InvalidSignatureError' ? 'badSignature' : 'malformed')
      // a peer that sent one gets its records checked before anything is written for them
      this.badSigners.add(worker.toString())
      if (this.badSigners.size > C.MAX_BAD_SIGNERS) {
        this.badSigners.delete(this.badSigners.values().next().value as string)
      }
      // deleted once written, not before
      await staged.catch(() => {})
      this.journal.discardStaged(result.taskId, result.attempt)
      return
    }
    let durable = true
    try {
      await staged
    } catch (err: any) {
      this.log.error('journal write failed for the result of %s - %e', result.taskId, err)
      durable = false
    }
    // a result that did not complete its task (it was a duplicate, the lease moved on meanwhile, …)
    // leaves no staged copy behind
    if (!await this.onOneResult(worker, result, durable)) {
      this.journal.discardStaged(result.taskId, result.attempt)
    }
  }

  /**
   * Takes one result; resolves to whether it completed its task. `staged`: the
   * result record is in the journal already (see `onSingleResult`).
   */
  private async onOneResult (worker: PeerId, result: Result, staged = false): Promise<boolean> {
    // nothing waits for an acknowledgement but the worker's copy of the result: it rides with the next message
    const ack = (reason?: string): void => {
      if (this.started) {
        this.channels.sendLazy(worker, { type: Control.Type.ACK, taskId: result.taskId, attempt: result.attempt, leaseMs: 0, free: 0, reason }, C.ACK_DELAY_MS)
      }
    }
    const record = this.records.get(result.taskId)
    if (record == null) {
      this.drop('unknownTask')
      ack('unknown task')
      return false
    }
    if (record.state === 'completed' && record.worker === worker.toString() && record.attempts === result.attempt) {
      this.drop('duplicate')
      ack('duplicate')
      return false
    }
    if (!this.leaseHolder(record, worker, result.attempt)) {
      this.drop('notAssigned')
      ack('not assigned to you')
      return false
    }
    if (!result.ok) {
      const code = result.code != null ? `${result.code}: ` : ''
      this.failAttempt(record, `${code}${result.error ?? 'failed'}`.slice(0, 2048))
      ack()
      return false
    }
    let output: unknown
    try {
      output = result.output == null ? null : decodeJson(result.output)
    } catch {
      this.failAttempt(record, 'malformed output: not JSON')
      ack()
      return false
    }
    this.complete(record, output)
    this.preferWorker(worker)
    if (staged) {
      // the staged result makes the completion durable; the record follows, and the staged copy goes with it
      this.save(record, { unstage: result.attempt })
    } else {
      this.settling.add(record.id)
      try {
        await this.journal.save(record)
      } catch (err: any) {
        this.log.error('journal write failed for %s - %e', record.id, err)
      } finally {
        this.settling.delete(record.id)
      }
    }
    ack()
    this.emitTask(record, 'task.completed', { result: output })
    this.onChildEnded(record)
    return true
  }

  /**
   * A worker that has just delivered a result is first in line for the next
   * task of each kind it has an open offer for: a task at a time keeps going
   * to the same worker, whose code and data are still warm, while tasks
   * assigned together still rotate over the workers (`assignFromCredit`)
   */
  private preferWorker (worker: PeerId): void {
    for (const list of this.credits.values()) {
      const i = list.findIndex(c => c.worker.equals(worker))
      if (i > 0) {
        list.unshift(...list.splice(i, 1))
      }
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
    this.pushHistory(record, { at: now, state: 'completed', attempt: record.attempts, worker: record.worker })
    this.active.delete(record.id)
    this.failedWorkers.delete(record.id)
    this.assignSent.delete(record.id)
    this.count('completed')
    this.retire(record, now)
  }

  /**
   * A task has ended: it is forgotten `retainMs` later, or sooner when more
   * than `maxRetained` have ended since. The inputs of a map task go with
   * their parent (which needs them until it ends), not on their own.
   */
  private retire (record: TaskRecord, at: number): void {
    if (record.parent != null) {
      return
    }
    this.finished.set(record.id, at)
    for (let i = 0; i < (record.children ?? 0); i++) {
      this.finished.set(`${record.id}.${i}`, at)
    }
  }

  /** Forget the finished tasks whose time is up, oldest first */
  private forgetFinished (now: number): void {
    for (const [id, at] of this.finished) {
      if (now - at <= this.opts.retainMs && this.finished.size <= this.opts.maxRetained) {
        return
      }
      this.finished.delete(id)
      this.records.delete(id)
      this.journal.removeInBackground(id)
    }
  }

  private failAttempt (record: TaskRecord, reason: string): void {
    if (isTerminal(record.state) || isPending(record.state)) {
      return
    }
    const now = Date.now()
    const worker = record.worker
    this.count('failedAttempts')
    if (worker != null) {
      let failed = this.failedWorkers.get(record.id)
      if (failed == null) {
        failed = new Map()
        this.failedWorkers.set(record.id, failed)
      }
      failed.set(worker, now)
      // tell the worker to stop, in case it is still running the attempt
      this.reply(peerIdFromString(worker), { type: Control.Type.CANCEL, taskId: record.id, attempt: record.attempts, reason })
    }
    record.state = 'failed'
    record.error = reason
    record.leaseUntil = undefined
    this.assignSent.delete(record.id)
    this.pushHistory(record, { at: now, state: 'failed', attempt: record.attempts, worker, reason })
    this.emitTask(record, 'task.failed', { reason })
    if (record.attempts >= record.maxAttempts) {
      const reasons = record.history.filter(h => h.state === 'failed').map(h => `#${h.attempt}: ${h.reason ?? 'failed'}`)
      this.endTask(record, 'dead', `dead after ${record.attempts} attempts (${reasons.join('; ')})`)
      return
    }
    record.notBefore = now + backoffDelay(record.attempts, this.opts.backoffMs, this.opts.maxBackoffMs)
    this.save(record)
  }

  /** Move a task to a terminal state other than completed */
  private endTask (record: TaskRecord, state: 'dead' | 'canceled', reason: string, notifyParent = true): void {
    if (isTerminal(record.state)) {
      return
    }
    const now = Date.now()
    if (isLeased(record.state) && record.worker != null) {
      this.reply(peerIdFromString(record.worker), { type: Control.Type.CANCEL, taskId: record.id, attempt: record.attempts, reason })
    }
    assertTransition(record.state, state)
    this.unready(record)
    record.state = state
    record.error = reason
    record.leaseUntil = undefined
    this.pushHistory(record, { at: now, state, attempt: record.attempts, worker: record.worker, reason })
    this.active.delete(record.id)
    this.failedWorkers.delete(record.id)
    this.assignSent.delete(record.id)
    this.count(state === 'dead' ? 'dead' : 'canceled')
    this.retire(record, now)
    this.save(record)
    this.emitTask(record, state === 'dead' ? 'task.dead' : 'task.canceled', { reason })
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
    const results: unknown[] = []
    for (let i = 0; i < parent.children; i++) {
      const child = this.records.get(`${parent.id}.${i}`)
      if (child == null) {
        this.endTask(parent, 'dead', `input ${i}: missing from the journal`)
        return
      }
      if (child.state === 'dead' || child.state === 'canceled') {
        for (let j = 0; j < parent.children; j++) {
          const other = this.records.get(`${parent.id}.${j}`)
          if (other != null && !isTerminal(other.state)) {
            this.endTask(other, 'canceled', `input ${i} of the map task failed`, false)
          }
        }
        this.endTask(parent, 'dead', `input ${i}: ${child.error ?? child.state}`)
        return
      }
      if (child.state !== 'completed' || this.settling.has(child.id)) {
        // a child still being journaled settles its parent once it has been
        return
      }
      results.push(child.result)
    }
    const now = Date.now()
    parent.state = 'completed'
    parent.result = results
    this.pushHistory(parent, { at: now, state: 'completed', attempt: 0 })
    this.active.delete(parent.id)
    this.count('completed')
    this.retire(parent, now)
    this.save(parent)
    this.emitTask(parent, 'task.completed', { result: results })
  }

  private sweep (): void {
    const now = Date.now()
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
      if (isPending(record.state) && !this.isReady(record) && (record.notBefore ?? 0) <= now) {
        this.markReady(record)
        this.announce(record)
      }
    }
    this.announceReady(false)
    this.worker.sweep(now)
    this.forgetFinished(now)
  }

  private readonly onSubscriptionChange = (evt: CustomEvent<{ peerId: PeerId, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    const change = evt.detail.subscriptions.find(s => s.topic === this.tasksTopic)
    if (change == null) {
      return
    }
    const peer = evt.detail.peerId.toString()
    if (!change.subscribe) {
      if (this.agents.delete(peer)) {
        this.emitEvent({ type: 'agent.left', peer }, false)
      }
      return
    }
    if (!this.agents.has(peer)) {
      this.agents.add(peer)
      this.emitEvent({ type: 'agent.joined', peer }, false)
    }
    // a new worker may have appeared: announce what is waiting, once things settle
    clearTimeout(this.reannounceTimer)
    this.reannounceTimer = setTimeout(() => { this.announceReady(true) }, 50)
  }

  private readonly onPeerDisconnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail
    if (this.components.connectionManager.getConnections(peer).length > 0) {
      return
    }
    const key = peer.toString()
    for (const [kind, list] of this.credits) {
      const kept = list.filter(c => !c.worker.equals(peer))
      if (kept.length === 0) {
        this.credits.delete(kind)
      } else {
        this.credits.set(kind, kept)
      }
    }
    if (this.agents.delete(key)) {
      this.emitEvent({ type: 'agent.left', peer: key }, false)
    }
    for (const id of [...this.active]) {
      const record = this.records.get(id)
      if (record != null && isLeased(record.state) && record.worker === key) {
        this.failAttempt(record, 'worker lost (disconnected)')
      }
    }
  }

  private onFetch (worker: PeerId, msg: Control): void {
    const record = this.records.get(msg.taskId)
    if (!this.leaseHolder(record, worker, msg.attempt) || record?.payload == null) {
      this.drop(record == null ? 'unknownTask' : 'notAssigned')
      this.reply(worker, { type: Control.Type.PAYLOAD, taskId: msg.taskId, attempt: msg.attempt, reason: 'not assigned to you' })
      return
    }
    this.reply(worker, { type: Control.Type.PAYLOAD, taskId: msg.taskId, attempt: msg.attempt, payload: record.payload })
  }

  // ------------------------------------------------------------------ dispatch

  private onControl (peer: PeerId, msg: Control): void {
    if (!this.started) {
      return
    }
    if (!controlWithinLimits(msg)) {
      this.drop('oversize')
      return
    }
    switch (msg.type) {
      case Control.Type.ANNOUNCE:
        if (msg.record == null) {
          this.drop('malformed')
          return
        }
        this.worker.onAnnounceRecord(msg.record, peer).catch(err => { this.log.error('announce handling failed - %e', err) })
        return
      case Control.Type.OFFER: this.onOffer(peer, msg); return
      case Control.Type.ASSIGN: this.worker.onAssign(peer, msg); return
      case Control.Type.DECLINE: this.worker.onDecline(peer, msg); return
      case Control.Type.PROGRESS: this.onProgress(peer, msg); return
      case Control.Type.RESULT:
        this.onResult(peer, msg).catch(err => { this.log.error('result handling failed - %e', err) })
        return
      case Control.Type.ACK: this.worker.onAck(peer, msg); return
      case Control.Type.CANCEL: this.worker.onCancel(peer, msg); return
      case Control.Type.FETCH: this.onFetch(peer, msg); return
      case Control.Type.PAYLOAD: this.worker.onPayload(peer, msg); return
      default:
        this.drop('malformed')
    }
  }

  private reply (peer: PeerId, msg: Partial<Control> & { type: Control.Type, taskId: string }): void {
    if (!this.started) {
      return
    }
    this.channels.send(peer, { attempt: 0, leaseMs: 0, free: 0, ...msg }).catch(err => {
      this.log('message to %p failed - %e', peer, err)
    })
  }

  private readonly onPeerConnect = (evt: CustomEvent<PeerId>): void => {
    this.worker.onPeerConnect(evt.detail)
  }

  private readonly onPubSubMessage = (evt: CustomEvent<{ type: string, topic: string, data: Uint8Array, from?: PeerId }>): void => {
    const msg = evt.detail
    if (msg.topic === this.tasksTopic) {
      this.worker.onAnnounceRecord(msg.data, undefined, msg.from).catch(err => { this.log.error('announce handling failed - %e', err) })
    } else if (msg.topic === this.eventsTopic) {
      this.bus.onMessage(msg.data, msg.from).catch(err => { this.log.error('event handling failed - %e', err) })
    }
  }

  // ------------------------------------------------------------------ events

  private emitTask (record: TaskRecord, type: TaskEvent['type'], extra: Partial<TaskEvent> = {}): void {
    this.emitEvent({
      type,
      taskId: record.id,
      parent: record.parent,
      state: record.state,
      attempt: record.attempts,
      worker: record.worker,
      ...extra
    })
  }

  private emitEvent (partial: LocalEvent, publish = true): void {
    this.bus.emit(partial, publish)
  }

  private safeDispatch (event: TaskEvent): void {
    try {
      this.safeDispatchEvent('event', { detail: event })
    } catch (err: any) {
      this.log.error('event listener failed - %e', err)
    }
  }

  // ------------------------------------------------------------------ helpers

  private drop (reason: keyof TaskStats['dropped']): void {
    this.dropped.drop(reason)
  }

  private count (what: 'submitted' | 'completed' | 'failedAttempts' | 'dead' | 'canceled'): void {
    this.statsData[what]++
  }

  private pushHistory (record: TaskRecord, entry: HistoryEntry): void {
    if (entry.worker === undefined) {
      delete entry.worker
    }
    if (entry.reason === undefined) {
      delete entry.reason
    }
    record.history.push(entry)
    record.updatedAt = entry.at
  }

  /** Journals the record in the background: nothing waits for these writes (`unstage`: see `Journal.saveInBackground`) */
  private save (record: TaskRecord, options: { unstage?: number } = {}): void {
    this.journal.saveInBackground(record, options).catch(err => { this.log.error('journal write failed for %s - %e', record.id, err) })
  }

  private info (record: TaskRecord): TaskInfo {
    const info: TaskInfo = {
      id: record.id,
      state: record.state,
      attempts: record.attempts,
      maxAttempts: record.maxAttempts,
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      history: record.history.map(h => ({ ...h }))
    }
    const optional = {
      capability: record.capability,
      query: record.query,
      to: record.to,
      parent: record.parent,
      index: record.index,
      children: record.children,
      worker: record.worker,
      result: record.result,
      error: record.error,
      deadline: record.deadline > 0 ? record.deadline : undefined,
      progress: record.progress
    }
    for (const [k, v] of Object.entries(optional)) {
      if (v !== undefined) {
        (info as any)[k] = v
      }
    }
    return info
  }
}
