import * as C from './constants.js'
import { EVENT_DECODE_LIMITS, eventWithinLimits } from './limits.js'
import { EventBatch } from './pb/task.js'
import { ReplayWindow } from './replay-window.js'
import { openRecord, sealRecord } from './signing.js'
import type { DropReason } from './counters.js'
import type { Event as EventPb } from './pb/task.js'
import type { TaskEvent } from './types.js'
import type { CounterGroup, Logger, PeerId, PrivateKey } from '@libp2p/interface'

/** The slice of gossipsub the event bus uses */
export interface EventsPubSub {
  subscribe(topic: string): void
  unsubscribe(topic: string): void
  publish(topic: string, data: Uint8Array): Promise<unknown>
  getSubscribers(topic: string): PeerId[]
}

export interface EventBusInit {
  self: PeerId
  privateKey: PrivateKey
  pubsub: EventsPubSub
  /** the events topic */
  topic: string
  /** signature domain of event batches */
  domain: string
  /** sign and publish local events */
  publish: boolean
  /** receive other nodes' events: always, never, or while `listeners()` > 0 */
  subscribe: boolean | 'on-demand'
  maxRecordAgeMs: number
  log: Logger
  /** `aistack_task_lifecycle_total{event}` */
  lifecycleMetric?: CounterGroup
  /** hands an event, local or remote, to the service's listeners */
  deliver(event: TaskEvent): void
  /** how many listeners the service has for events */
  listeners(): number
  drop(reason: DropReason): void
}

export type LocalEvent = Omit<TaskEvent, 'origin' | 'local' | 'at'> & { at?: number }

const EVENT_TYPES: ReadonlySet<string> = new Set(['task.created', 'task.assigned', 'task.running', 'task.progress', 'task.completed', 'task.failed', 'task.dead', 'task.canceled', 'agent.joined', 'agent.left'])

/**
 * The event bus: lifecycle events of this node go to its listeners, and,
 * signed in batches every `EVENT_FLUSH_MS`, to the events topic when
 * someone there listens; other nodes' signed events are checked (signer,
 * age, replay) and handed to the listeners with `local: false`. It
 * subscribes to the topic while events are wanted (`subscribe`).
 */
export class EventBus {
  private readonly init: EventBusInit
  private readonly replays: ReplayWindow
  private queue: EventPb[] = []
  private flushTimer?: ReturnType<typeof setTimeout>
  private seq = BigInt(Date.now()) * 1000n
  private started = false
  private subscribed = false
  /** signed batches published */
  batches = 0

  constructor (init: EventBusInit) {
    this.init = init
    this.replays = new ReplayWindow(init.maxRecordAgeMs)
  }

  /** whether this node is subscribed to the events topic */
  get isSubscribed (): boolean {
    return this.subscribed
  }

  start (): void {
    this.started = true
    this.updateSubscription()
  }

  /** Publishes what is queued and leaves the topic */
  stop (): void {
    this.started = false
    this.flush()
    if (this.subscribed) {
      try {
        this.init.pubsub.unsubscribe(this.init.topic)
      } catch {}
    }
    this.subscribed = false
  }

  /** Subscribe to the events topic when events are wanted (always, or while someone listens) */
  updateSubscription (): void {
    if (!this.started) {
      return
    }
    const want = this.init.subscribe === 'on-demand' ? this.init.listeners() > 0 : this.init.subscribe
    if (want === this.subscribed) {
      return
    }
    this.subscribed = want
    if (want) {
      this.init.pubsub.subscribe(this.init.topic)
    } else {
      this.init.pubsub.unsubscribe(this.init.topic)
    }
  }

  /** A local event: to the listeners, and (`publish`, and not `task.running`) to the topic */
  emit (partial: LocalEvent, publish = true): void {
    const event = { origin: this.init.self.toString(), local: true, at: Date.now() } as TaskEvent
    // fields that are undefined are left out (events are serialised as they are)
    for (const k in partial) {
      const value = partial[k as keyof typeof partial]
      if (value !== undefined) {
        (event as any)[k] = value
      }
    }
    this.init.lifecycleMetric?.increment({ [event.type]: true })
    this.init.deliver(event)
    if (publish && this.init.publish && event.type !== 'task.running') {
      this.publish(event)
    }
  }

  private publish (event: TaskEvent): void {
    // nobody subscribed: nobody to sign and send them for
    if (this.init.pubsub.getSubscribers(this.init.topic).length === 0) {
      return
    }
    const { type, taskId, at, origin, local, result, ...data } = event
    this.queue.push({
      type,
      taskId,
      at: BigInt(at),
      seq: ++this.seq,
      data: Object.keys(data).length > 0 ? JSON.stringify(data) : undefined
    })
    if (this.queue.length >= 256) {
      this.flush()
    } else {
      this.flushTimer ??= setTimeout(() => { this.flush() }, C.EVENT_FLUSH_MS)
    }
  }

  /** Sign the queued events as one batch and publish it */
  flush (): void {
    clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    const events = this.queue
    this.queue = []
    if (events.length === 0) {
      return
    }
    this.batches++
    sealRecord(this.init.privateKey, this.init.domain, EventBatch.encode({ events }))
      .then(async bytes => this.init.pubsub.publish(this.init.topic, bytes))
      .catch(err => { this.init.log.trace('publishing events failed - %e', err) })
  }

  /** A signed batch of events from the topic (`publisher`: who gossip says published it) */
  async onMessage (bytes: Uint8Array, publisher?: PeerId): Promise<void> {
    if (!this.subscribed) {
      return
    }
    if (bytes.byteLength > C.MAX_EVENT_BATCH_BYTES) {
      this.init.drop('oversize')
      return
    }
    let origin: PeerId
    let batch: EventBatch
    try {
      const opened = await openRecord(bytes, this.init.domain)
      origin = opened.signer
      batch = EventBatch.decode(opened.payload, { limits: EVENT_DECODE_LIMITS })
    } catch (err: any) {
      this.init.drop(err?.name === 'InvalidSignatureError' ? 'badSignature' : 'malformed')
      return
    }
    if (publisher != null && !publisher.equals(origin)) {
      this.init.drop('badSignature')
      return
    }
    for (const pb of batch.events) {
      if (!eventWithinLimits(pb)) {
        this.init.drop('oversize')
        continue
      }
      const event = this.decode(origin, pb)
      if (event != null) {
        this.init.deliver(event)
      }
    }
  }

  private decode (origin: PeerId, pb: EventPb): TaskEvent | undefined {
    const at = Number(pb.at)
    if (!this.replays.fresh(at)) {
      this.init.drop('replayed')
      return
    }
    if (this.replays.seenBefore(`e/${origin.toString()}/${pb.seq}`, at)) {
      this.init.drop('replayed')
      return
    }
    if (!EVENT_TYPES.has(pb.type)) {
      this.init.drop('malformed')
      return
    }
    let data: Record<string, unknown> = {}
    if (pb.data != null) {
      try {
        const parsed = JSON.parse(pb.data)
        if (parsed != null && typeof parsed === 'object' && !Array.isArray(parsed)) {
          data = parsed
        }
      } catch {
        this.init.drop('malformed')
        return
      }
    }
    const event: TaskEvent = { type: pb.type as TaskEvent['type'], origin: origin.toString(), local: false, at }
    if (pb.taskId != null) {
      event.taskId = pb.taskId
    }
    for (const k of ['parent', 'state', 'worker', 'reason', 'message', 'peer'] as const) {
      if (typeof data[k] === 'string') {
        (event as any)[k] = data[k]
      }
    }
    for (const k of ['attempt', 'progress'] as const) {
      if (typeof data[k] === 'number') {
        (event as any)[k] = data[k]
      }
    }
    return event
  }
}
