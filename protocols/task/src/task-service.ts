import { TypedEventEmitter } from '@libp2p/interface'
import { Channels } from './channel.js'
import * as C from './constants.js'
import { DropCounter } from './counters.js'
import { NotStartedError } from './errors.js'
import { EventBus } from './event-bus.js'
import { Journal } from './journal.js'
import { clamp, controlWithinLimits } from './limits.js'
import { Control } from './pb/task.js'
import { Submitter } from './submitter.js'
import { Worker } from './worker.js'
import type { DropReason } from './counters.js'
import type { ResolveQuery } from './requests.js'
import type { SubmitRequest, TaskEvent, TaskExecutor, TaskInfo, TaskState, TaskStats, TaskTracer } from './types.js'
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
  resolveQuery?: ResolveQuery
  /** traces tasks submitted with a traceparent, on the submitter and on the worker (docs/protocols/telemetry.md) */
  tracer?: TaskTracer
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

/**
 * A durable work queue without a server, composed of its roles (each a
 * class of its own file, see docs/protocols/task.md): the `Submitter` (with
 * its `Dispatcher` and `ResultIntake`) owns this node's tasks, the `Worker`
 * (with its `ResultOutbox`) runs other nodes' tasks with the executor, the
 * `EventBus` carries lifecycle events, and the wire is `Channels` (control
 * frames) and gossipsub. This class wires them: it routes control frames
 * and topic messages to the role they are for, runs the sweep, and keeps
 * the public API.
 */
export class TaskService extends TypedEventEmitter<TaskQueueEvents> {
  readonly protocol: string
  readonly tasksTopic: string
  readonly eventsTopic: string
  /** signature domains of announcements, results and events on this network */
  readonly domains: { task: string, result: string, event: string }

  private readonly components: TaskQueueComponents
  private readonly log: Logger
  private readonly opts: Required<Omit<TaskQueueInit, 'network' | 'executor' | 'resolveQuery' | 'tracer'>>
  private readonly journal: Journal
  private readonly channels: Channels
  private readonly dropped: DropCounter
  private readonly submitter: Submitter
  private readonly worker: Worker
  private readonly bus: EventBus
  /** peers seen on the tasks topic */
  private readonly agents = new Set<string>()
  private started = false
  private sweepTimer?: ReturnType<typeof setInterval>
  private reannounceTimer?: ReturnType<typeof setTimeout>

  constructor (components: TaskQueueComponents, init: TaskQueueInit = {}) {
    super()
    const network = init.network ?? C.DEFAULT_NETWORK
    this.components = components
    this.log = components.logger.forComponent('aistack:task')
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
    this.dropped = new DropCounter(components.metrics)
    const drop = (reason: DropReason, n?: number): void => { this.dropped.drop(reason, n) }
    this.channels = new Channels({
      self: components.peerId,
      protocol: this.protocol,
      maxFrameBytes: Math.max(this.opts.maxPayloadBytes, this.opts.maxOutputBytes) + 64 * 1024,
      connectionManager: components.connectionManager,
      log: this.log,
      onMessage: (peer, message) => { this.onControl(peer, message) },
      onBadFrame: (_peer, reason) => { drop(reason) }
    })
    const isStarted = (): boolean => this.started
    this.worker = new Worker({
      self: components.peerId,
      privateKey: components.privateKey,
      executor: init.executor,
      tracer: init.tracer,
      channels: this.channels,
      isConnected: (peer) => components.connectionManager.getConnections(peer).length > 0,
      domains: this.domains,
      options: this.opts,
      log: this.log,
      drop
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
      drop
    })
    this.submitter = new Submitter({
      self: components.peerId,
      privateKey: components.privateKey,
      domains: this.domains,
      journal: this.journal,
      channels: this.channels,
      publish: async (data) => components.pubsub.publish(this.tasksTopic, data),
      localWorker: init.executor != null,
      considerLocally: (body) => { this.worker.considerAnnounce(components.peerId, body) },
      reply: (peer, msg) => { this.reply(peer, msg) },
      emit: (event) => { this.bus.emit(event) },
      resolveQuery: init.resolveQuery,
      tracer: init.tracer,
      isStarted,
      options: this.opts,
      log: this.log,
      drop
    })
  }

  readonly [Symbol.toStringTag] = '@aistack/task'

  isStarted (): boolean {
    return this.started
  }

  /** workers whose result signature failed on the staged path (see `ResultIntake`) */
  private get badSigners (): ReadonlySet<string> {
    return this.submitter.intake.badSigners
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
    await this.submitter.resume()
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
    this.bus.emit({ type: 'agent.joined' })
    this.submitter.dispatcher.announceReady(true)
  }

  async stop (): Promise<void> {
    if (!this.started) {
      return
    }
    this.bus.emit({ type: 'agent.left' })
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
    // nothing more is announced; what the submitter knows is forgotten once the journal is written
    this.submitter.dispatcher.stop()
    this.bus.stop()
    await this.components.registrar.unhandle(this.protocol)
    this.channels.closeAll()
    await this.journal.flush()
    this.submitter.stop()
    this.agents.clear()
  }

  // ------------------------------------------------------------------ public API

  /**
   * Submit a task (or a map task, with `inputs`): resolves once it is in the
   * journal. Throws `NotStartedError`, `InvalidTaskError`, `PayloadTooLargeError`.
   */
  async submit (req: SubmitRequest): Promise<{ id: string, state: TaskState }> {
    if (!this.started) {
      throw new NotStartedError('the task service is not started')
    }
    return this.submitter.submit(req)
  }

  /** A task of this node; throws `TaskNotFoundError` */
  get (id: string): TaskInfo {
    return this.submitter.get(id)
  }

  /** This node's tasks, oldest first (`limit`: the newest so many) */
  list (options: { state?: TaskState, parent?: string, limit?: number } = {}): TaskInfo[] {
    return this.submitter.list(options)
  }

  /** Cancel a task (a map task with its children); throws `TaskNotFoundError` */
  async cancel (id: string, reason = 'canceled by the submitter'): Promise<TaskInfo> {
    return this.submitter.cancel(id, reason)
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
    return {
      ...this.submitter.stats(),
      executed: this.worker.executed,
      offersSent: this.worker.offersSent,
      eventBatches: this.bus.batches,
      dropped: this.dropped.snapshot()
    }
  }

  // ------------------------------------------------------------------ wiring

  private sweep (): void {
    const now = Date.now()
    this.submitter.sweep(now)
    this.worker.sweep(now)
  }

  /** A control frame: to the role it is for (the submitter's or the worker's side of the protocol) */
  private onControl (peer: PeerId, msg: Control): void {
    if (!this.started) {
      return
    }
    if (!controlWithinLimits(msg)) {
      this.dropped.drop('oversize')
      return
    }
    switch (msg.type) {
      case Control.Type.ANNOUNCE:
        if (msg.record == null) {
          this.dropped.drop('malformed')
          return
        }
        this.worker.onAnnounceRecord(msg.record, peer).catch(err => { this.log.error('announce handling failed - %e', err) })
        return
      case Control.Type.OFFER: this.submitter.dispatcher.onOffer(peer, msg); return
      case Control.Type.ASSIGN: this.worker.onAssign(peer, msg); return
      case Control.Type.DECLINE: this.worker.onDecline(peer, msg); return
      case Control.Type.PROGRESS: this.submitter.onProgress(peer, msg); return
      case Control.Type.RESULT:
        this.submitter.intake.onResult(peer, msg).catch(err => { this.log.error('result handling failed - %e', err) })
        return
      case Control.Type.ACK: this.worker.onAck(peer, msg); return
      case Control.Type.CANCEL: this.worker.onCancel(peer, msg); return
      case Control.Type.FETCH: this.submitter.onFetch(peer, msg); return
      case Control.Type.PAYLOAD: this.worker.onPayload(peer, msg); return
      default:
        this.dropped.drop('malformed')
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

  private readonly onPubSubMessage = (evt: CustomEvent<{ type: string, topic: string, data: Uint8Array, from?: PeerId }>): void => {
    const msg = evt.detail
    if (msg.topic === this.tasksTopic) {
      this.worker.onAnnounceRecord(msg.data, undefined, msg.from).catch(err => { this.log.error('announce handling failed - %e', err) })
    } else if (msg.topic === this.eventsTopic) {
      this.bus.onMessage(msg.data, msg.from).catch(err => { this.log.error('event handling failed - %e', err) })
    }
  }

  private readonly onSubscriptionChange = (evt: CustomEvent<{ peerId: PeerId, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    const change = evt.detail.subscriptions.find(s => s.topic === this.tasksTopic)
    if (change == null) {
      return
    }
    const peer = evt.detail.peerId.toString()
    if (!change.subscribe) {
      if (this.agents.delete(peer)) {
        this.bus.emit({ type: 'agent.left', peer }, false)
      }
      return
    }
    if (!this.agents.has(peer)) {
      this.agents.add(peer)
      this.bus.emit({ type: 'agent.joined', peer }, false)
    }
    // a new worker may have appeared: announce what is waiting, once things settle
    clearTimeout(this.reannounceTimer)
    this.reannounceTimer = setTimeout(() => { this.submitter.dispatcher.announceReady(true) }, 50)
  }

  private readonly onPeerDisconnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail
    if (this.components.connectionManager.getConnections(peer).length > 0) {
      return
    }
    if (this.agents.delete(peer.toString())) {
      this.bus.emit({ type: 'agent.left', peer: peer.toString() }, false)
    }
    this.submitter.workerLost(peer)
  }

  private readonly onPeerConnect = (evt: CustomEvent<PeerId>): void => {
    this.worker.onPeerConnect(evt.detail)
  }

  private safeDispatch (event: TaskEvent): void {
    try {
      this.safeDispatchEvent('event', { detail: event })
    } catch (err: any) {
      this.log.error('event listener failed - %e', err)
    }
  }
}
