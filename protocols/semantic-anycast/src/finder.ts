import { BadRequestError, NotStartedError } from './errors.js'
import { RateLimiter } from './gossip-guard.js'
import { requestRecords } from './invoke.js'
import { dhtLookup, emptyExplain } from './lookup.js'
import type { RecordCache } from './cache.js'
import type { LookupLimiter } from './limiter.js'
import type { OwnerLiveness } from './liveness.js'
import type { Explain, KeyProviders, PeerFetches } from './lookup.js'
import type { SimHashLsh } from './lsh.js'
import type { RequestDialer } from './invoke.js'
import type { CapabilityRecord } from './record.js'
import type { Reranker } from './reranker.js'
import type { Candidate, DhtLike, FindOptions, LookupStats, ResultSource, SemanticAnycastComponents, SemanticAnycastInit } from './types.js'
import { dot } from '@aistack/embeddings'
import type { Embedder } from '@aistack/embeddings'
import type { Logger, PeerId, PeerInfo } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** A description or name as an exact match compares it: trimmed, lower case, single spaces, no final stop */
function normText (s: string): string {
  return s.trim().toLowerCase().replace(/\s+/g, ' ').replace(/[.!?]+$/, '')
}

/** What the finder takes from the service: its shared parts and the roles it asks */
export interface FinderInit {
  components: Pick<SemanticAnycastComponents, 'peerId' | 'connectionManager' | 'contentRouting'>
  /** sends record requests (see `sendRequest`) */
  dialer: RequestDialer
  init: SemanticAnycastInit
  protocol: string
  log: Logger
  /** the network-wide base model: record vectors and LSH keys */
  embedder: Embedder
  /** the node's ranking model when it differs from the base one */
  reranker?: Reranker
  cache: RecordCache
  liveness: OwnerLiveness
  lookups: LookupLimiter
  keyProviders: KeyProviders
  peerFetches: PeerFetches
  lsh: SimHashLsh
  probes: number
  recordTtlMs: number
  /** this node's own records */
  ownRecords: () => CapabilityRecord[]
  /** a scored candidate of a record (scoring belongs to the service) */
  candidate: (record: CapabilityRecord, similarity: number, source: ResultSource, exact: boolean) => Candidate
  /** verifies a signed record and caches it; throws InvalidRecordError */
  accept: (bytes: Uint8Array) => Promise<CapabilityRecord>
  /** when the last anti-entropy answer held every record its sender knew (Announcer) */
  neighbourViewAt: () => number | undefined
}

/**
 * The find path of semantic anycast: a query against own records and the cache, then the DHT
 * (LSH bucket keys, providers, their records) through the node's lookup limiter when the cache
 * is not enough; identical lookups running at once share one. Owns the lookups in flight.
 */
export class Finder {
  private readonly deps: FinderInit
  private readonly components: FinderInit['components']
  private readonly init: SemanticAnycastInit
  private readonly protocol: string
  private readonly log: Logger
  private readonly embedder: Embedder
  private readonly reranker?: Reranker
  private readonly cache: RecordCache
  private readonly liveness: OwnerLiveness
  private readonly lookups: LookupLimiter
  private readonly keyProviders: KeyProviders
  private readonly peerFetches: PeerFetches
  private readonly lsh: SimHashLsh
  /** background refreshes: `refreshRate` per second, a burst of 2 */
  private readonly refreshes: RateLimiter
  private readonly probes: number
  private readonly recordTtlMs: number
  private readonly pendingLookups = new Map<string, { run: Promise<{ records: CapabilityRecord[], self: boolean }>, explain: Explain }>()
  private dht?: DhtLike
  private started = false
  private shutdown = new AbortController()

  constructor (deps: FinderInit) {
    this.deps = deps
    this.components = deps.components
    this.init = deps.init
    this.protocol = deps.protocol
    this.log = deps.log
    this.embedder = deps.embedder
    this.reranker = deps.reranker
    this.cache = deps.cache
    this.liveness = deps.liveness
    this.lookups = deps.lookups
    this.keyProviders = deps.keyProviders
    this.peerFetches = deps.peerFetches
    this.lsh = deps.lsh
    this.probes = deps.probes
    this.recordTtlMs = deps.recordTtlMs
    this.refreshes = new RateLimiter(Math.max(0, deps.init.refreshRate ?? 0.2), 2, 1)
  }

  start (dht?: DhtLike): void {
    this.dht = dht
    this.shutdown = new AbortController()
    this.started = true
  }

  /** Ends the lookups in flight */
  stop (): void {
    this.started = false
    this.shutdown.abort()
  }

  private checkQuery (query: string): void {
    if (typeof query !== 'string' || query.trim().length === 0) throw new BadRequestError('query must be a non-empty string')
    if (query.length > 4096) throw new BadRequestError('query is longer than 4096 characters')
  }

  /**
   * Ranked candidates and what the lookup did. Own records always count; the
   * cache answers alone only with `k` fresh confident records of other nodes;
   * an empty connection list means no DHT wait. Throws LookupQueueFullError
   * when the node's lookup queue is full.
   */
  async findWithStats (query: string, options: FindOptions = {}): Promise<{ candidates: Candidate[], stats: LookupStats }> {
    if (!this.started) throw new NotStartedError('semantic anycast is not started')
    this.checkQuery(query)
    const start = performance.now()
    const explain = emptyExplain()
    const k = Math.max(1, Math.min(options.k ?? 5, 100))
    const minSimilarity = options.minSimilarity ?? this.init.minSimilarity ?? 0.2
    const source = options.source ?? 'auto'
    const [vector] = await this.embedder.embed([query], { signal: options.signal })
    const rankVector = this.reranker != null ? (await this.reranker.embedder.embed([query], { signal: options.signal }))[0] : undefined
    explain.phases.embedMs = Math.round(performance.now() - start)
    const self = this.components.peerId.toString()
    const stats: LookupStats = { source: 'cache', keys: 0, dhtMessages: 0, providers: 0, recordsFetched: 0, fetches: 0, dhtMs: 0, ms: 0, explain }
    const t1 = performance.now()
    const pool = Math.max(k * 4, 20)
    const scored = new Map<string, { record: CapabilityRecord, similarity: number, source: ResultSource }>()
    for (const r of this.deps.ownRecords()) scored.set(`${r.owner}/${r.name}`, { record: r, similarity: dot(r.vector, vector), source: 'own' })
    const now = Date.now()
    if (source !== 'dht') {
      for (const s of this.cache.search(this.embedder.id, vector, pool, now, r => r.owner === self)) {
        scored.set(`${s.record.owner}/${s.record.name}`, { ...s, source: 'cache' })
      }
    }
    explain.phases.cacheMs = Math.round(performance.now() - t1)
    const freshMs = this.init.cacheFreshMs ?? 60_000
    const confidence = this.init.cacheConfidence ?? 0.35
    // confident: records of other nodes at or above the threshold, of owners not failing;
    // fresh: of those, received or confirmed within cacheFreshMs
    const confidentList = [...scored.values()].filter(s => s.source === 'cache' && s.similarity >= confidence && this.liveness.state(s.record.owner) !== 'failing')
    const confident = confidentList.length
    const fresh = confidentList.filter(s => now - (this.cache.confirmedAt(s.record.owner, s.record.name) ?? 0) <= freshMs).length
    const hasPeers = this.components.connectionManager.getConnections().length > 0
    let wantDht = source === 'dht' || (source === 'auto' && fresh < k)
    // the cache answers at once when it has confident results, or holds the network as a neighbour
    // saw it (what a lookup would add is then at most what that neighbour did not know), and the
    // DHT refreshes it in the background
    const holdsNetwork = this.holdsNetwork(now)
    const background = source === 'auto' && wantDht && (confident > 0 || holdsNetwork) && options.probes == null && options.tables == null
    explain.reason = source === 'cache'
      ? 'source is cache'
      : source === 'dht'
        ? 'source is dht'
        : fresh >= k
          ? `the cache holds ${k} fresh results at or above ${confidence}`
          : `the cache holds ${fresh} of ${k} fresh results at or above ${confidence} (${confident} in all)`
    if (wantDht && !hasPeers) {
      wantDht = false
      explain.reason += '; no peers connected, the DHT is not asked'
    }
    if (wantDht && background) {
      if (confident === 0) explain.reason += '; the cache holds the network as a neighbour saw it'
      // a refresh never waits in the queue: it runs only when a lookup slot is free, and at most
      // `refreshRate` per second
      const { running } = this.lookups.load
      if (running >= this.lookups.concurrency) {
        explain.reason += '; answered from the cache, every lookup slot is busy: no refresh'
      } else if (!this.refreshes.take('')) {
        explain.reason += '; answered from the cache, refreshed lately: no refresh'
      } else {
        explain.reason += '; answered from the cache, the DHT refreshes it in the background'
        explain.refreshing = true
        this.lookupDht(vector, emptyExplain(), { ...options, signal: undefined }).catch(err => {
          this.log('background refresh failed - %s', err?.message)
        })
      }
    } else if (wantDht) {
      stats.source = source === 'dht' ? 'dht' : 'cache+dht'
      const found = await this.lookupDht(vector, explain, options)
      for (const r of found) {
        if (r.owner === self) continue
        // fetched records may be newer than cached ones
        scored.set(`${r.owner}/${r.name}`, { record: r, similarity: dot(r.vector, vector), source: 'dht' })
      }
    }
    explain.path = stats.source === 'cache' && [...scored.values()].every(s => s.source === 'own') && scored.size > 0 ? 'own' : stats.source
    let list = [...scored.values()].sort((a, b) => b.similarity - a.similarity).slice(0, pool)
    if (this.reranker != null && rankVector != null && list.length > 0) {
      const t2 = performance.now()
      const sims = await this.reranker.similarities(list.map(s => s.record), rankVector, options.signal)
      list = list.map((s, i) => ({ ...s, similarity: sims[i] }))
      explain.reranked = list.length
      explain.phases.rerankMs = Math.round(performance.now() - t2)
    }
    const q = normText(query)
    const candidates = list
      .map(s => this.deps.candidate(s.record, s.similarity, s.source, normText(s.record.description) === q || normText(s.record.name) === q))
      .filter(c => c.exact || c.similarity >= minSimilarity)
      .sort((a, b) => Number(a.liveness === 'failing') - Number(b.liveness === 'failing') ||
        Number(b.exact) - Number(a.exact) ||
        b.score - a.score || b.similarity - a.similarity)
      .slice(0, k)
    stats.keys = explain.keyCount
    stats.dhtMessages = explain.dhtMessages
    stats.providers = explain.providers.length
    stats.recordsFetched = explain.recordsFetched
    stats.fetches = explain.fetches.filter(f => f.error == null || !f.error.startsWith('skipped')).length
    stats.dhtMs = explain.phases.providersMs
    stats.ms = performance.now() - start
    return { candidates, stats }
  }

  /** DHT path of `find`, through the node's lookup limiter; identical lookups running at once share one */
  private async lookupDht (vector: Float32Array, explain: Explain, options: FindOptions): Promise<CapabilityRecord[]> {
    const probes = Math.max(1, options.probes ?? this.probes)
    const tables = options.tables ?? this.lsh.tables
    // the query's own bucket in every table first, then the neighbours by rank
    const buckets = this.lsh.probes(vector, probes)
      .map((b, i) => ({ b, rank: i % probes }))
      .filter(({ b }) => b.table < tables)
      .sort((x, y) => x.rank - y.rank)
      .map(({ b }) => b)
    const primaryKeys = Math.min(tables, buckets.length)
    const keys = [...new Map(buckets.map(b => this.lsh.key(b)).map(k => [k.toString(), k])).values()]
    const id = `${keys.map(k => k.toString()).join(',')}|${options.providerAnswers ?? ''}|${options.source === 'dht' ? 'dht' : ''}`
    const shared = this.pendingLookups.get(id)
    if (shared != null) {
      explain.reason += '; joined an identical lookup already running'
      const { records } = await shared.run
      const e = shared.explain
      Object.assign(explain, { keys: e.keys, keyCount: e.keyCount, dhtMessages: e.dhtMessages, keysShared: e.keysShared, keysAbandoned: e.keysAbandoned, fetchesPending: e.fetchesPending, providers: e.providers, fetches: e.fetches, recordsFetched: e.recordsFetched })
      Object.assign(explain.phases, { queueMs: e.phases.queueMs, providersMs: e.phases.providersMs, fetchMs: e.phases.fetchMs })
      return records
    }
    const queued = performance.now()
    const k = Math.max(1, Math.min(options.k ?? 5, 100))
    explain.load = this.lookups.load
    const signal = AbortSignal.any([this.shutdown.signal, ...(options.signal != null ? [options.signal] : [])])
    const run = this.lookups.run(async () => {
      explain.phases.queueMs = Math.round(performance.now() - queued)
      return dhtLookup({
        self: this.components.peerId,
        dht: this.dht,
        contentRouting: this.dht == null ? this.components.contentRouting : undefined,
        log: this.log,
        // an explicit DHT search asks the providers again; others share what was fetched lately
        fetch: async (peer, keys, sig) => options.source === 'dht'
          ? this.fetchRecords(peer, keys, sig)
          : (await this.peerFetches.get(peer.id.toString(), keys, async missing => this.fetchRecords(peer, missing, sig)))
              .map(r => this.cache.get(r.owner, r.name)).filter((r): r is CapabilityRecord => r != null && !r.tombstone),
        skip: peer => this.liveness.backingOff(peer),
        concurrency: this.init.dhtConcurrency ?? 16,
        responsesPerKey: this.init.dhtResponsesPerKey ?? 3,
        providerAnswersPerKey: options.providerAnswers ?? this.init.dhtProviderAnswersPerKey ?? 1,
        providersTimeoutMs: this.init.dhtTimeoutMs ?? 10_000,
        fetchTimeoutMs: this.init.fetchTimeoutMs ?? 5000,
        softMs: this.init.lookupSoftMs ?? 1500,
        // cut at the soft budget only once k records of other nodes clear the confidence threshold
        enough: records => {
          const confidence = this.init.cacheConfidence ?? 0.35
          const self = this.components.peerId.toString()
          const good = new Set<string>()
          // an explicit DHT search counts only what the network answered
          const cached = options.source === 'dht' ? [] : this.cache.search(this.embedder.id, vector, k, Date.now(), r => r.owner === self)
          for (const s of cached) {
            if (s.similarity >= confidence && this.liveness.state(s.record.owner) !== 'failing') good.add(`${s.record.owner}/${s.record.name}`)
          }
          for (const r of records) if (dot(r.vector, vector) >= confidence) good.add(`${r.owner}/${r.name}`)
          return good.size >= k
        },
        primaryKeys,
        // an explicit DHT search asks the network again
        keyCache: options.source === 'dht' ? undefined : this.keyProviders
      }, keys, explain, signal)
    }, signal)
    this.pendingLookups.set(id, { run, explain })
    try {
      return (await run).records
    } finally {
      this.pendingLookups.delete(id)
    }
  }

  /**
   * The cache holds the network as a neighbour saw it: the last anti-entropy answer that held every
   * record its sender knew arrived within the record lifetime
   */
  private holdsNetwork (now: number): boolean {
    const viewAt = this.deps.neighbourViewAt()
    return viewAt != null && now - viewAt <= this.recordTtlMs
  }

  /**
   * Ask a peer for its own records (only those in the given buckets when keys
   * are given), verify and cache them. Marks the peer live on an answer and
   * failing on a transport error.
   */
  async fetchRecords (peer: PeerInfo | PeerId, keys: CID[] = [], signal?: AbortSignal): Promise<CapabilityRecord[]> {
    const info: PeerInfo = 'id' in peer ? peer : { id: peer, multiaddrs: [] }
    const owner = info.id.toString()
    const records = await requestRecords(this.deps.dialer, this.protocol, info, { model: this.embedder.id, keys }, this.liveness, signal ?? AbortSignal.timeout(10_000))
    const out: CapabilityRecord[] = []
    for (const bytes of records) {
      try {
        // verified and cached (a record of the base model, or a tombstone)
        const r = await this.deps.accept(bytes)
        if (r.owner !== owner) throw new Error('record is not owned by the peer that sent it')
        if (!r.tombstone && r.model === this.embedder.id) out.push(this.cache.get(r.owner, r.name) ?? r)
      } catch (err: any) {
        this.log('bad record from %p - %s', info.id, err?.message)
      }
    }
    return out
  }
}
