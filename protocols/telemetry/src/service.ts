import { TypedEventEmitter } from '@libp2p/interface'
import { AlertEvaluator } from './alerts.js'
import { CapabilityStatsRecorder } from './capability-stats.js'
import {
  DEFAULT_FORGET_AFTER_MS, DEFAULT_FULL_EVERY, DEFAULT_INTERVAL_MS, DEFAULT_NETWORK, DEFAULT_WINDOW_INTERVALS,
  LIMITS, telemetryTopic
} from './constants.js'
import { InvalidTelemetryOptionError } from './errors.js'
import { onPath, queryGpus } from './gpu.js'
import { changedEnough, decodeRecord, deltaRecord, encodeRecord, fullRecord, pickNeighbours } from './record.js'
import { TokenBucket } from './rate-limit.js'
import { SystemSampler } from './system.js'
import { NetworkTable, loadFromTelemetry } from './table.js'
import { Tracing } from './traces.js'
import type { AlertThresholds } from './alerts.js'
import type { CapabilityLoad } from './capability-stats.js'
import type { TelemetryRecord } from './pb/telemetry.js'
import type { TraceView } from './traces.js'
import type { NodeEntry, NodeTelemetry, PeerLoad, PeerLoadSource, TelemetryAlert, TelemetryAlertEvent } from './types.js'
import type { ComponentLogger, Connection, Logger, PeerId, Startable } from '@libp2p/interface'

/** gossipsub's validation results (`TopicValidatorResult` of @libp2p/gossipsub) */
type ValidationResult = 'accept' | 'ignore' | 'reject'

/** A gossipsub topic validator as this module writes it */
// typed loosely on return: gossipsub's TopicValidatorResult is an enum of these same strings
export type TelemetryValidator = (peer: PeerId, message: { type: string, from?: PeerId, data: Uint8Array }) => Promise<any>

/** The slice of gossipsub this module uses */
export interface TelemetryPubSub {
  subscribe(topic: string): void
  unsubscribe(topic: string): void
  publish(topic: string, data: Uint8Array, opts?: { floodPublish?: boolean }): Promise<unknown>
  topicValidators: {
    set(topic: string, validator: TelemetryValidator): unknown
    get(topic: string): unknown
    delete(topic: string): unknown
  }
  addEventListener(type: string, listener: any): void
  removeEventListener(type: string, listener: any): void
}

export interface TelemetryComponents {
  peerId: PeerId
  connectionManager: { getConnections(peer?: PeerId): Connection[] }
  pubsub: TelemetryPubSub
  logger: ComponentLogger
  /** libp2p's events: a peer whose last connection closed is judged by its interval, not its heartbeat */
  events?: {
    addEventListener(type: 'peer:connect' | 'peer:disconnect', listener: (evt: CustomEvent<PeerId>) => void): void
    removeEventListener(type: 'peer:connect' | 'peer:disconnect', listener: (evt: CustomEvent<PeerId>) => void): void
  }
}

export interface TelemetryInit {
  /** network id: topic `<network>/2/telemetry` */
  network?: string
  /** sampling and publishing interval, ms (default 5000, at least 250) */
  intervalMs?: number
  /**
   * a full record every this many intervals (default 12): the heartbeat; in
   * between, a delta at an interval where a value moved beyond its threshold
   */
  fullEvery?: number
  /** latency percentiles, rates and alerts cover this many intervals (default 12) */
  windowIntervals?: number
  /** a node silent this long leaves the table, ms (default 10 min) */
  forgetAfterMs?: number
  /** the capabilities this node serves now, with their load */
  capabilities?: () => CapabilityLoad[]
  /** bytes received and sent by the node since it started (counters), if known */
  bytes?: () => { in: number, out: number } | undefined | Promise<{ in: number, out: number } | undefined>
  /** the `nvidia-smi` to run; false: no GPU sampling; default: `nvidia-smi` on PATH, when there */
  nvidiaSmi?: string | false
  alerts?: AlertThresholds
  /** false: sample and keep the table, but send no records (default true) */
  publish?: boolean
  /** software version reported in records */
  version?: string
  /** OTLP/HTTP export of spans */
  otlp?: { endpoint?: string }
}

export interface TelemetryEvents {
  /** an alert of this node was raised or cleared */
  alert: CustomEvent<TelemetryAlertEvent>
  /** this node took a sample */
  sample: CustomEvent<NodeTelemetry>
}

/** Counters of the telemetry traffic of this node */
export interface TelemetryTraffic {
  published: number
  publishedBytes: number
  received: number
  receivedBytes: number
  rejected: number
  ignored: number
}

/**
 * Node telemetry: samples this node every interval, publishes a signed
 * record (a full one every `fullEvery` intervals, in between a delta against
 * it when a value moved beyond its threshold, else nothing) on
 * `<network>/2/telemetry` (the gossipsub message, signed by this node, is the
 * record's signature), keeps the table of the network from the records
 * of others, raises alerts and holds the node's spans.
 */
export class TelemetryService extends TypedEventEmitter<TelemetryEvents> implements Startable, PeerLoadSource {
  readonly network: string
  readonly topic: string
  readonly intervalMs: number
  readonly tracing: Tracing
  readonly traffic: TelemetryTraffic = { published: 0, publishedBytes: 0, received: 0, receivedBytes: 0, rejected: 0, ignored: 0 }
  private readonly components: TelemetryComponents
  private readonly init: TelemetryInit
  private readonly log: Logger
  private readonly table: NetworkTable
  private readonly recorder: CapabilityStatsRecorder
  private readonly alertsEval: AlertEvaluator
  private readonly system = new SystemSampler()
  private readonly fullEvery: number
  private readonly inBucket = new TokenBucket(LIMITS.maxRecordsPerSecond, LIMITS.maxRecordsPerSecond)
  private readonly peerBuckets = new Map<string, { intervalMs: number, bucket: TokenBucket }>()
  private readonly selfId: string
  private nvidiaSmi?: string
  private timer?: ReturnType<typeof setTimeout>
  private running = false
  private seq = 0n
  private sinceFull = 0
  private base?: TelemetryRecord
  /** the last record sent, in full form */
  private sent?: TelemetryRecord
  private fullWanted = true
  private last?: NodeTelemetry
  private lastAt = 0
  private lastBytes?: { in: number, out: number, at: number }

  constructor (components: TelemetryComponents, init: TelemetryInit = {}) {
    super()
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('aistack:telemetry')
    this.network = init.network ?? DEFAULT_NETWORK
    this.topic = telemetryTopic(this.network)
    this.intervalMs = init.intervalMs ?? DEFAULT_INTERVAL_MS
    if (!Number.isInteger(this.intervalMs) || this.intervalMs < LIMITS.minIntervalMs || this.intervalMs > LIMITS.maxIntervalMs) {
      throw new InvalidTelemetryOptionError(`intervalMs must be an integer in ${LIMITS.minIntervalMs}..${LIMITS.maxIntervalMs}`)
    }
    this.fullEvery = init.fullEvery ?? DEFAULT_FULL_EVERY
    if (!Number.isInteger(this.fullEvery) || this.fullEvery < 1) throw new InvalidTelemetryOptionError('fullEvery must be a positive integer')
    // the heartbeat a record declares may be at most LIMITS.maxHeartbeatMs
    this.fullEvery = Math.max(1, Math.min(this.fullEvery, Math.floor(LIMITS.maxHeartbeatMs / this.intervalMs)))
    this.selfId = components.peerId.toString()
    this.table = new NetworkTable({ forgetAfterMs: init.forgetAfterMs ?? DEFAULT_FORGET_AFTER_MS, selfId: this.selfId })
    this.recorder = new CapabilityStatsRecorder(init.windowIntervals ?? DEFAULT_WINDOW_INTERVALS)
    this.alertsEval = new AlertEvaluator(init.alerts)
    this.tracing = new Tracing({ peerId: this.selfId, otlpEndpoint: init.otlp?.endpoint })
  }

  readonly [Symbol.toStringTag] = '@aistack/telemetry'

  isStarted (): boolean {
    return this.running
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.nvidiaSmi = this.init.nvidiaSmi === false ? undefined : (this.init.nvidiaSmi ?? onPath('nvidia-smi'))
    if (this.nvidiaSmi != null) this.log('GPU sampling with %s', this.nvidiaSmi)
  }

  /** Joins the topic once gossipsub has started (services start side by side) */
  async afterStart (): Promise<void> {
    if (!this.running) return
    const pubsub = this.components.pubsub
    pubsub.topicValidators.set(this.topic, this.validate)
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    this.components.events?.addEventListener('peer:disconnect', this.onDisconnect)
    this.components.events?.addEventListener('peer:connect', this.onConnect)
    pubsub.subscribe(this.topic)
    this.system.start()
    this.lastAt = Date.now()
    // the first sample (and full record) goes out at once, then one per interval
    this.schedule(0)
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    clearTimeout(this.timer)
    this.system.stop()
    const pubsub = this.components.pubsub
    pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    this.components.events?.removeEventListener('peer:disconnect', this.onDisconnect)
    this.components.events?.removeEventListener('peer:connect', this.onConnect)
    if (pubsub.topicValidators.get(this.topic) === this.validate) pubsub.topicValidators.delete(this.topic)
    try { pubsub.unsubscribe(this.topic) } catch {}
    await this.tracing.shutdown().catch(err => { this.log.error('trace export shutdown failed - %e', err) })
  }

  private schedule (delayMs: number): void {
    if (!this.running) return
    this.timer = setTimeout(() => {
      this.tick().catch(err => { this.log.error('telemetry sample failed - %e', err) }).finally(() => { this.schedule(this.intervalMs) })
    }, delayMs)
    this.timer.unref?.()
  }

  /** Counts one finished request of a capability served by this node */
  recordRequest (capability: string, latencyMs: number, ok: boolean): void {
    this.recorder.record(capability, latencyMs, ok)
  }

  /** Takes a sample now and publishes it when due (the timer does this every interval) */
  async tick (): Promise<NodeTelemetry> {
    const t = await this.sample()
    this.table.sweep()
    if (this.running && this.init.publish !== false) await this.publish(t)
    return t
  }

  private async sample (): Promise<NodeTelemetry> {
    const now = Date.now()
    const sys = this.system.sample()
    const served = this.init.capabilities?.() ?? []
    const { capabilities, windows } = this.recorder.sample(served, this.intervalMs)
    const gpus = this.nvidiaSmi != null ? await queryGpus(this.nvidiaSmi) : undefined
    const t: NodeTelemetry = {
      timeMs: now,
      intervalMs: this.intervalMs,
      heartbeatMs: this.intervalMs * this.fullEvery,
      ...(this.init.version != null ? { version: this.init.version } : {}),
      ...sys,
      connections: this.components.connectionManager.getConnections().length,
      capabilities,
      alerts: [],
      // the peers it is connected to, at most LIMITS.maxNeighbours: in full records, for the graph of the network
      links: pickNeighbours(this.components.connectionManager.getConnections().map(c => c.remotePeer.toString()))
    }
    const bytes = await Promise.resolve(this.init.bytes?.()).catch(() => undefined)
    if (bytes != null) {
      if (this.lastBytes != null && now > this.lastBytes.at) {
        const secs = (now - this.lastBytes.at) / 1000
        t.bytesInPerSec = Math.max(0, Math.round((bytes.in - this.lastBytes.in) / secs))
        t.bytesOutPerSec = Math.max(0, Math.round((bytes.out - this.lastBytes.out) / secs))
      }
      this.lastBytes = { ...bytes, at: now }
    }
    if (gpus != null) t.gpus = gpus
    for (const alert of this.alertsEval.evaluate(windows, gpus, now)) {
      this.log('alert %s %s: %s', alert.name, alert.active ? 'raised' : 'cleared', alert.message)
      this.emit('alert', { type: 'telemetry.alert', origin: this.selfId, local: true, at: now, alert })
    }
    t.alerts = this.alertsEval.activeNames()
    this.last = t
    this.lastAt = now
    this.emit('sample', t)
    return t
  }

  private async publish (t: NodeTelemetry): Promise<void> {
    const full = fullRecord(t, this.seq + 1n)
    let record = full
    if (this.base == null || this.fullWanted || this.sinceFull + 1 >= this.fullEvery) {
      this.base = full
      this.sinceFull = 0
      this.fullWanted = false
    } else {
      this.sinceFull++
      // nothing moved beyond its threshold: stay silent until the heartbeat
      if (this.sent != null && !changedEnough(this.sent, full)) return
      record = deltaRecord(this.base, full)
    }
    this.seq++
    this.sent = full
    const bytes = encodeRecord(record)
    if (bytes.byteLength > LIMITS.maxRecordBytes) {
      this.log.error('telemetry record of %d bytes is over the limit of %d; not sent', bytes.byteLength, LIMITS.maxRecordBytes)
      return
    }
    try {
      // to the mesh only, not flooded to every subscriber: the mesh carries it to all anyway
      await this.components.pubsub.publish(this.topic, bytes, { floodPublish: false })
      this.traffic.published++
      this.traffic.publishedBytes += bytes.byteLength
    } catch (err) {
      this.log('telemetry record not published - %e', err)
    }
  }

  /** gossipsub topic validator: checks, rate-limits and applies a record before it is forwarded */
  private readonly validate = async (_peer: PeerId, msg: { type: string, from?: PeerId, data: Uint8Array }): Promise<ValidationResult> => {
    const result = await this.receive(msg)
    if (result === 'reject') this.traffic.rejected++
    else if (result === 'ignore') this.traffic.ignored++
    return result
  }

  private async receive (msg: { type: string, from?: PeerId, data: Uint8Array }): Promise<ValidationResult> {
    if (msg.type !== 'signed' || msg.from == null) return 'reject'
    if (msg.data.byteLength > LIMITS.maxRecordBytes) return 'reject'
    const from = msg.from.toString()
    if (from === this.selfId) return 'ignore'
    if (!this.inBucket.take()) return 'ignore'
    const bucket = this.bucketOf(from)
    if (!bucket.bucket.take()) return 'ignore'
    let record: TelemetryRecord
    try {
      // gossipsub checked the author's signature (StrictSign) before this validator runs:
      // the record is the author's own
      record = decodeRecord(msg.data)
    } catch (err) {
      this.log('rejected a telemetry record from %s - %e', from, err)
      return 'reject'
    }
    this.traffic.received++
    this.traffic.receivedBytes += msg.data.byteLength
    const applied = this.table.accept(from, record)
    if (applied !== 'applied') return 'ignore'
    // the bucket follows the interval the node declares (a new one only when that changes)
    const interval = Math.max(LIMITS.minIntervalMs, record.intervalMs)
    if (bucket?.intervalMs !== interval) this.peerBuckets.set(from, { intervalMs: interval, bucket: new TokenBucket(LIMITS.maxRecordsPerInterval, LIMITS.maxRecordsPerInterval * 1000 / interval) })
    return 'accept'
  }

  private bucketOf (peer: string): { intervalMs: number, bucket: TokenBucket } {
    let b = this.peerBuckets.get(peer)
    if (b == null) {
      if (this.peerBuckets.size >= LIMITS.maxNodes * 2) this.peerBuckets.clear()
      // until a node's first record says its interval, the shortest one allowed
      b = { intervalMs: LIMITS.minIntervalMs, bucket: new TokenBucket(LIMITS.maxRecordsPerInterval, LIMITS.maxRecordsPerInterval * 1000 / LIMITS.minIntervalMs) }
      this.peerBuckets.set(peer, b)
    }
    return b
  }

  private readonly onSubscriptionChange = (evt: CustomEvent<{ peerId: PeerId, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    // a newcomer gets a full record next time: it may not hear from this node again
    // until the heartbeat (a peer that reconnects gets one too: it cannot be told apart
    // from a newcomer whose records came before its subscription)
    if (evt.detail.subscriptions.some(s => s.topic === this.topic && s.subscribe)) this.fullWanted = true
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.table.disconnected(evt.detail.toString())
  }

  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    this.table.connected(evt.detail.toString())
  }

  private emit<K extends keyof TelemetryEvents> (type: K, detail: TelemetryEvents[K]['detail']): void {
    try {
      this.dispatchEvent(new CustomEvent(type, { detail }))
    } catch (err) {
      this.log.error('a %s listener threw - %e', type, err)
    }
  }

  /** This node's row (its last sample) */
  self (): NodeEntry {
    return {
      peerId: this.selfId,
      status: 'up',
      lastSeenMs: this.last == null ? 0 : Math.max(0, Date.now() - this.lastAt),
      self: true,
      complete: this.last != null,
      telemetry: this.last ?? { timeMs: Date.now(), intervalMs: this.intervalMs, capabilities: [], alerts: [] }
    }
  }

  /** Every node of the table, this node first */
  nodes (): NodeEntry[] {
    return [this.self(), ...this.table.entries().filter(e => e.peerId !== this.selfId).sort((a, b) => a.peerId.localeCompare(b.peerId))]
  }

  /** One node's row, or undefined when it is not in the table */
  node (peerId: string): NodeEntry | undefined {
    return peerId === this.selfId ? this.self() : this.table.get(peerId)
  }

  /**
   * What anycast scoring can read about a peer: load, p95 latency, error rate
   * and liveness from its last record; undefined when it has sent none.
   */
  loadOf (peerId: PeerId | string): PeerLoad | undefined {
    const entry = this.node(peerId.toString())
    return entry == null ? undefined : loadFromTelemetry(entry)
  }

  /** The active alerts of this node */
  alerts (): TelemetryAlert[] {
    return this.alertsEval.list()
  }

  /** The spans of a trace this node holds */
  trace (traceId: string): TraceView | undefined {
    return this.tracing.store.get(traceId)
  }
}

/**
 * The telemetry service of a node, in the js-libp2p service shape; needs
 * the `pubsub` service (gossipsub) in the same node.
 */
export function telemetry (init: TelemetryInit = {}): (components: TelemetryComponents) => TelemetryService {
  return (components) => new TelemetryService(components, init)
}
