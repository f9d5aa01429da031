import type { CacheInit } from './cache.js'
import type { GossipLimits } from './gossip-guard.js'
import type { CapabilityProvider } from './invoke.js'
import type { LivenessInit, Liveness } from './liveness.js'
import type { Explain } from './lookup.js'
import type { CapabilityAttributes } from './record.js'
import type { VectorsName } from './vectors.js'
import type { Embedder } from '@aistack/embeddings'
import type { ComponentLogger, PeerId, PeerInfo, PrivateKey } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { CID } from 'multiformats/cid'

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

/** Verdict of a gossipsub topic validator (the values of gossipsub's `TopicValidatorResult`) */
export type ValidatorResult = 'accept' | 'ignore' | 'reject'

/** The parts of gossipsub the service uses */
export interface PubSubLike {
  subscribe(topic: string): void
  unsubscribe(topic: string): void
  publish(topic: string, data: Uint8Array): Promise<unknown>
  addEventListener(type: 'message' | 'subscription-change', listener: (evt: CustomEvent<any>) => void): void
  removeEventListener(type: 'message' | 'subscription-change', listener: (evt: CustomEvent<any>) => void): void
  /** gossipsub's validators: the service validates, rate-limits and caches records there when present */
  topicValidators?: Map<string, any>
}

/** What anycast needs of libp2p's peer routing (the peer store, then the DHT) */
export interface PeerRoutingLike {
  /** @throws when the peer cannot be found (libp2p's NotFoundError) */
  findPeer(peer: PeerId, options?: { signal?: AbortSignal }): Promise<PeerInfo>
}

export interface SemanticAnycastComponents {
  peerId: PeerId
  privateKey: PrivateKey
  registrar: Registrar
  connectionManager: ConnectionManager
  logger: ComponentLogger
  /** addresses put in provider records; providing waits until there is one */
  addressManager?: { getAddresses(): unknown[] }
  /** used when no `dht` service is present */
  contentRouting?: ContentRoutingLike
  /** finds the addresses of an owner this node holds none for, before dialing it */
  peerRouting?: PeerRoutingLike
  dht?: DhtLike
  pubsub?: PubSubLike
  /** node events: a connection to an owner that closes with an error demotes it */
  events?: EventTarget
}

export interface ScoreWeights {
  /** subtracted per unit of load (in flight / capacity), default 0.1 */
  load: number
  /** subtracted per second of observed round-trip time (capped at 1 s), default 0.05 */
  latency: number
  /** subtracted per unit of error rate (errors / requests, from a load source), default 0.1 */
  errors: number
}

/**
 * What a load source (the node's telemetry table, `@aistack/telemetry`'s
 * `loadOf`) knows of a peer: liveness, age of its last record, load (in
 * flight / capacity, 0..1), p95 latency in ms and error rate (0..1), overall
 * and per capability
 */
export interface SourcedLoad {
  up: boolean
  /** ms since its last record arrived */
  lastSeenMs: number
  load: number
  p95Ms: number
  errorRate: number
  capabilities: Record<string, { load: number, p95Ms: number }>
}

/** Where scoring reads peers' load when it is fresher than the last anycast answer */
export interface LoadSource {
  /** undefined when the source knows nothing of the peer */
  loadOf(peerId: string): SourcedLoad | undefined
}

export interface SemanticAnycastInit {
  /** Network id, prefix of protocol ids, topic and DHT keys; default 'aistack' */
  network?: string
  /**
   * The node's ranking embedder: queries and candidates are compared with it.
   * When it differs from `baseEmbedder`, candidates are re-ranked by embedding
   * their record texts with it (cached per record).
   */
  embedder: Embedder
  /**
   * The network-wide base embedder (an offline one every node has): record
   * vectors and LSH keys are of this model, so any node finds any record.
   * Default: `embedder`.
   */
  baseEmbedder?: Embedder
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
  /**
   * How this node's asks take numeric vectors in answers (docs/protocols/semantic-anycast.md,
   * "Vectors in answers"): 'f32' (default) as tensors where that is exact, 'f16', 'bf16' or
   * 'int8' as smaller lossy tensors, 'json' as JSON numbers
   */
  vectors?: VectorsName
  /** Default `ask` timeout, default 30 s */
  timeoutMs?: number
  /** Candidates tried by `ask`, default 3 */
  maxAttempts?: number
  /** Candidates below this cosine similarity are not returned, default 0.2 */
  minSimilarity?: number
  /**
   * `find` in auto mode answers from the cache alone when it holds `k` records
   * of other nodes at or above this similarity, all confirmed within
   * `cacheFreshMs` and none of a failing owner; with fewer but at least one,
   * it answers from the cache and refreshes it from the DHT in the
   * background; with none, it waits for the DHT, unless the cache holds the
   * network as a neighbour saw it (see `neighbourViewAt`): then it answers
   * from the cache and refreshes it in the background too. Default 0.35
   */
  cacheConfidence?: number
  /**
   * Background refreshes (DHT lookups started by searches the cache
   * answered) per second, default 0.2, with a burst of 2; a refresh also
   * needs a free lookup slot. Records arrive by gossip and anti-entropy: a
   * refresh per search only costs CPU under many searches.
   */
  refreshRate?: number
  /** See `cacheConfidence`, default 60 s */
  cacheFreshMs?: number
  /** Parallel DHT queries (and, separately, record fetches) per lookup, default 16 */
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
  /** Budget of finding providers in a lookup, default 10 s */
  dhtTimeoutMs?: number
  /** Budget of each record fetch in a lookup, default 5 s */
  fetchTimeoutMs?: number
  /**
   * soft budget of a DHT lookup (ms), default 1500: past it, queries of neighbouring
   * buckets are given up and the lookup answers with what it has (see lookup.ts); 0 turns it off
   */
  lookupSoftMs?: number
  /** how long the providers found for a bucket key answer further lookups (ms), default 15 s; 0 turns it off */
  providerCacheMs?: number
  /**
   * Lookups on the network run at once (default 8) and waiting (default 64,
   * each at most `maxWaitMs`, default 10 s); more are refused
   */
  lookups?: { concurrency?: number, maxQueued?: number, maxWaitMs?: number }
  /** Bounds of the record cache (count, per owner, tombstones, bytes) */
  cache?: CacheInit
  /** Owner liveness: eviction after failures, back-off */
  liveness?: LivenessInit
  /** Rate limits on the capabilities topic */
  gossipLimits?: Partial<GossipLimits>
  /**
   * Traces served requests: an INVOKE carrying a `traceparent` gets a span
   * of this node (a child of the asker's), returned with the response.
   * None: requests are served untraced.
   */
  tracer?: AnycastTracer
  /** Re-ranking vectors kept (records), default 10,000 */
  rerankCacheSize?: number
  /** Subscribe to and publish on the caps topic, default true */
  gossip?: boolean
  weights?: Partial<ScoreWeights>
  /**
   * Peers' load, latency and error rate from elsewhere (the node's telemetry
   * table): used for a candidate when its record arrived after the owner's
   * last anycast answer
   */
  loadSource?: LoadSource
}

export interface FindOptions {
  k?: number
  /** DHT path: probe this many buckets per table instead of the configured number */
  probes?: number
  /** DHT path: probe only the first `tables` tables (planes are shared, so this is the lookup of a smaller L) */
  tables?: number
  /** DHT path: a key's provider query stops after this many answers naming providers (see `dhtProviderAnswersPerKey`) */
  providerAnswers?: number
  /**
   * 'auto' (default): the cache, and the DHT unless the cache holds k fresh
   * confident results; 'cache' or 'dht' only. The node's own records count for every source.
   */
  source?: 'auto' | 'cache' | 'dht'
  minSimilarity?: number
  signal?: AbortSignal
}

/** Where a search result came from */
export type ResultSource = 'own' | 'cache' | 'dht'

export interface Candidate {
  peerId: string
  name: string
  description: string
  tags: string[]
  model: string
  attributes: CapabilityAttributes
  /** cosine similarity under the ranking embedder */
  similarity: number
  /** in flight / capacity last seen for this capability, 0 when unknown */
  load: number
  /** smoothed round-trip time to the peer, or its p95 from the load source; undefined when unknown */
  latencyMs?: number
  /** errors / requests from the load source, 0 when unknown */
  errorRate?: number
  /** where load, latency and error rate came from */
  loadFrom?: 'anycast' | 'telemetry' | 'none'
  score: number
  /** the query is the text of this capability's description or name */
  exact: boolean
  source: ResultSource
  /** when the record was last received or confirmed (ms since the epoch) */
  confirmedAt: number
  liveness: Liveness
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
  explain: Explain
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
  /**
   * The asker's span of this ask: each attempt gets a child span with the
   * semantic path (peer, capability, similarity, source, why), its
   * `traceparent` travels with the request and the answering node's spans
   * returned with the response are adopted into the trace
   */
  trace?: AnycastSpan
}

/** A span as it travels in an INVOKE response (the `Span` message); see docs/protocols/semantic-anycast.md */
export interface WireSpan {
  /** 16 lowercase hex digits */
  spanId: string
  parentId: string
  peerId: string
  name: string
  /** unix ms */
  startMs: number
  durationMs: number
  error: boolean
  attributes: Array<{ key: string, value: string }>
}

/** A span the service records through its tracer (@aistack/telemetry's `TraceHandle` fits) */
export interface AnycastSpan {
  /** W3C trace-context `traceparent` of this span */
  readonly traceparent: string
  setAttributes(attributes: Record<string, string | number | boolean>): void
  child(name: string, attributes?: Record<string, string | number | boolean>, kind?: 'client' | 'server'): AnycastSpan
  /** ends the span, as an error when `error` is given */
  end(error?: string): void
  /** takes (checked and bounded) the spans another node returned for a request sent with this span's traceparent */
  adopt(spans: readonly WireSpan[]): number
  /** this node's spans below this one (it included), bounded, for a response */
  wireSpans(): WireSpan[]
}

/** Continues a trace from another node */
export interface AnycastTracer {
  /**
   * A span, child of the span `traceparent` names; undefined when the value
   * is malformed (the request is then served untraced, never refused)
   */
  continue(traceparent: string, name: string, attributes?: Record<string, string | number | boolean>): AnycastSpan | undefined
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
