import {
  DEFAULT_BATCH_CONCURRENCY, DEFAULT_COMPRESS_THRESHOLD, DEFAULT_HANDLER_CONCURRENCY, DEFAULT_HANDLER_MAX_BATCH,
  DEFAULT_BULK_WRITE_BYTES, DEFAULT_LINGER_MS, DEFAULT_MAX_BATCH_MESSAGES, DEFAULT_MAX_BUFFERED_PIECE_BYTES, DEFAULT_MAX_QUEUED,
  DEFAULT_MAX_WRITE_BYTES, DEFAULT_NETWORK, DEFAULT_PIPE_BYTES, DEFAULT_TIMEOUT_MS, INITIAL_CREDIT_BYTES, INITIAL_CREDIT_MESSAGES,
  LIMITS, OPEN_TIMEOUT_MS, protocolId
} from './constants.js'
import { NotStartedError, OversizeError, RemoteError, UnknownContextKeyError } from './errors.js'
import { LaneLinks } from './lane/links.js'
import { RequesterLink, joinPieces } from './requester.js'
import { ResponderLink, errorText } from './responder.js'
import type { QosClass } from './constants.js'
import type { FrameLimits } from './frame.js'
import type { LinkSettings } from './requester.js'
import type { BulkLaneInit, LaneEvent } from './lane/lane.js'
import type { Answer, BatchHandler, HandlerContext, HandlerEntry, HandlerOptions, MessageHandler } from './responder.js'
import type { ComponentLogger, Connection, Logger, PeerId, PrivateKey, Startable, Stream, StreamHandler, StreamHandlerOptions } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface SembatchComponents {
  peerId: PeerId
  registrar: {
    handle(protocol: string, handler: StreamHandler, options?: StreamHandlerOptions): Promise<void>
    unhandle(protocol: string): Promise<void>
  }
  connectionManager: {
    openStream(peer: PeerId, protocol: string, options?: { signal?: AbortSignal }): Promise<Stream>
    /** the bulk lane dials the address a connection to the peer reached */
    getConnections?(peer?: PeerId): Connection[]
  }
  logger: ComponentLogger
  /** the bulk lane's worker runs with the node's identity */
  privateKey?: PrivateKey
  /** the bulk lane listens on the hosts the node listens on */
  addressManager?: { getListenAddrs(): Multiaddr[] }
  /** a peer's lane streams close when the node's last connection to it does */
  events?: {
    addEventListener(type: 'peer:disconnect', listener: (evt: CustomEvent<PeerId>) => void): void
    removeEventListener(type: 'peer:disconnect', listener: (evt: CustomEvent<PeerId>) => void): void
  }
}

export interface SembatchInit {
  /** network id: protocol `/<network>/sembatch/1.0.0` (default "aistack") */
  network?: string
  /** longest linger per class, milliseconds (default realtime 0, interactive 1, bulk 5) */
  lingerMs?: Partial<Record<QosClass, number>>
  /** payload bytes per write (default 64 KiB) */
  maxWriteBytes?: number
  /** message bytes of the bulk class per frame (default 16 KiB; at most `maxWriteBytes`) */
  bulkWriteBytes?: number
  /** after a frame with bulk messages the event loop takes a turn before the next frame (default true) */
  yieldAfterBulk?: boolean
  /** bytes written and not yet acknowledged before interactive and bulk messages wait (default 64 KiB) */
  pipeBytes?: number
  /** messages per frame (default 512) */
  maxBatchMessages?: number
  /** batches with more bytes than this are zstd-compressed if that helps (default 1024; Infinity: never) */
  compressThreshold?: number
  /** requests a peer may have in flight to us: messages (default 1024) and payload bytes (default 16 MiB); never below those defaults */
  creditMessages?: number
  creditBytes?: number
  /** messages queued per peer at most before `send` refuses (default 65,536) */
  maxQueued?: number
  /** streamed answer bytes buffered per request (default 16 MiB) */
  maxBufferedPieceBytes?: number
  /** default time to wait for an answer (default 30 s) */
  timeoutMs?: number
  /** inbound sembatch streams at once (default 256); as many again on the bulk lane */
  maxInboundStreams?: number
  /**
   * Bulk lane: bulk-class requests and their answers on a connection of
   * their own, carried by a worker thread at each end, so moving them costs
   * the node's event loop little and realtime messages do not wait behind
   * them (docs/protocols/sembatch.md, "Bulk lane"). Started when bulk
   * traffic first flows; used when both ends have it and the peer is
   * reached over TCP on an IP address. `true` for the defaults (TCP, Noise,
   * Yamux, a port the system picks). Default off.
   */
  bulkLane?: boolean | BulkLaneInit
}

export interface SendOptions {
  /** default 'interactive' */
  qos?: QosClass
  signal?: AbortSignal
  /** default the service's `timeoutMs` */
  timeoutMs?: number
}

/** Counters of the service, for statistics and benchmarks */
export interface SembatchStats {
  /** outbound links: frames, bytes and messages written with requests */
  framesSent: number
  bytesSent: number
  messagesSent: number
  openLinks: number
  inboundLinks: number
  /** outbound links on the bulk lane, and inbound ones */
  laneLinks: number
  inboundLaneLinks: number
  /** the TCP port this node's bulk lane listens on, once it does */
  lanePort?: number
  /** why this node's bulk lane is not running: it did not start (which address failed, and why) or its worker exited */
  laneError?: string
}

/**
 * Sembatch: one long-lived stream per peer carrying request messages
 * batched by context key, in three classes, under credits the receiver
 * grants, with whole or streamed answers. See docs/protocols/sembatch.md.
 */
export class SembatchService implements Startable {
  readonly protocol: string
  private readonly components: SembatchComponents
  private readonly log: Logger
  private readonly settings: LinkSettings & { creditMessages: number, creditBytes: number, timeoutMs: number }
  private readonly maxInboundStreams: number
  private readonly handlers = new Map<string, HandlerEntry>()
  private resolver?: (key: string) => HandlerEntry | undefined
  private readonly resolvers = new Set<(key: string) => HandlerEntry | undefined>()
  private readonly links = new Map<string, RequesterLink>()
  private readonly opening = new Map<string, Promise<RequesterLink>>()
  private readonly inbound = new Set<ResponderLink>()
  private readonly laneInit?: BulkLaneInit
  /** the bulk lane and its links, when asked for and possible */
  private lane?: LaneLinks
  private readonly laneListeners = new Set<(event: LaneEvent) => void>()
  private started = false
  private closedCounters = { frames: 0, bytes: 0, messages: 0 }

  constructor (components: SembatchComponents, init: SembatchInit = {}) {
    this.components = components
    this.log = components.logger.forComponent('aistack:sembatch')
    this.protocol = protocolId(init.network ?? DEFAULT_NETWORK)
    this.maxInboundStreams = init.maxInboundStreams ?? 256
    this.settings = {
      limits: LIMITS as FrameLimits,
      maxWriteBytes: positive(init.maxWriteBytes, DEFAULT_MAX_WRITE_BYTES, 'maxWriteBytes'),
      pipeBytes: positive(init.pipeBytes, DEFAULT_PIPE_BYTES, 'pipeBytes'),
      bulkWriteBytes: 0,
      yieldAfterBulk: init.yieldAfterBulk ?? true,
      maxBatchMessages: Math.min(LIMITS.maxMessagesPerBatch, positive(init.maxBatchMessages, DEFAULT_MAX_BATCH_MESSAGES, 'maxBatchMessages')),
      compressThreshold: init.compressThreshold ?? DEFAULT_COMPRESS_THRESHOLD,
      lingerMs: { ...DEFAULT_LINGER_MS, ...init.lingerMs, realtime: 0 },
      maxQueued: positive(init.maxQueued, DEFAULT_MAX_QUEUED, 'maxQueued'),
      maxBufferedPieceBytes: positive(init.maxBufferedPieceBytes, DEFAULT_MAX_BUFFERED_PIECE_BYTES, 'maxBufferedPieceBytes'),
      creditMessages: Math.min(LIMITS.maxCreditMessages, Math.max(INITIAL_CREDIT_MESSAGES, init.creditMessages ?? INITIAL_CREDIT_MESSAGES)),
      creditBytes: Math.min(LIMITS.maxCreditBytes, Math.max(INITIAL_CREDIT_BYTES, init.creditBytes ?? INITIAL_CREDIT_BYTES)),
      timeoutMs: positive(init.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs')
    }
    this.settings.bulkWriteBytes = Math.min(this.settings.maxWriteBytes, positive(init.bulkWriteBytes, DEFAULT_BULK_WRITE_BYTES, 'bulkWriteBytes'))
    if (init.bulkLane != null && init.bulkLane !== false) this.laneInit = init.bulkLane === true ? {} : init.bulkLane
  }

  readonly [Symbol.toStringTag] = '@aistack/sembatch'

  async start (): Promise<void> {
    await this.components.registrar.handle(this.protocol, this.onStream, {
      maxInboundStreams: this.maxInboundStreams,
      maxOutboundStreams: 1024
    })
    this.lane = this.laneInit == null
      ? undefined
      : LaneLinks.create(this.components, {
        lane: this.laneInit,
        protocol: this.protocol,
        settings: this.settings,
        lookup: this.lookup,
        maxInboundStreams: this.maxInboundStreams,
        log: this.log,
        onClosed: (link) => { this.countClosed(link) },
        emit: (event) => { for (const listener of this.laneListeners) listener(event) }
      })
    if (this.lane != null) this.components.events?.addEventListener('peer:disconnect', this.onPeerDisconnect)
    this.started = true
  }

  async stop (): Promise<void> {
    this.started = false
    this.components.events?.removeEventListener('peer:disconnect', this.onPeerDisconnect)
    await this.components.registrar.unhandle(this.protocol)
    for (const link of this.links.values()) link.close()
    this.links.clear()
    for (const link of this.inbound) link.close()
    this.inbound.clear()
    await this.lane?.stop()
    this.lane = undefined
  }

  /**
   * Serves requests of a context key with a function that answers one
   * payload (with bytes, or an async iterable of pieces).
   */
  handle (key: string, fn: MessageHandler, options: HandlerOptions = {}): void {
    this.handlers.set(key, { batch: false, fn, concurrency: options.concurrency ?? DEFAULT_HANDLER_CONCURRENCY, maxBatch: 1 })
  }

  /** Serves requests of a context key with a function that answers whole batches */
  handleBatch (key: string, fn: BatchHandler, options: HandlerOptions = {}): void {
    this.handlers.set(key, {
      batch: true,
      fn,
      concurrency: options.concurrency ?? DEFAULT_BATCH_CONCURRENCY,
      maxBatch: Math.min(LIMITS.maxMessagesPerBatch, options.maxBatch ?? DEFAULT_HANDLER_MAX_BATCH)
    })
  }

  unhandle (key: string): boolean {
    return this.handlers.delete(key)
  }

  /**
   * Resolves context keys that have no handler of their own (e.g. a node maps
   * capability names to its handlers). Returns undefined for an unknown key.
   */
  setResolver (resolver: ((key: string) => HandlerEntry | undefined) | undefined): void {
    this.resolver = resolver
  }

  /**
   * Adds a resolver consulted after the handlers and the `setResolver` one
   * (e.g. semantic anycast serves its `<capability>#anycast` keys with one);
   * returns a function that removes it.
   */
  addResolver (resolver: (key: string) => HandlerEntry | undefined): () => void {
    this.resolvers.add(resolver)
    return () => { this.resolvers.delete(resolver) }
  }

  private readonly lookup = (key: string): HandlerEntry | undefined => {
    const entry = this.handlers.get(key) ?? this.resolver?.(key)
    if (entry != null || this.resolvers.size === 0) return entry
    for (const resolver of this.resolvers) {
      const found = resolver(key)
      if (found != null) return found
    }
    return undefined
  }

  /**
   * Sends `payload` to `peer` under context `key` and resolves with the
   * answer (a streamed answer's pieces joined).
   *
   * @throws RemoteError (the handler failed), StreamResetError, RequestTimeoutError,
   *   QueueFullError, OversizeError, NotStartedError
   */
  async send (peer: PeerId, key: string, payload: Uint8Array, options: SendOptions = {}): Promise<Uint8Array> {
    this.checkKey(key)
    const qos = options.qos ?? 'interactive'
    const timeoutMs = options.timeoutMs ?? this.settings.timeoutMs
    if (peer.equals(this.components.peerId)) {
      const pieces: Uint8Array[] = []
      for await (const piece of this.local(key, payload, qos, options.signal)) pieces.push(piece)
      return joinPieces(pieces)
    }
    const link = this.linkNow(peer, qos)
    if (link != null) return link.request(key, payload, { qos, timeoutMs, signal: options.signal })
    return (await this.link(peer, options.signal)).request(key, payload, { qos, timeoutMs, signal: options.signal })
  }

  /**
   * Like `send`, but yields the answer's pieces as they arrive (a whole
   * answer is one piece).
   */
  async * stream (peer: PeerId, key: string, payload: Uint8Array, options: SendOptions = {}): AsyncGenerator<Uint8Array> {
    this.checkKey(key)
    const qos = options.qos ?? 'interactive'
    if (peer.equals(this.components.peerId)) {
      yield * this.local(key, payload, qos, options.signal)
      return
    }
    const link = this.linkNow(peer, qos) ?? await this.link(peer, options.signal)
    yield * link.requestStream(key, payload, { qos, timeoutMs: options.timeoutMs ?? this.settings.timeoutMs, signal: options.signal })
  }

  /**
   * Calls `listener` with what happens to the bulk lane: it listens, it will
   * not run, a lane to a peer opens, closes or cannot be opened (for logs).
   * Returns a function that removes the listener.
   */
  onLane (listener: (event: LaneEvent) => void): () => void {
    this.laneListeners.add(listener)
    return () => { this.laneListeners.delete(listener) }
  }

  /** True when a sembatch stream to the peer is open */
  connected (peer: PeerId): boolean {
    return this.links.get(peer.toString())?.open === true
  }

  /** What the peer last reported about its queue (on our stream to it) */
  remoteState (peer: PeerId): { queueDepth: number, serviceRate: number } | undefined {
    return this.links.get(peer.toString())?.remoteState
  }

  stats (): SembatchStats {
    const s = { ...this.closedCounters }
    for (const link of [...this.links.values(), ...(this.lane?.outboundLinks ?? [])]) {
      const l = link.stats
      s.frames += l.frames
      s.bytes += l.bytes
      s.messages += l.messages
    }
    const stats: SembatchStats = { framesSent: s.frames, bytesSent: s.bytes, messagesSent: s.messages, openLinks: this.links.size, inboundLinks: this.inbound.size, laneLinks: this.lane?.outboundCount ?? 0, inboundLaneLinks: this.lane?.inboundCount ?? 0 }
    const lane = this.lane?.lane
    if (lane?.broken === true) stats.laneError = lane.error
    else if (lane?.port != null) stats.lanePort = lane.port
    return stats
  }

  private checkKey (key: string): void {
    if (!this.started) throw new NotStartedError('sembatch is not started')
    if (typeof key !== 'string' || key.length === 0 || Buffer.byteLength(key) > LIMITS.maxKeyBytes) {
      throw new OversizeError(`a context key is 1-${LIMITS.maxKeyBytes} bytes of UTF-8`)
    }
  }

  /** A request to ourselves: the handler is called directly */
  private async * local (key: string, payload: Uint8Array, qos: QosClass, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    const h = this.lookup(key)
    if (h == null) throw new UnknownContextKeyError(`no handler for context key "${key.slice(0, 64)}"`)
    const context: HandlerContext = { peer: this.components.peerId, key, qos, signal: signal ?? new AbortController().signal }
    try {
      if (h.batch) {
        const [answer] = await h.fn([payload], context)
        if (answer instanceof Error) throw answer
        yield answer
        return
      }
      const answer: Answer = await h.fn(payload, context)
      if (answer instanceof Uint8Array) yield answer
      else yield * answer
    } catch (err: any) {
      throw new RemoteError(errorText(err, LIMITS.maxErrorBytes))
    }
  }

  /** The open link for a request of this class: the bulk class takes the lane when there is one */
  private linkNow (peer: PeerId, qos: QosClass): RequesterLink | undefined {
    const link = this.links.get(peer.toString())
    if (qos === 'bulk') {
      const lane = this.lane?.linkFor(peer, link)
      if (lane != null) return lane
    }
    return link?.open === true ? link : undefined
  }

  private async link (peer: PeerId, signal?: AbortSignal): Promise<RequesterLink> {
    const key = peer.toString()
    let opening = this.opening.get(key)
    if (opening == null) {
      opening = (async () => {
        const stream = await this.components.connectionManager.openStream(peer, this.protocol, {
          signal: signal == null ? AbortSignal.timeout(OPEN_TIMEOUT_MS) : AbortSignal.any([signal, AbortSignal.timeout(OPEN_TIMEOUT_MS)])
        })
        if (!this.started) {
          stream.abort(new NotStartedError('sembatch stopped'))
          throw new NotStartedError('sembatch stopped')
        }
        const link = new RequesterLink(peer, stream, this.settings, this.log, (closed) => {
          this.countClosed(closed)
          if (this.links.get(key) === closed) this.links.delete(key)
        }, (port) => { this.lane?.offered(peer, port) })
        this.links.set(key, link)
        return link
      })().finally(() => { this.opening.delete(key) })
      this.opening.set(key, opening)
    }
    return opening
  }

  /** A link closed: its counters stay in the totals */
  private countClosed (closed: RequesterLink): void {
    const l = closed.stats
    this.closedCounters.frames += l.frames
    this.closedCounters.bytes += l.bytes
    this.closedCounters.messages += l.messages
  }

  private readonly onStream = (stream: Stream, connection: Connection): void => {
    const link = new ResponderLink(connection.remotePeer, stream, { ...this.settings, lookup: this.lookup, ...this.lane?.responderHooks() }, this.log)
    this.inbound.add(link)
    stream.addEventListener('close', () => { this.inbound.delete(link) }, { once: true })
  }

  private readonly onPeerDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.lane?.disconnected(evt.detail)
  }
}

function positive (value: number | undefined, fallback: number, name: string): number {
  if (value == null) return fallback
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`sembatch: ${name} must be a positive number`)
  return value
}
