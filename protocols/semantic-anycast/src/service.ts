import { pbStream } from '@libp2p/utils'
import { CID } from 'multiformats/cid'
import { Announcer } from './announcer.js'
import { Asker } from './asker.js'
import { Finder } from './finder.js'
import { RecordCache } from './cache.js'
import {
  DEFAULT_LSH_BITS, DEFAULT_LSH_PROBES, DEFAULT_LSH_PUBLISH_PROBES, DEFAULT_LSH_TABLES, DEFAULT_MAX_INPUT_BYTES,
  DEFAULT_NETWORK, DEFAULT_RECORD_TTL_MS, DEFAULT_TIMEOUT_MS, LIMITS, MAX_RECORD_TTL_MS,
  anycastProtocol, capsTopic
} from './constants.js'
import { BadRequestError, NotStartedError } from './errors.js'
import { InvokeTransport, LocalInvoker } from './invoke.js'
import type { InvokeTransportStats, RequestDialer, SembatchLike } from './invoke.js'
import type { AskManyOptions, AskManyResult } from './ask-many.js'
import { LookupLimiter } from './limiter.js'
import { OwnerLiveness } from './liveness.js'
import type { Liveness } from './liveness.js'
import { KeyProviders, PeerFetches } from './lookup.js'
import { SimHashLsh } from './lsh.js'
import { Request, Response } from './pb/anycast.js'
import { capabilityDomain } from './record-signing.js'
import { Reranker } from './reranker.js'
import { tracedServe } from './trace-path.js'
import type { PublishStats } from './provide-queue.js'
import type { CapabilityRecord } from './record.js'
import type {
  AskOptions, AskResult, Candidate, DhtLike, FindOptions, LookupStats, PeerRoutingLike, PubSubLike, RepublishOptions,
  SemanticAnycastComponents, SemanticAnycastInit
} from './types.js'
import type { Embedder } from '@aistack/embeddings'
import type { Logger, PeerId, PeerInfo, Startable, Stream, Connection } from '@libp2p/interface'

export type { CapabilityProvider } from './invoke.js'
export type { PublishStats } from './provide-queue.js'
export type * from './types.js'

function optional<T> (components: any, name: string): T | undefined {
  try {
    return components[name] ?? undefined
  } catch {
    return undefined
  }
}

/**
 * Semantic anycast: publishes this node's capability records (gossip + LSH
 * keys in the DHT), finds capabilities by meaning and sends requests to the
 * best peer, failing over to the next.
 */
export class SemanticAnycast implements Startable {
  readonly network: string
  readonly protocol: string
  readonly topic: string
  readonly cache: RecordCache
  readonly lsh: SimHashLsh
  readonly probes: number
  readonly publishProbes: number
  readonly liveness: OwnerLiveness
  readonly lookups: LookupLimiter
  /** providers of bucket keys found lately, shared by this node's lookups */
  readonly keyProviders: KeyProviders
  /** records fetched lately per provider, shared by this node's lookups */
  readonly peerFetches: PeerFetches
  private readonly components: SemanticAnycastComponents
  private readonly init: SemanticAnycastInit
  private readonly log: Logger
  /** the network-wide base model: record vectors and LSH keys */
  private readonly embedder: Embedder
  /** the node's ranking model when it differs from the base one */
  private readonly reranker?: Reranker
  private readonly recordTtlMs: number
  private readonly invoker: LocalInvoker
  /** INVOKE over sembatch when both ends speak it, else a stream each (invoke.ts) */
  private transport: InvokeTransport
  private readonly dialer: RequestDialer
  /** own records: announcement, anti-entropy, gossip intake */
  private readonly announcer: Announcer
  /** owners demoted by a failed connection and about to be asked whether they are alive */
  private readonly probing = new Set<string>()
  /** the find path: cache, DHT lookups, record fetches */
  private readonly finder: Finder
  /** the ask path: scoring, attempts, failover */
  private readonly asker: Asker
  private dht?: DhtLike
  private started = false
  private timer?: ReturnType<typeof setInterval>
  private livenessTimer?: ReturnType<typeof setInterval>
  private shutdown = new AbortController()

  constructor (components: SemanticAnycastComponents, init: SemanticAnycastInit) {
    this.components = components
    this.init = init
    this.network = init.network ?? DEFAULT_NETWORK
    // throws RangeError for a network id that cannot name a signature domain
    capabilityDomain(this.network)
    this.protocol = anycastProtocol(this.network)
    this.topic = capsTopic(this.network)
    this.log = components.logger.forComponent('aistack:semantic-anycast')
    this.embedder = init.baseEmbedder ?? init.embedder
    if (init.embedder.id !== this.embedder.id) this.reranker = new Reranker(init.embedder, init.rerankCacheSize)
    this.cache = new RecordCache(init.cache)
    this.liveness = new OwnerLiveness(init.liveness)
    this.lookups = new LookupLimiter(init.lookups)
    this.keyProviders = new KeyProviders({ ttlMs: init.providerCacheMs })
    this.peerFetches = new PeerFetches({ ttlMs: init.providerCacheMs })
    this.lsh = new SimHashLsh(this.network, this.embedder.id, this.embedder.dim, {
      tables: init.lsh?.tables ?? DEFAULT_LSH_TABLES,
      bits: init.lsh?.bits ?? DEFAULT_LSH_BITS
    })
    this.probes = init.lsh?.probes ?? DEFAULT_LSH_PROBES
    this.publishProbes = init.lsh?.publishProbes ?? DEFAULT_LSH_PUBLISH_PROBES
    this.recordTtlMs = Math.min(init.recordTtlMs ?? DEFAULT_RECORD_TTL_MS, MAX_RECORD_TTL_MS)
    // peer routing is looked up when a request needs it: services are built before libp2p is whole
    const dialer: RequestDialer = {
      connectionManager: components.connectionManager,
      get peerRouting () { return optional<PeerRoutingLike>(components, 'peerRouting') }
    }
    this.dialer = dialer
    this.announcer = new Announcer(components, {
      dialer,
      network: this.network,
      topic: this.topic,
      embedder: this.embedder,
      lsh: this.lsh,
      publishProbes: this.publishProbes,
      recordTtlMs: this.recordTtlMs,
      cache: this.cache,
      liveness: this.liveness,
      provider: init.provider,
      log: this.log,
      gossipLimits: init.gossipLimits,
      provideConcurrency: init.provideConcurrency,
      protocol: this.protocol
    })
    this.invoker = new LocalInvoker({
      provider: init.provider,
      announced: name => this.announcer.capability(name),
      maxInputBytes: init.maxInputBytes,
      maxOutputBytes: init.maxOutputBytes,
      timeoutMs: init.timeoutMs
    })
    this.transport = new InvokeTransport({ dialer, protocol: this.protocol, log: this.log })
    this.asker = new Asker({
      init,
      self: () => components.peerId.toString(),
      cache: this.cache,
      liveness: this.liveness,
      invoker: this.invoker,
      transport: () => this.transport,
      shutdown: () => this.shutdown.signal,
      find: async (query, options) => this.find(query, options)
    })
    this.finder = new Finder({
      components,
      dialer,
      init,
      protocol: this.protocol,
      log: this.log,
      embedder: this.embedder,
      reranker: this.reranker,
      cache: this.cache,
      liveness: this.liveness,
      lookups: this.lookups,
      keyProviders: this.keyProviders,
      peerFetches: this.peerFetches,
      lsh: this.lsh,
      probes: this.probes,
      recordTtlMs: this.recordTtlMs,
      ownRecords: () => this.ownRecords(),
      candidate: (record, similarity, source, exact) => this.asker.candidate(record, similarity, source, exact),
      accept: async bytes => this.accept(bytes),
      neighbourViewAt: () => this.announcer.neighbourViewAt()
    })
    this.handleStream = this.handleStream.bind(this)
    this.onConnectionOpen = this.onConnectionOpen.bind(this)
  }

  readonly [Symbol.toStringTag] = '@aistack/semantic-anycast'

  /** Id of the base model: record vectors and LSH keys */
  get baseModel (): string {
    return this.embedder.id
  }

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    this.shutdown = new AbortController()
    this.dht = optional<DhtLike>(this.components, 'dht')
    this.transport = new InvokeTransport({
      dialer: this.dialer,
      protocol: this.protocol,
      peerStore: optional(this.components, 'peerStore'),
      sembatch: optional<SembatchLike>(this.components, 'sembatch'),
      log: this.log
    })
    this.transport.serve(async (req, peer) => this.respond(req, peer), (this.init.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES) + 4096)
    await this.components.registrar.handle(this.protocol, this.handleStream, {
      maxInboundStreams: 256,
      maxOutboundStreams: 256
    })
    this.announcer.start(this.dht)
    this.finder.start(this.dht)
    const interval = this.init.republishIntervalMs ?? Math.max(1000, Math.floor(this.recordTtlMs / 2))
    this.timer = setInterval(() => {
      this.cache.prune()
      this.republish({ provide: false }).catch(err => { this.log.error('republish failed - %e', err) })
    }, interval)
    this.timer.unref?.()
    optional<EventTarget>(this.components, 'events')?.addEventListener('connection:open', this.onConnectionOpen)
    this.livenessTimer = setInterval(() => { this.evictDead() }, 1000)
    this.livenessTimer.unref?.()
    this.started = true
  }

  async afterStart (): Promise<void> {
    // pubsub is started by now
    this.announcer.afterStart(this.init.gossip === false ? undefined : optional<PubSubLike>(this.components, 'pubsub'))
  }

  /** Withdraw: tombstones on gossip, stop re-providing bucket keys */
  async beforeStop (): Promise<void> {
    await this.announcer.beforeStop()
  }

  async stop (): Promise<void> {
    this.started = false
    this.shutdown.abort()
    this.announcer.stop()
    this.finder.stop()
    this.transport.stop()
    clearInterval(this.timer)
    clearInterval(this.livenessTimer)
    optional<EventTarget>(this.components, 'events')?.removeEventListener('connection:open', this.onConnectionOpen)
    await this.components.registrar.unhandle(this.protocol)
  }

  /** Records this node publishes */
  ownRecords (): CapabilityRecord[] {
    return this.announcer.names().map(name => this.cache.get(this.components.peerId.toString(), name)).filter((r): r is CapabilityRecord => r != null)
  }

  /**
   * The live (unexpired, not withdrawn) records this node holds, its own and the network's, at
   * most `limit` of them, in no particular order, each with its owner's liveness
   * (`live` for this node's own).
   */
  knownRecords (limit = 1000): Array<{ record: CapabilityRecord, liveness: Liveness }> {
    const self = this.components.peerId.toString()
    const out: Array<{ record: CapabilityRecord, liveness: Liveness }> = []
    for (const record of this.cache.values()) {
      if (out.length >= limit) break
      out.push({ record, liveness: record.owner === self ? 'live' : this.liveness.state(record.owner) })
    }
    return out
  }

  /** What the record cache holds: records, tombstones, estimated bytes of the records (docs/security.md) */
  cacheStats (): { records: number, tombstones: number, bytes: number } {
    return { records: this.cache.size, tombstones: this.cache.tombstoneCount, bytes: this.cache.bytes }
  }

  /**
   * Bring published records in line with the provider: sign and publish new or
   * changed capabilities, withdraw removed ones. Serialised.
   */
  async announce (): Promise<void> {
    return this.announcer.announce()
  }

  /**
   * Re-sign every record with a fresh expiry and gossip it; provide its keys
   * again unless `provide` is false. Resolves once the records are signed
   * and gossiped; the DHT part runs in the background (see `whenPublished`).
   */
  async republish (options: RepublishOptions = {}): Promise<void> {
    return this.announcer.republish(options)
  }

  /**
   * Resolves once the records of every announce or republish started so far
   * are signed and gossiped and their bucket keys have been provided in the
   * DHT (or failed to be, and wait for a retry; see `publishing()`), or the service stopped.
   */
  async whenPublished (): Promise<PublishStats> {
    return this.announcer.whenPublished()
  }

  /** Counters of the DHT side of publishing */
  publishing (): PublishStats {
    return this.announcer.publishing()
  }

  /** Verify a signed record and cache it; throws InvalidRecordError */
  async accept (bytes: Uint8Array): Promise<CapabilityRecord> {
    return this.announcer.accept(bytes)
  }

  /** Watches a new connection: if it closes with an error, its peer (when it owns records) is marked failing at once and probed */
  private onConnectionOpen (evt: Event): void {
    const conn = (evt as CustomEvent<Connection>).detail
    conn.addEventListener('close', (e: Event) => {
      const owner = conn.remotePeer.toString()
      if (!this.started || !this.cache.hasOwner(owner)) return
      const open = this.components.connectionManager.getConnections(conn.remotePeer).some(c => c !== conn && c.status === 'open')
      const error = (e as Event & { error?: Error }).error
      if (!this.liveness.connectionClosed(owner, error, open)) return
      this.log('%s failing: its connection closed with an error - %s', owner, error?.message)
      // a busy peer's connection may fail too (a missed keep-alive): it is asked for its records
      // once, and an answer restores it before its records would leave the results
      if (this.probing.has(owner)) return
      this.probing.add(owner)
      const timer = setTimeout(() => {
        if (!this.started) {
          this.probing.delete(owner)
          return
        }
        this.fetchRecords(conn.remotePeer, [], AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(10_000)])).then(() => {
          this.log('%s answered again after its connection failed', owner)
        }, () => {}).finally(() => { this.probing.delete(owner) })
      }, this.liveness.probeAfterMs)
      timer.unref?.()
    }, { once: true })
  }

  /** Records of owners failing for `liveness.evictAfterMs` leave the cache */
  private evictDead (): void {
    for (const owner of this.liveness.expired()) {
      const n = this.cache.deleteOwner(owner)
      if (n > 0) this.log('dropped %d records of %s: it has not answered since it failed', n, owner)
    }
  }

  /** Ranked candidates for a query, best first */
  async find (query: string, options: FindOptions = {}): Promise<Candidate[]> {
    return (await this.findWithStats(query, options)).candidates
  }

  /**
   * Ranked candidates and what the lookup did (see `Finder.findWithStats`). Throws
   * NotStartedError, BadRequestError for an empty or over-long query, LookupQueueFullError when
   * the node's lookup queue is full.
   */
  async findWithStats (query: string, options: FindOptions = {}): Promise<{ candidates: Candidate[], stats: LookupStats }> {
    return this.finder.findWithStats(query, options)
  }

  /**
   * Ask a peer for its own records (only those in the given buckets when keys
   * are given), verify and cache them; see `Finder.fetchRecords`.
   */
  async fetchRecords (peer: PeerInfo | PeerId, keys: CID[] = [], signal?: AbortSignal): Promise<CapabilityRecord[]> {
    return this.finder.fetchRecords(peer, keys, signal)
  }

  /**
   * Send the request to the best candidate, failing over to the next ones
   * (see `Asker.ask`). Throws NotStartedError, TooLargeError, NoCandidatesError,
   * AllCandidatesFailedError with each failure.
   */
  async ask (query: string, input: unknown, options: AskOptions = {}): Promise<AskResult> {
    if (!this.started) throw new NotStartedError('semantic anycast is not started')
    return this.asker.ask(query, input, options)
  }

  private async handleStream (stream: Stream, connection: Connection): Promise<void> {
    const maxInput = this.init.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES
    const pb = pbStream(stream, { maxDataLength: maxInput + 4096 })
    let req: Request
    try {
      req = await pb.read<Request>(Request as any, { signal: AbortSignal.timeout(10_000), limits: { keys: LIMITS.maxKeysPerRequest } })
      if (req.id.byteLength > 64) throw new BadRequestError('request id is longer than 64 bytes')
    } catch (err: any) {
      this.log('bad anycast request from %p - %s', connection.remotePeer, err?.message)
      stream.abort(err)
      return
    }
    const res = await this.respond(req, connection.remotePeer)
    try {
      await pb.write(res, Response, { signal: AbortSignal.timeout(10_000) })
      await stream.close({ signal: AbortSignal.timeout(10_000) })
    } catch (err: any) {
      stream.abort(err)
    }
  }

  /** The response to a request, whether it came on a stream or over sembatch */
  private async respond (req: Request, from: PeerId): Promise<Response> {
    let res: Response
    const base = { id: req.id, output: new Uint8Array(0), error: '', records: [], inflight: 0, capacity: 0, spans: [], tensors: [] }
    if (req.kind === Request.Kind.GET_RECORDS) {
      const wanted = new Set(req.keys.map(k => { try { return CID.decode(k).toString() } catch { return '' } }))
      const records: Uint8Array[] = []
      for (const own of this.announcer.records()) {
        if (req.model !== '' && req.model !== this.embedder.id) break
        if (wanted.size > 0 && !own.keys.some(k => wanted.has(k.toString()))) continue
        records.push(own.bytes)
        if (records.length >= LIMITS.maxRecordsPerResponse) break
      }
      // anti-entropy: the live records of other owners this node holds
      if (req.held === true && (req.model === '' || req.model === this.embedder.id)) {
        const self = this.components.peerId.toString()
        for (const r of this.cache.values(this.embedder.id)) {
          if (records.length >= LIMITS.maxRecordsPerResponse) break
          if (r.owner !== self) records.push(r.bytes)
        }
      }
      res = { ...base, status: Response.Status.OK, records }
    } else if (req.kind === Request.Kind.INVOKE) {
      const timeoutMs = req.deadlineMs > 0 ? req.deadlineMs : DEFAULT_TIMEOUT_MS
      const info = { capability: req.capability, from: from.toString(), inputBytes: req.input.byteLength }
      res = { ...base, ...await tracedServe(this.init.tracer, req.traceparent, info, async () => this.invoker.run(req.capability, req.input, timeoutMs, [this.shutdown.signal], req.vectors)) }
    } else {
      res = { ...base, status: Response.Status.BAD_REQUEST, error: 'unknown request kind' }
    }
    return res
  }

  /**
   * Every input to the capability that best matches `query` (found once),
   * each failing over to the next candidates on its own; outputs in input
   * order, a failure per input (see `Asker.askMany`).
   */
  async askMany (query: string, inputs: unknown[], options: AskManyOptions = {}): Promise<AskManyResult> {
    if (!this.started) throw new NotStartedError('semantic anycast is not started')
    return this.asker.askMany(query, inputs, options)
  }

  /** How anycast requests travelled: over sembatch, on streams, fallbacks */
  transportStats (): InvokeTransportStats {
    return { ...this.transport.stats }
  }
}

export function semanticAnycast (init: SemanticAnycastInit): (components: SemanticAnycastComponents) => SemanticAnycast {
  return (components) => new SemanticAnycast(components, init)
}
