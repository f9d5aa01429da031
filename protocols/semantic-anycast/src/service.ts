import { randomBytes } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { pbStream } from '@libp2p/utils'
import { CID } from 'multiformats/cid'
import { toString as u8ToString } from 'uint8arrays/to-string'
import { fromString as u8FromString } from 'uint8arrays/from-string'
import { RecordCache } from './cache.js'
import {
  DEFAULT_LSH_BITS, DEFAULT_LSH_PROBES, DEFAULT_LSH_PUBLISH_PROBES, DEFAULT_LSH_TABLES, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_INPUT_BYTES,
  DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_NETWORK, DEFAULT_RECORD_TTL_MS, DEFAULT_TIMEOUT_MS, LIMITS, MAX_RECORD_TTL_MS,
  anycastProtocol, capsTopic
} from './constants.js'
import {
  AllCandidatesFailedError, BadRequestError, NoCandidatesError, NotStartedError, RemoteError, TooLargeError
} from './errors.js'
import { SimHashLsh } from './lsh.js'
import { Request, Response } from './pb/anycast.js'
import { capabilityDomain } from './record-signing.js'
import { capabilityText, signCapabilityRecord, validateCapability, verifyCapabilityRecord } from './record.js'
import type { CapabilityAttributes, CapabilityRecord, LocalCapability } from './record.js'
import type { Embedder } from '@aistack/embeddings'
import type { ComponentLogger, Logger, PeerId, PeerInfo, PrivateKey, Startable, Stream, Connection } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'

/** The local side: which capabilities this node serves and how to run them */
export interface CapabilityProvider {
  list(): LocalCapability[]
  /** Run a capability; throws an error named `OverloadedError` at its concurrency limit */
  invoke(name: string, input: unknown, options: { signal: AbortSignal }): Promise<unknown>
  /** Called whenever capabilities are added or removed; returns an unsubscribe function */
  onChange?(listener: () => void): () => void
}

/** The parts of a Kad-DHT the service uses (`@libp2p/kad-dht` fits) */
export interface DhtLike {
  provide(key: CID, options?: { signal?: AbortSignal }): AsyncIterable<any>
  findProviders(key: CID, options?: { signal?: AbortSignal }): AsyncIterable<any>
  cancelReprovide(key: CID, options?: { signal?: AbortSignal }): Promise<void>
}

/** The parts of libp2p content routing the service uses when there is no `dht` service */
export interface ContentRoutingLike {
  provide(key: CID, options?: { signal?: AbortSignal }): Promise<void>
  findProviders(key: CID, options?: { signal?: AbortSignal }): AsyncIterable<PeerInfo>
  cancelReprovide(key: CID, options?: { signal?: AbortSignal }): Promise<void>
}

/** The parts of gossipsub the service uses */
export interface PubSubLike {
  subscribe(topic: string): void
  unsubscribe(topic: string): void
  publish(topic: string, data: Uint8Array): Promise<unknown>
  addEventListener(type: 'message', listener: (evt: CustomEvent<{ topic: string, data: Uint8Array }>) => void): void
  removeEventListener(type: 'message', listener: (evt: CustomEvent<{ topic: string, data: Uint8Array }>) => void): void
}

export interface SemanticAnycastComponents {
  peerId: PeerId
  privateKey: PrivateKey
  registrar: Registrar
  connectionManager: ConnectionManager
  logger: ComponentLogger
  /** used when no `dht` service is present */
  contentRouting?: ContentRoutingLike
  dht?: DhtLike
  pubsub?: PubSubLike
}

export interface ScoreWeights {
  /** subtracted per unit of load (in flight / capacity), default 0.1 */
  load: number
  /** subtracted per second of observed round-trip time (capped at 1 s), default 0.05 */
  latency: number
}

export interface SemanticAnycastInit {
  /** Network id, prefix of protocol ids, topic and DHT keys; default 'aistack' */
  network?: string
  embedder: Embedder
  provider: CapabilityProvider
  /**
   * LSH: `tables` (L) of `bits` (k); a lookup probes `probes` buckets per
   * table, an owner provides `publishProbes` buckets per table (its own and
   * the nearest neighbours)
   */
  lsh?: { tables?: number, bits?: number, probes?: number, publishProbes?: number }
  /** Lifetime of published records, default 30 min; re-published at half of it */
  recordTtlMs?: number
  republishIntervalMs?: number
  maxInputBytes?: number
  maxOutputBytes?: number
  /** Default `ask` timeout, default 30 s */
  timeoutMs?: number
  /** Candidates tried by `ask`, default 3 */
  maxAttempts?: number
  /** Candidates below this cosine similarity are not returned, default 0.2 */
  minSimilarity?: number
  /** `find` in auto mode trusts the cache when its best match reaches this similarity, default 0.35 */
  cacheConfidence?: number
  /** Parallel DHT queries per lookup, default 16 */
  dhtConcurrency?: number
  /** Bucket keys provided at once (in the background), default 4 */
  provideConcurrency?: number
  /** A key's provider query stops after this many peer answers, default 3 */
  dhtResponsesPerKey?: number
  /**
   * A key's provider query also stops once this many answers (the local
   * provider store included) named providers, default 1: providers are
   * stored on the peers closest to the key, so each of them holds the set
   */
  dhtProviderAnswersPerKey?: number
  /** Time limit of the DHT part of a lookup, default 10 s */
  dhtTimeoutMs?: number
  /** Subscribe to and publish on the caps topic, default true */
  gossip?: boolean
  weights?: Partial<ScoreWeights>
}

export interface FindOptions {
  k?: number
  /** DHT path: probe this many buckets per table instead of the configured number */
  probes?: number
  /** DHT path: probe only the first `tables` tables (planes are shared, so this is the lookup of a smaller L) */
  tables?: number
  /** DHT path: a key's provider query stops after this many answers naming providers (see `dhtProviderAnswersPerKey`) */
  providerAnswers?: number
  /** 'auto' (default): cache, then the DHT when the cache cannot answer; 'cache' or 'dht' only */
  source?: 'auto' | 'cache' | 'dht'
  minSimilarity?: number
  signal?: AbortSignal
}

export interface Candidate {
  peerId: string
  name: string
  description: string
  tags: string[]
  model: string
  attributes: CapabilityAttributes
  similarity: number
  /** in flight / capacity last seen for this capability, 0 when unknown */
  load: number
  /** smoothed round-trip time to the peer, undefined when unknown */
  latencyMs?: number
  score: number
}

export interface LookupStats {
  source: 'cache' | 'dht' | 'cache+dht'
  /** DHT keys probed */
  keys: number
  /** DHT query messages sent */
  dhtMessages: number
  providers: number
  /** records received from providers (GET_RECORDS) */
  recordsFetched: number
  /** GET_RECORDS requests sent */
  fetches: number
  /** time spent finding providers */
  dhtMs: number
  ms: number
}

/** Progress of providing this node's bucket keys in the DHT */
export interface PublishStats {
  /** distinct bucket keys provided successfully since start */
  provided: number
  /** provide attempts that failed (retried at the next republish) */
  failed: number
  /** keys waiting or being provided */
  pending: number
  /** DHT messages sent for providing */
  messages: number
}

export interface RepublishOptions {
  /**
   * Provide every bucket key again (default true). The periodic republish
   * passes false: it re-signs and gossips records and provides only keys not
   * provided yet, since the DHT re-provides its provider records itself.
   */
  provide?: boolean
}

export interface AskOptions {
  timeoutMs?: number
  maxAttempts?: number
  /** Candidates below this cosine similarity are not tried (default: `minSimilarity` of the service) */
  minSimilarity?: number
  /**
   * Candidates less similar than this fraction of the best one's similarity are not tried
   * (default 0: any candidate may answer when better ones fail)
   */
  minRelativeSimilarity?: number
  signal?: AbortSignal
}

export interface AskResult {
  output: unknown
  peerId: string
  capability: string
  similarity: number
  attempts: number
  latencyMs: number
  /** The candidates tried before the one that answered, and why each failed */
  failures: Array<{ peerId: string, capability: string, error: string }>
}

interface OwnRecord {
  cap: LocalCapability
  text: string
  vector: Float32Array
  keys: CID[]
  bytes: Uint8Array
}

async function mapLimit<T> (items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) {
      const item = items[i++]
      await fn(item)
    }
  })
  await Promise.all(workers)
}

function optional<T> (components: any, name: string): T | undefined {
  try {
    return components[name] ?? undefined
  } catch {
    return undefined
  }
}

function sameCap (a: LocalCapability, b: LocalCapability): boolean {
  return JSON.stringify([a.name, a.description, a.tags ?? [], a.examples ?? [], a.attributes ?? {}]) ===
    JSON.stringify([b.name, b.description, b.tags ?? [], b.examples ?? [], b.attributes ?? {}])
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
  private readonly components: SemanticAnycastComponents
  private readonly init: SemanticAnycastInit
  private readonly log: Logger
  private readonly embedder: Embedder
  private readonly own = new Map<string, OwnRecord>()
  private readonly provided = new Map<string, CID>()
  private readonly inflight = new Map<string, number>()
  private readonly peerLoad = new Map<string, { inflight: number, capacity: number }>()
  private readonly rtt = new Map<string, number>()
  private readonly recordTtlMs: number
  private readonly weights: ScoreWeights
  private dht?: DhtLike
  private pubsub?: PubSubLike
  private started = false
  private seq = 0n
  private timer?: ReturnType<typeof setInterval>
  private unsubscribeProvider?: () => void
  private announcing: Promise<void> = Promise.resolve()
  private shutdown = new AbortController()
  private readonly provideQueue = new Map<string, CID>()
  private provideWorkers = 0
  private idleWaiters: Array<() => void> = []
  private readonly publishStats: PublishStats = { provided: 0, failed: 0, pending: 0, messages: 0 }

  constructor (components: SemanticAnycastComponents, init: SemanticAnycastInit) {
    this.components = components
    this.init = init
    this.network = init.network ?? DEFAULT_NETWORK
    // throws RangeError for a network id that cannot name a signature domain
    capabilityDomain(this.network)
    this.protocol = anycastProtocol(this.network)
    this.topic = capsTopic(this.network)
    this.log = components.logger.forComponent('aistack:semantic-anycast')
    this.embedder = init.embedder
    this.cache = new RecordCache()
    this.lsh = new SimHashLsh(this.network, this.embedder.id, this.embedder.dim, {
      tables: init.lsh?.tables ?? DEFAULT_LSH_TABLES,
      bits: init.lsh?.bits ?? DEFAULT_LSH_BITS
    })
    this.probes = init.lsh?.probes ?? DEFAULT_LSH_PROBES
    this.publishProbes = init.lsh?.publishProbes ?? DEFAULT_LSH_PUBLISH_PROBES
    this.recordTtlMs = Math.min(init.recordTtlMs ?? DEFAULT_RECORD_TTL_MS, MAX_RECORD_TTL_MS)
    this.weights = { load: 0.1, latency: 0.05, ...init.weights }
    this.onGossip = this.onGossip.bind(this)
    this.handleStream = this.handleStream.bind(this)
  }

  readonly [Symbol.toStringTag] = '@aistack/semantic-anycast'

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    this.shutdown = new AbortController()
    this.dht = optional<DhtLike>(this.components, 'dht')
    this.pubsub = this.init.gossip === false ? undefined : optional<PubSubLike>(this.components, 'pubsub')
    await this.components.registrar.handle(this.protocol, this.handleStream, {
      maxInboundStreams: 256,
      maxOutboundStreams: 256
    })
    this.unsubscribeProvider = this.init.provider.onChange?.(() => {
      this.announce().catch(err => { this.log.error('re-announce failed - %e', err) })
    })
    const interval = this.init.republishIntervalMs ?? Math.max(1000, Math.floor(this.recordTtlMs / 2))
    this.timer = setInterval(() => {
      this.cache.prune()
      this.republish({ provide: false }).catch(err => { this.log.error('republish failed - %e', err) })
    }, interval)
    this.timer.unref?.()
    this.started = true
  }

  async afterStart (): Promise<void> {
    // pubsub is started by now
    if (this.pubsub != null) {
      this.pubsub.addEventListener('message', this.onGossip)
      this.pubsub.subscribe(this.topic)
    }
    this.announce().catch(err => { this.log.error('announce failed - %e', err) })
  }

  /** Withdraw: tombstones on gossip, stop re-providing bucket keys */
  async beforeStop (): Promise<void> {
    const signal = AbortSignal.timeout(2000)
    try {
      await this.announcing
    } catch {}
    const names = [...this.own.keys()]
    await Promise.all(names.map(async name => this.withdraw(name, signal).catch(() => {})))
  }

  async stop (): Promise<void> {
    this.started = false
    this.shutdown.abort()
    this.provideQueue.clear()
    this.publishStats.pending = this.provideWorkers
    this.wakeIdle()
    clearInterval(this.timer)
    this.unsubscribeProvider?.()
    if (this.pubsub != null) {
      this.pubsub.removeEventListener('message', this.onGossip)
      try { this.pubsub.unsubscribe(this.topic) } catch {}
    }
    await this.components.registrar.unhandle(this.protocol)
  }

  /** Records this node publishes */
  ownRecords (): CapabilityRecord[] {
    return [...this.own.keys()].map(name => this.cache.get(this.components.peerId.toString(), name)).filter((r): r is CapabilityRecord => r != null)
  }

  /**
   * The live (unexpired, not withdrawn) records this node holds, its own and the network's, at
   * most `limit` of them, in no particular order.
   */
  knownRecords (limit = 1000): CapabilityRecord[] {
    const out: CapabilityRecord[] = []
    for (const r of this.cache.values()) {
      if (out.length >= limit) break
      out.push(r)
    }
    return out
  }

  private nextSeq (): bigint {
    const now = BigInt(Date.now()) * 1000n
    this.seq = now > this.seq ? now : this.seq + 1n
    return this.seq
  }

  /**
   * Bring published records in line with the provider: sign and publish new or
   * changed capabilities, withdraw removed ones. Serialised.
   */
  async announce (): Promise<void> {
    const run = this.announcing.catch(() => {}).then(async () => this.sync(false))
    this.announcing = run
    return run
  }

  /**
   * Re-sign every record with a fresh expiry and gossip it; provide its keys
   * again unless `provide` is false. Resolves once the records are signed
   * and gossiped; the DHT part runs in the background (see `whenPublished`).
   */
  async republish (options: RepublishOptions = {}): Promise<void> {
    const run = this.announcing.catch(() => {}).then(async () => this.sync(true, options.provide !== false))
    this.announcing = run
    return run
  }

  /**
   * Resolves once the records of every announce or republish started so far
   * are signed and gossiped and their bucket keys have been provided in the
   * DHT (or failed to be; see `publishing()`), or the service stopped.
   */
  async whenPublished (): Promise<PublishStats> {
    while (true) {
      const current = this.announcing
      await current.catch(() => {})
      if (this.provideQueue.size > 0 || this.provideWorkers > 0) {
        await new Promise<void>(resolve => { this.idleWaiters.push(resolve) })
      }
      // an announce started meanwhile (a provider change) is waited for too
      if (current === this.announcing && ((this.provideQueue.size === 0 && this.provideWorkers === 0) || !this.started)) return this.publishing()
    }
  }

  /** Counters of the DHT side of publishing */
  publishing (): PublishStats {
    return { ...this.publishStats, pending: this.provideQueue.size + this.provideWorkers }
  }

  private wakeIdle (): void {
    if (this.provideQueue.size > 0 || (this.provideWorkers > 0 && this.started)) return
    const waiters = this.idleWaiters
    this.idleWaiters = []
    waiters.forEach(w => { w() })
  }

  private async sync (all: boolean, provideAll = all): Promise<void> {
    if (!this.started) return
    const caps = this.init.provider.list()
    const wanted = new Map(caps.map(c => [c.name, c]))
    for (const name of [...this.own.keys()]) {
      if (!wanted.has(name)) await this.withdraw(name, this.shutdown.signal)
    }
    const changed = caps.filter(c => {
      const cur = this.own.get(c.name)
      return all || cur == null || !sameCap(cur.cap, c)
    })
    if (changed.length === 0) return
    for (const c of changed) validateCapability(c)
    const texts = changed.map(capabilityText)
    const needEmbed = changed.map((c, i) => this.own.get(c.name)?.text === texts[i] ? undefined : i).filter((i): i is number => i != null)
    const vectors = needEmbed.length > 0 ? await this.embedder.embed(needEmbed.map(i => texts[i]), { signal: this.shutdown.signal }) : []
    const owner = this.components.peerId.toString()
    const toProvide: CID[] = []
    for (let i = 0; i < changed.length; i++) {
      const cap = changed[i]
      const at = needEmbed.indexOf(i)
      const vector = at >= 0 ? vectors[at] : this.own.get(cap.name)?.vector
      if (vector == null || vector.length !== this.embedder.dim) throw new Error(`embedder returned a bad vector for ${cap.name}`)
      const bytes = await signCapabilityRecord(this.components.privateKey, cap, {
        network: this.network,
        owner,
        model: this.embedder.id,
        vector,
        seq: this.nextSeq(),
        expiresAt: Date.now() + this.recordTtlMs
      })
      const record = await verifyCapabilityRecord(bytes, { network: this.network, model: this.embedder.id, dim: this.embedder.dim })
      const keys = this.lsh.probes(record.vector, this.publishProbes).map(b => this.lsh.key(b))
      const prev = this.own.get(cap.name)
      this.own.set(cap.name, { cap, text: texts[i], vector, keys, bytes })
      this.cache.put(record)
      for (const k of keys) {
        const id = k.toString()
        if (provideAll || !this.provided.has(id)) toProvide.push(k)
        this.provided.set(id, k)
      }
      if (prev != null) await this.releaseKeys(prev.keys)
      await this.gossip(bytes)
    }
    this.enqueueProvides(toProvide)
  }

  /** Provide bucket keys in the background, each distinct key once, a few at a time */
  private enqueueProvides (keys: CID[]): void {
    if (this.dht == null && this.components.contentRouting == null) return
    for (const k of keys) this.provideQueue.set(k.toString(), k)
    const limit = Math.max(1, this.init.provideConcurrency ?? 4)
    while (this.started && this.provideWorkers < limit && this.provideQueue.size > 0) {
      this.provideWorkers++
      this.provideWorker().catch(() => {}).finally(() => {
        this.provideWorkers--
        this.wakeIdle()
      })
    }
  }

  private async provideWorker (): Promise<void> {
    while (this.started && this.provideQueue.size > 0) {
      const [id, key] = this.provideQueue.entries().next().value as [string, CID]
      this.provideQueue.delete(id)
      // a key released meanwhile (capability removed) is not provided
      if (!this.provided.has(id)) continue
      const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(this.init.dhtTimeoutMs ?? 30_000)])
      try {
        if (this.dht != null) {
          let stored = 0
          for await (const ev of this.dht.provide(key, { signal })) {
            if (ev?.name === 'SEND_QUERY') this.publishStats.messages++
            if (ev?.name === 'PEER_RESPONSE' && String(ev.messageName) === 'ADD_PROVIDER') stored++
          }
          if (stored === 0) throw new Error('no peer stored the provider record')
        } else if (this.components.contentRouting != null) {
          await this.components.contentRouting.provide(key, { signal })
        }
        this.publishStats.provided++
      } catch (err) {
        this.publishStats.failed++
        // provided again at the next republish
        if (this.started) this.provided.delete(id)
        this.log('provide %s failed - %e', key, err)
      }
    }
  }

  /** Stop providing keys no current record uses */
  private async releaseKeys (keys: CID[]): Promise<void> {
    const inUse = new Set<string>()
    for (const r of this.own.values()) for (const k of r.keys) inUse.add(k.toString())
    for (const k of keys) {
      const id = k.toString()
      if (inUse.has(id)) continue
      this.provided.delete(id)
      try {
        if (this.dht != null) await this.dht.cancelReprovide(k)
        else await this.components.contentRouting?.cancelReprovide(k)
      } catch {}
    }
  }

  private async withdraw (name: string, signal: AbortSignal): Promise<void> {
    const own = this.own.get(name)
    if (own == null) return
    this.own.delete(name)
    const bytes = await signCapabilityRecord(this.components.privateKey, own.cap, {
      network: this.network,
      owner: this.components.peerId.toString(),
      model: this.embedder.id,
      seq: this.nextSeq(),
      expiresAt: Date.now() + this.recordTtlMs,
      tombstone: true
    })
    const tomb = await verifyCapabilityRecord(bytes, { network: this.network })
    this.cache.put(tomb)
    signal.throwIfAborted()
    await this.gossip(bytes)
    await this.releaseKeys(own.keys)
  }

  private async gossip (bytes: Uint8Array): Promise<void> {
    if (this.pubsub == null) return
    try {
      await this.pubsub.publish(this.topic, bytes)
    } catch (err: any) {
      this.log('publish failed - %s', err?.message)
    }
  }

  private onGossip (evt: CustomEvent<{ topic: string, data: Uint8Array }>): void {
    if (evt.detail.topic !== this.topic) return
    this.accept(evt.detail.data).catch(err => {
      this.log('rejected gossiped record - %s', err.message)
    })
  }

  /** Verify a signed record and cache it; throws InvalidRecordError */
  async accept (bytes: Uint8Array): Promise<CapabilityRecord> {
    const record = await verifyCapabilityRecord(bytes, { network: this.network, model: this.embedder.id, dim: this.embedder.dim })
    if (record.owner === this.components.peerId.toString()) return record
    if (record.tombstone || record.model === this.embedder.id) this.cache.put(record)
    return record
  }

  private candidate (record: CapabilityRecord, similarity: number): Candidate {
    const load = this.peerLoad.get(`${record.owner}/${record.name}`)
    const loadRatio = load != null && load.capacity > 0 ? Math.min(1, load.inflight / load.capacity) : 0
    const latencyMs = this.rtt.get(record.owner)
    const latencyPenalty = latencyMs == null ? 0 : Math.min(1, latencyMs / 1000)
    return {
      peerId: record.owner,
      name: record.name,
      description: record.description,
      tags: record.tags,
      model: record.model,
      attributes: record.attributes,
      similarity,
      load: loadRatio,
      latencyMs,
      score: similarity - this.weights.load * loadRatio - this.weights.latency * latencyPenalty
    }
  }

  private async embedQuery (query: string, signal?: AbortSignal): Promise<Float32Array> {
    if (typeof query !== 'string' || query.trim().length === 0) throw new BadRequestError('query must be a non-empty string')
    if (query.length > 4096) throw new BadRequestError('query is longer than 4096 characters')
    const [v] = await this.embedder.embed([query], { signal })
    return v
  }

  /** Ranked candidates for a query, best first */
  async find (query: string, options: FindOptions = {}): Promise<Candidate[]> {
    return (await this.findWithStats(query, options)).candidates
  }

  async findWithStats (query: string, options: FindOptions = {}): Promise<{ candidates: Candidate[], stats: LookupStats }> {
    if (!this.started) throw new NotStartedError('semantic anycast is not started')
    const start = performance.now()
    const k = Math.max(1, Math.min(options.k ?? 5, 100))
    const minSimilarity = options.minSimilarity ?? this.init.minSimilarity ?? 0.2
    const source = options.source ?? 'auto'
    const vector = await this.embedQuery(query, options.signal)
    const stats: LookupStats = { source: 'cache', keys: 0, dhtMessages: 0, providers: 0, recordsFetched: 0, fetches: 0, dhtMs: 0, ms: 0 }
    let scored = source === 'dht' ? [] : this.cache.search(this.embedder.id, vector, Math.max(k, 20))
    const confident = scored.length > 0 && scored[0].similarity >= (this.init.cacheConfidence ?? 0.35)
    if (source === 'dht' || (source === 'auto' && !confident)) {
      const found = await this.lookupDht(vector, stats, options.signal, options.probes, options.tables, options.providerAnswers)
      stats.source = source === 'dht' ? 'dht' : 'cache+dht'
      const byKey = new Map(scored.map(s => [`${s.record.owner}/${s.record.name}`, s]))
      for (const r of found) {
        // fetched records may be newer than cached ones
        let s = 0
        for (let i = 0; i < vector.length; i++) s += r.vector[i] * vector[i]
        byKey.set(`${r.owner}/${r.name}`, { record: r, similarity: s })
      }
      scored = [...byKey.values()]
    }
    const candidates = scored
      .filter(s => s.similarity >= minSimilarity)
      .map(s => this.candidate(s.record, s.similarity))
      .sort((a, b) => b.score - a.score || b.similarity - a.similarity)
      .slice(0, k)
    stats.ms = performance.now() - start
    return { candidates, stats }
  }

  /** DHT path: probe LSH buckets, find providers, fetch and verify their records */
  private async lookupDht (vector: Float32Array, stats: LookupStats, signal?: AbortSignal, probes = this.probes, tables = this.lsh.tables, providerAnswers?: number): Promise<CapabilityRecord[]> {
    const t0 = performance.now()
    const buckets = this.lsh.probes(vector, Math.max(1, probes)).filter(b => b.table < tables)
    const keys = [...new Map(buckets.map(b => this.lsh.key(b)).map(k => [k.toString(), k])).values()]
    stats.keys = keys.length
    const self = this.components.peerId.toString()
    const providers = new Map<string, PeerInfo>()
    const timeout = AbortSignal.timeout(this.init.dhtTimeoutMs ?? 10_000)
    const sig = AbortSignal.any([this.shutdown.signal, timeout, ...(signal != null ? [signal] : [])])
    const addProvider = (info: PeerInfo): void => {
      providers.set(info.id.toString(), info)
    }
    const responsesPerKey = this.init.dhtResponsesPerKey ?? 3
    const providerAnswersPerKey = providerAnswers ?? this.init.dhtProviderAnswersPerKey ?? 1
    await mapLimit(keys, this.init.dhtConcurrency ?? 16, async key => {
      try {
        if (this.dht != null) {
          // providers of a key are stored on the peers closest to it, which
          // answer first, each with the whole set: stop the query after the
          // first answer naming providers (this node's own provider store
          // counts, at no message), or after a few answers without any
          let responses = 0
          let providerAnswers = 0
          for await (const ev of this.dht.findProviders(key, { signal: sig })) {
            if (ev.name === 'SEND_QUERY') stats.dhtMessages++
            if (ev.name === 'PROVIDER') {
              for (const p of ev.providers as PeerInfo[]) addProvider(p)
              if (++providerAnswers >= providerAnswersPerKey) break
            }
            if (ev.name === 'PEER_RESPONSE' && !ev.from.equals(this.components.peerId) && ++responses >= responsesPerKey) break
          }
        } else if (this.components.contentRouting != null) {
          for await (const p of this.components.contentRouting.findProviders(key, { signal: sig })) addProvider(p)
        }
      } catch (err: any) {
        this.log('findProviders %s failed - %s', key, err?.message)
      }
    })
    stats.providers = providers.size
    stats.dhtMs = performance.now() - t0
    const out: CapabilityRecord[] = []
    const own = this.ownRecords()
    if (providers.has(self)) out.push(...own)
    providers.delete(self)
    // ask each provider for its records in every probed bucket, not only in those it was
    // named for: a provider list may be partial (a peer that missed an ADD_PROVIDER, a
    // local answer cut to k = 20), and the peer is asked anyway
    await mapLimit([...providers.values()], this.init.dhtConcurrency ?? 16, async p => {
      try {
        stats.fetches++
        const records = await this.fetchRecords(p, keys, sig)
        stats.recordsFetched += records.length
        out.push(...records)
      } catch (err: any) {
        this.log('fetching records from %p failed - %s', p.id, err?.message)
      }
    })
    return out
  }

  /** Ask a peer for its records (optionally only those in the given buckets), verify and cache them */
  async fetchRecords (peer: PeerInfo | PeerId, keys: CID[] = [], signal?: AbortSignal): Promise<CapabilityRecord[]> {
    const info: PeerInfo = 'id' in peer ? peer : { id: peer, multiaddrs: [] }
    const res = await this.request(info, {
      kind: Request.Kind.GET_RECORDS,
      id: randomBytes(16),
      deadlineMs: 10_000,
      capability: '',
      input: new Uint8Array(0),
      model: this.embedder.id,
      keys: keys.slice(0, LIMITS.maxKeysPerRequest).map(k => k.bytes)
    }, signal ?? AbortSignal.timeout(10_000), LIMITS.maxRecordBytes * LIMITS.maxRecordsPerResponse + 4096)
    if (res.status !== Response.Status.OK) throw new RemoteError(Response.Status[res.status] ?? String(res.status), res.error)
    const out: CapabilityRecord[] = []
    for (const bytes of res.records) {
      try {
        const r = await this.accept(bytes)
        if (r.owner !== info.id.toString()) throw new Error('record is not owned by the peer that sent it')
        if (!r.tombstone && r.model === this.embedder.id) out.push(this.cache.get(r.owner, r.name) ?? r)
      } catch (err: any) {
        this.log('bad record from %p - %s', info.id, err?.message)
      }
    }
    return out
  }

  private async request (peer: PeerInfo, req: Request, signal: AbortSignal, maxResponseBytes: number): Promise<Response> {
    let stream: Stream
    try {
      stream = await this.components.connectionManager.openStream(peer.id, this.protocol, { signal })
    } catch (err) {
      if (peer.multiaddrs.length === 0) throw err
      stream = await this.components.connectionManager.openStream(peer.multiaddrs, this.protocol, { signal })
    }
    try {
      const pb = pbStream(stream, { maxDataLength: maxResponseBytes })
      await pb.write(req, Request, { signal })
      const res = await pb.read<Response>(Response as any, { signal, limits: { records: LIMITS.maxRecordsPerResponse } })
      await stream.close({ signal }).catch(() => {})
      return res
    } catch (err: any) {
      stream.abort(err)
      throw err
    }
  }

  /** Send the request to the best candidate, failing over to the next ones */
  async ask (query: string, input: unknown, options: AskOptions = {}): Promise<AskResult> {
    if (!this.started) throw new NotStartedError('semantic anycast is not started')
    const started = performance.now()
    const timeoutMs = options.timeoutMs ?? this.init.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const deadline = started + timeoutMs
    const maxAttempts = Math.max(1, options.maxAttempts ?? this.init.maxAttempts ?? DEFAULT_MAX_ATTEMPTS)
    const inputBytes = u8FromString(JSON.stringify(input ?? null))
    const maxInput = this.init.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES
    if (inputBytes.byteLength > maxInput) throw new TooLargeError(`input is ${inputBytes.byteLength} bytes, limit ${maxInput}`)
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(options.signal != null ? [options.signal] : [])])
    const found = await this.find(query, { k: Math.max(maxAttempts * 2, 5), signal, minSimilarity: options.minSimilarity })
    const best = Math.max(0, ...found.map(c => c.similarity))
    const candidates = found.filter(c => c.similarity >= best * (options.minRelativeSimilarity ?? 0))
    if (candidates.length === 0) throw new NoCandidatesError(`no peer offers a capability matching "${query.slice(0, 80)}"`)
    const failures: Array<{ peerId: string, capability: string, error: string }> = []
    let attempts = 0
    for (const c of candidates) {
      if (attempts >= maxAttempts || signal.aborted) break
      attempts++
      const remaining = deadline - performance.now()
      const left = Math.min(maxAttempts - attempts + 1, candidates.length - attempts + 1)
      // leave time for the next candidates unless this is the last one
      const budget = left > 1 ? Math.max(remaining / 2, Math.min(remaining, 1000)) : remaining
      try {
        const output = await this.invoke(c, inputBytes, Math.max(1, Math.floor(budget)), signal)
        return { output, peerId: c.peerId, capability: c.name, similarity: c.similarity, attempts, latencyMs: performance.now() - started, failures }
      } catch (err: any) {
        failures.push({ peerId: c.peerId, capability: c.name, error: `${err?.name ?? 'Error'}: ${err?.message ?? err}` })
      }
    }
    throw new AllCandidatesFailedError(`all ${attempts} candidates failed: ${failures.map(f => f.error).join('; ')}`, failures)
  }

  /** Invoke one capability on one peer (this node included) */
  private async invoke (c: Candidate, input: Uint8Array, timeoutMs: number, outer: AbortSignal): Promise<unknown> {
    const signal = AbortSignal.any([outer, AbortSignal.timeout(timeoutMs)])
    if (c.peerId === this.components.peerId.toString()) {
      const out = await this.runLocal(c.name, input, timeoutMs, signal)
      if (out.status !== Response.Status.OK) throw new RemoteError(Response.Status[out.status], out.error)
      return JSON.parse(u8ToString(out.output))
    }
    const t0 = performance.now()
    const res = await this.request({ id: peerIdFromString(c.peerId), multiaddrs: [] }, {
      kind: Request.Kind.INVOKE,
      id: randomBytes(16),
      deadlineMs: timeoutMs,
      capability: c.name,
      input,
      model: '',
      keys: []
    }, signal, (this.init.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES) + 4096)
    const rtt = performance.now() - t0
    const prev = this.rtt.get(c.peerId)
    this.rtt.set(c.peerId, prev == null ? rtt : prev * 0.8 + rtt * 0.2)
    if (res.capacity > 0) this.peerLoad.set(`${c.peerId}/${c.name}`, { inflight: res.inflight, capacity: res.capacity })
    if (res.status !== Response.Status.OK) throw new RemoteError(Response.Status[res.status] ?? String(res.status), res.error)
    try {
      return JSON.parse(u8ToString(res.output))
    } catch {
      throw new RemoteError('ERROR', 'response output is not JSON')
    }
  }

  private async runLocal (name: string, input: Uint8Array, timeoutMs: number, outer?: AbortSignal): Promise<Pick<Response, 'status' | 'output' | 'error' | 'inflight' | 'capacity'>> {
    const cap = this.own.get(name)?.cap ?? this.init.provider.list().find(c => c.name === name)
    const capacity = cap?.attributes?.maxConcurrency ?? 0
    const base = { output: new Uint8Array(0), error: '', inflight: this.inflight.get(name) ?? 0, capacity }
    if (cap == null) return { ...base, status: Response.Status.NOT_FOUND, error: `no capability named ${name}` }
    const maxInput = this.init.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES
    if (input.byteLength > maxInput) return { ...base, status: Response.Status.TOO_LARGE, error: `input is larger than ${maxInput} bytes` }
    let value: unknown
    try {
      value = JSON.parse(u8ToString(input))
    } catch {
      return { ...base, status: Response.Status.BAD_REQUEST, error: 'input is not JSON' }
    }
    const timeout = AbortSignal.timeout(Math.max(1, Math.min(timeoutMs, this.init.timeoutMs ?? DEFAULT_TIMEOUT_MS * 10)))
    const signal = AbortSignal.any([timeout, this.shutdown.signal, ...(outer != null ? [outer] : [])])
    this.inflight.set(name, (this.inflight.get(name) ?? 0) + 1)
    try {
      const output = await new Promise<unknown>((resolve, reject) => {
        const onAbort = (): void => { reject(signal.reason) }
        signal.addEventListener('abort', onAbort, { once: true })
        this.init.provider.invoke(name, value, { signal }).then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
      })
      const bytes = u8FromString(JSON.stringify(output ?? null))
      const maxOutput = this.init.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES
      if (bytes.byteLength > maxOutput) return { ...base, status: Response.Status.TOO_LARGE, error: `output is larger than ${maxOutput} bytes` }
      return { ...base, status: Response.Status.OK, output: bytes }
    } catch (err: any) {
      if (err?.name === 'OverloadedError') return { ...base, status: Response.Status.OVERLOADED, error: String(err.message ?? 'overloaded') }
      if (timeout.aborted || err?.name === 'TimeoutError') return { ...base, status: Response.Status.TIMEOUT, error: 'handler timed out' }
      return { ...base, status: Response.Status.ERROR, error: String(err?.message ?? err).slice(0, 1024) }
    } finally {
      this.inflight.set(name, Math.max(0, (this.inflight.get(name) ?? 1) - 1))
    }
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
    let res: Response
    const base = { id: req.id, output: new Uint8Array(0), error: '', records: [], inflight: 0, capacity: 0 }
    if (req.kind === Request.Kind.GET_RECORDS) {
      const wanted = new Set(req.keys.map(k => { try { return CID.decode(k).toString() } catch { return '' } }))
      const records: Uint8Array[] = []
      for (const own of this.own.values()) {
        if (req.model !== '' && req.model !== this.embedder.id) break
        if (wanted.size > 0 && !own.keys.some(k => wanted.has(k.toString()))) continue
        records.push(own.bytes)
        if (records.length >= LIMITS.maxRecordsPerResponse) break
      }
      res = { ...base, status: Response.Status.OK, records }
    } else if (req.kind === Request.Kind.INVOKE) {
      const timeoutMs = req.deadlineMs > 0 ? req.deadlineMs : DEFAULT_TIMEOUT_MS
      res = { ...base, ...await this.runLocal(req.capability, req.input, timeoutMs) }
    } else {
      res = { ...base, status: Response.Status.BAD_REQUEST, error: 'unknown request kind' }
    }
    try {
      await pb.write(res, Response, { signal: AbortSignal.timeout(10_000) })
      await stream.close({ signal: AbortSignal.timeout(10_000) })
    } catch (err: any) {
      stream.abort(err)
    }
  }
}

export function semanticAnycast (init: SemanticAnycastInit): (components: SemanticAnycastComponents) => SemanticAnycast {
  return (components) => new SemanticAnycast(components, init)
}
