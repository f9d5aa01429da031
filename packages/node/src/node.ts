import { join } from 'node:path'
import { createEmbedder, EmbeddingError, LocalEmbedder } from '@aistack/embeddings'
import { capsTopic, capsTopicScoreParams, semanticAnycast } from '@aistack/semantic-anycast'
import { sembatch } from '@aistack/sembatch'
import { taskQueue } from '@aistack/task'
import { connectionEncrypters, didFromPeerId, downgradeGuard, encryptionName, isPq, isQuicAddr } from '@aistack/handshake'
import { quic } from '@chainsafe/libp2p-quic'
import { bootstrap } from '@libp2p/bootstrap'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { tcp } from '@libp2p/tcp'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { MemoryDatastore } from 'datastore-core'
import { LevelDatastore } from 'datastore-level'
import { createLibp2p } from 'libp2p'
import { Registry } from 'prom-client'
import { anycastMetrics } from './anycast-metrics.js'
import { CapabilityRegistry } from './capabilities/index.js'
import { describeRemoteCapabilities } from './capabilities/describe.js'
import { anycastProvider, capabilityExecutor } from './capabilities/adapters.js'
import { defaultConfig, parseNetwork } from './config.js'
import { connectionLimiter, libp2pView } from './gater.js'
import { BootstrapMonitor } from './joining.js'
import { usableListenAddrs } from './listen.js'
import { ConfigError } from './errors.js'
import { shortMessageId } from './gossip-id.js'
import { muxer } from './muxer.js'
import { ping } from './ping.js'
import { runtimeInfo } from './runtime.js'
import { askBatch, askStream, serveCapabilities } from './sembatch.js'
import type { AskBatchOptions, AskBatchResult, AskStreamResult } from './sembatch.js'
import { lateTracer, nodeTelemetry, telemetryLoadSource, telemetryMetrics } from './telemetry.js'
import { VERSION } from './version.js'
import type { AgentConfig, NetworkPreset, SembatchConfig } from './config.js'
import type { BootstrapPeerState } from './joining.js'
import type { LaneStackInit } from './lane-stack.js'
import type { RuntimeInfo } from './runtime.js'
import type { BatchHandlerFn, HandlerFn, ServeSpec } from './capabilities/index.js'
import type { Embedder } from '@aistack/embeddings'
import type { DowngradeGuard } from '@aistack/handshake'
import type { SemanticAnycast } from '@aistack/semantic-anycast'
import type { SembatchService, SembatchStats } from '@aistack/sembatch'
import type { TaskService } from '@aistack/task'
import type { TelemetryService } from '@aistack/telemetry'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Connection, Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Ping } from '@libp2p/ping'
import type { Datastore } from 'interface-datastore'

export interface AgentServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
  downgradeGuard: DowngradeGuard
  anycast: SemanticAnycast
  tasks: TaskService
  sembatch: SembatchService
  telemetry: TelemetryService
}

export interface AgentNodeInit {
  /** Resolved configuration; missing fields (and missing fields of `sembatch`) take their defaults. */
  config?: Partial<Omit<AgentConfig, 'sembatch'>> & { sembatch?: Partial<SembatchConfig> }
  /** The node's identity; a fresh Ed25519 key when absent. */
  privateKey?: PrivateKey
  /** Home directory: the LevelDB datastore lives in `<home>/datastore`. */
  home?: string
  /** Overrides the datastore (in memory when neither this nor `home` is given). */
  datastore?: Datastore
  /** Prometheus registry for this node's metrics; a private one when absent, none when false. */
  metricsRegistry?: Registry | false
}

export interface IdInfo {
  peerId: string
  did: string
  network: string
  multiaddrs: string[]
  protocols: string[]
  version: string
  /** Each bootstrap peer: joining, connected or failed (with the reason) */
  bootstrap: BootstrapPeerState[]
}

/** What `GET /v1/status` answers: the node's connections and its sembatch links */
export interface StatusInfo {
  peerId: string
  network: string
  version: string
  /** open connections of the node (not counting bulk lane connections) */
  connections: number
  sembatch: SembatchStats & {
    /** whether this node offers and uses the bulk lane (config `sembatch.bulkLane`) */
    bulkLane: boolean
  }
  /** how the process collects garbage and how V8's background threads are scheduled (runtime.ts) */
  runtime: RuntimeInfo
}

export interface PeerConnectionInfo {
  peerId: string
  multiaddr: string
  direction: 'inbound' | 'outbound'
  transport: string
  encryption: string
  /** true when the connection is protected by the hybrid (Noise + ML-KEM-768) handshake */
  pq: boolean
  multiplexer: string | null
  latencyMs: number | null
}

/** The module the bulk lane's worker imports for its libp2p stack: lane-stack.js beside this file */
export const LANE_STACK = new URL('./lane-stack.js', import.meta.url).href

/** Names a connection's transport from its remote address. */
export function transportName (addr: string): string {
  if (addr.includes('/quic-v1')) return 'quic'
  if (addr.includes('/webtransport')) return 'webtransport'
  if (addr.includes('/ws') || addr.includes('/wss')) return 'websockets'
  if (addr.includes('/memory')) return 'memory'
  if (addr.includes('/tcp/')) return 'tcp'
  return 'unknown'
}

/**
 * An aistack node: libp2p with TCP, QUIC, Noise, Yamux, identify, ping, our Kad-DHT and gossipsub,
 * on a persistent datastore. This is the one place that composes the protocol modules.
 */
export class AgentNode {
  readonly libp2p: Libp2p<AgentServices>
  readonly config: AgentConfig
  readonly network: NetworkPreset
  readonly metricsRegistry: Registry | undefined
  readonly datastore: Datastore
  /** The capabilities this node serves and their handlers. */
  readonly capabilities: CapabilityRegistry
  readonly embedder: Embedder
  /** Dials the bootstrap peers, retries with backoff and reports how joining goes. */
  readonly joining: BootstrapMonitor

  private constructor (libp2p: Libp2p<AgentServices>, config: AgentConfig, network: NetworkPreset, datastore: Datastore, capabilities: CapabilityRegistry, embedder: Embedder, bootstrapList: string[], registry?: Registry) {
    this.libp2p = libp2p
    this.config = config
    this.network = network
    this.datastore = datastore
    this.capabilities = capabilities
    this.embedder = embedder
    this.metricsRegistry = registry
    this.joining = new BootstrapMonitor(libp2p, bootstrapList, { pq: config.pq })
  }

  static async create (init: AgentNodeInit = {}): Promise<AgentNode> {
    const defaults = defaultConfig()
    const config: AgentConfig = { ...defaults, ...init.config, sembatch: { ...defaults.sembatch, ...init.config?.sembatch } }
    const network = parseNetwork(config.network)
    const privateKey = init.privateKey ?? await generateKeyPair('Ed25519')
    const datastore = init.datastore ?? (init.home != null ? new LevelDatastore(join(init.home, 'datastore')) : new MemoryDatastore())
    if (datastore instanceof LevelDatastore) await datastore.open()
    const registry = init.metricsRegistry === false ? undefined : (init.metricsRegistry ?? new Registry())
    // QUIC's TLS 1.3 is classical: with `pq: required` it is neither listened on nor dialled
    const withoutQuic = (addrs: string[]): string[] => config.pq === 'required' ? addrs.filter(a => !isQuicAddr(multiaddr(a))) : addrs
    const bootstrapList = withoutQuic(config.bootstrap.length > 0 ? config.bootstrap : network.bootstrap)
    const listen = usableListenAddrs(config.listen, config.pq).listen
    const usesQuic = [...listen, ...bootstrapList].some(a => isQuicAddr(multiaddr(a)))

    const embedder = await loadEmbedder(config.embedder, init.home)
    // record vectors and LSH keys are of the network-wide base model (the offline default),
    // so nodes with different embedders find each other; the node's own model re-ranks
    const defaultEmbedder = createEmbedder({ type: 'offline' })
    const baseEmbedder = defaultEmbedder.id === embedder.id ? embedder : defaultEmbedder
    const capabilities = new CapabilityRegistry({ embedder })
    const specs = await describeRemoteCapabilities(config.capabilities)
    specs.forEach((spec, i) => capabilities.add(spec, `capabilities[${i}]`))
    // the task queue resolves queries with anycast, which exists once libp2p does
    let resolveWith: SemanticAnycast | undefined
    let telemetryOf: TelemetryService | undefined

    const peerDiscovery = []
    if (bootstrapList.length > 0) peerDiscovery.push(bootstrap({ list: bootstrapList }))
    if (config.mdns) peerDiscovery.push(mdns({ serviceTag: `${network.id}.local` }))

    const limiter = connectionLimiter(config.connections)
    try {
      const libp2p = await createLibp2p<AgentServices>({
        privateKey,
        datastore,
        start: false,
        addresses: { listen, announce: config.announce },
        transports: usesQuic ? [tcp(), quic()] : [tcp()],
        connectionEncrypters: connectionEncrypters(config.pq),
        streamMuxers: [muxer()],
        peerDiscovery,
        metrics: registry != null ? prometheusMetrics({ registry, collectDefaultMetrics: false }) : undefined,
        nodeInfo: { name: 'aistack', version: VERSION },
        // a busy node may miss a ping; that is no reason to drop the connection and its work
        connectionMonitor: { abortConnectionOnPingFailure: false },
        // per-address and per-peer limits, room kept for known peers (gater.ts, docs/security.md)
        connectionManager: limiter.connectionManagerOptions(),
        connectionGater: limiter,
        services: {
          identify: identify({ protocolPrefix: network.id }),
          ping: ping({ maxOutboundStreams: 4 }),
          dht: kadDHT({
            protocol: `/${network.id}/kad/1.0.0`,
            clientMode: config.dht.mode === 'client',
            peerInfoMapper: passthroughMapper,
            // capability lookups run many provider queries in parallel; narrower ones halve
            // their messages (docs/benchmarks.md, semantic anycast)
            alpha: 3,
            disjointPaths: 1
          }),
          pubsub: gossipsub({
            allowPublishToZeroTopicPeers: true,
            // 12-byte message ids: IHAVE gossip of small messages costs a third (gossip-id.ts)
            msgIdFn: shortMessageId,
            scoreParams: {
              // gossipsub penalises more than 10 peers behind one IP down to its graylist, where all
              // their messages are dropped: a local testnet of 11+ nodes on loopback would go deaf
              IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']),
              // a neighbour whose capability records the topic validator rejects (bad, or over
              // its rate) loses score fast and is graylisted (docs/security.md, semantic anycast)
              topics: { [capsTopic(network.id)]: capsTopicScoreParams() }
            }
          }),
          downgradeGuard: downgradeGuard({ mode: config.pq }),
          anycast: semanticAnycast({ network: network.id, embedder, baseEmbedder, provider: anycastProvider(capabilities), loadSource: telemetryLoadSource(() => telemetryOf), tracer: lateTracer(() => telemetryOf) }),
          // batched requests to capabilities (POST /v1/ask/batch), docs/protocols/sembatch.md; the
          // bulk class on a lane of its own, protected like the main connections (lane-stack.ts)
          sembatch: sembatch({
            network: network.id,
            bulkLane: config.sembatch.bulkLane
              ? { stack: LANE_STACK, stackInit: { pq: config.pq } satisfies LaneStackInit, port: config.sembatch.lanePort }
              : false
          }),
          tasks: taskQueue({
            network: network.id,
            executor: capabilityExecutor(capabilities),
            tracer: lateTracer(() => telemetryOf),
            resolveQuery: async (query, { signal }) => {
              const [best] = await resolveWith?.find(query, { k: 1, signal }) ?? []
              return best == null ? undefined : { capability: best.name, peer: best.peerId }
            }
          }),
          telemetry: nodeTelemetry(network.id, config.telemetry, capabilities, registry)
        }
      })
      resolveWith = libp2p.services.anycast
      telemetryOf = libp2p.services.telemetry
      serveCapabilities(libp2p.services.sembatch, capabilities)
      limiter.attach(libp2pView(libp2p))
      capabilities.observe((name, ms, ok) => { libp2p.services.telemetry.recordRequest(name, ms, ok) })
      if (registry != null) telemetryMetrics(registry, () => libp2p.services.telemetry)
      if (registry != null) anycastMetrics(registry, () => libp2p.services.anycast)
      return new AgentNode(libp2p, config, network, datastore, capabilities, embedder, bootstrapList, registry)
    } catch (err) {
      if (datastore instanceof LevelDatastore) await datastore.close()
      throw err
    }
  }

  /**
   * Serves a TypeScript function as a capability (announced like any other).
   * With `spec.batch: true` the function takes an array of inputs and answers
   * with an array of outputs (an Error fails one input); with an async
   * iterable it answers in pieces (`POST /v1/ask` with `"stream": true`).
   */
  serve (name: string, spec: ServeSpec & { batch: true }, fn: BatchHandlerFn): void
  serve (name: string, spec: ServeSpec, fn: HandlerFn): void
  serve (name: string, spec: ServeSpec, fn: HandlerFn | BatchHandlerFn): void {
    this.capabilities.serve(name, spec, fn as HandlerFn)
  }

  /** Batched, prioritised messages to peers: `node.sembatch.send(peer, key, payload, { qos })` */
  get sembatch (): SembatchService {
    return this.libp2p.services.sembatch
  }

  /**
   * Every input to the capability that best matches `query`, over one
   * sembatch stream; outputs in input order, failures per input
   * (`POST /v1/ask/batch`). `qos` is the sembatch class (default
   * `interactive`); `bulk` batches take the bulk lane once it is open.
   */
  async askMany (query: string, inputs: unknown[], options: AskBatchOptions = {}): Promise<AskBatchResult> {
    return askBatch(this.libp2p.services.anycast, this.sembatch, query, inputs, { ...options, peerIdFromString })
  }

  /** The best match's output in pieces as they arrive (`POST /v1/ask` with `"stream": true`) */
  async askStream (query: string, input: unknown, options: { timeoutMs?: number } = {}): Promise<AskStreamResult> {
    return askStream({ anycast: this.libp2p.services.anycast, sembatch: this.sembatch, capabilities: this.capabilities, peerId: this.peerId }, query, input, { ...options, peerIdFromString })
  }

  get peerId (): PeerId {
    return this.libp2p.peerId
  }

  async start (): Promise<void> {
    await this.libp2p.start()
    // a LAN or testnet node cannot learn from AutoNAT that it is dialable, so it is told
    if (this.config.dht.mode === 'server') await this.libp2p.services.dht.setMode('server')
    this.joining.start()
  }

  async stop (): Promise<void> {
    this.joining.stop()
    await this.libp2p.stop()
    await this.capabilities.close()
    if (this.datastore instanceof LevelDatastore) await this.datastore.close()
  }

  id (): IdInfo {
    return {
      peerId: this.peerId.toString(),
      did: didFromPeerId(this.peerId),
      network: this.network.id,
      multiaddrs: this.libp2p.getMultiaddrs().map(a => a.toString()),
      protocols: this.libp2p.getProtocols(),
      version: VERSION,
      bootstrap: this.joining.states()
    }
  }

  /**
   * The node at a glance: open connections and sembatch's counters, among
   * them its bulk lane links (`laneLinks` opened to peers, `inboundLaneLinks`
   * peers opened to it).
   */
  status (): StatusInfo {
    return {
      peerId: this.peerId.toString(),
      network: this.network.id,
      version: VERSION,
      connections: this.libp2p.getConnections().filter(c => c.status === 'open').length,
      sembatch: { ...this.sembatch.stats(), bulkLane: this.config.sembatch.bulkLane },
      runtime: runtimeInfo()
    }
  }

  /** Open connections; latency from the connection monitor, else one ping (bounded wait). */
  async peers ({ pingTimeoutMs = 1000 } = {}): Promise<PeerConnectionInfo[]> {
    const connections = this.libp2p.getConnections().filter(c => c.status === 'open')
    return Promise.all(connections.map(async c => ({
      peerId: c.remotePeer.toString(),
      multiaddr: c.remoteAddr.toString(),
      direction: c.direction,
      transport: transportName(c.remoteAddr.toString()),
      encryption: encryptionName(c),
      pq: isPq(c),
      multiplexer: c.multiplexer ?? null,
      latencyMs: c.rtt ?? await this.libp2p.services.ping.ping(c.remoteAddr, { signal: AbortSignal.timeout(pingTimeoutMs) }).catch(() => null)
    })))
  }

  /** Peer IDs in the DHT routing table. */
  routingTable (): string[] {
    const table = (this.libp2p.services.dht as unknown as { routingTable?: { kb?: { toIterable(): Iterable<{ peerId: PeerId }> } } }).routingTable
    const peers: string[] = []
    for (const peer of table?.kb?.toIterable() ?? []) peers.push(peer.peerId.toString())
    return peers
  }

  dhtMode (): 'client' | 'server' {
    return this.libp2p.services.dht.getMode()
  }

  /** Dials a peer by multiaddr (with /p2p/). */
  async dial (addr: string): Promise<Connection> {
    return this.libp2p.dial(multiaddr(addr))
  }
}

export async function createAgentNode (init: AgentNodeInit = {}): Promise<AgentNode> {
  return AgentNode.create(init)
}

/**
 * The node's embedder from its config; a `local` model is looked up in
 * `embedder.path`, else `<home>/models`, and its ONNX session started now so
 * that a broken model stops the start, not the first search.
 *
 * @throws ConfigError with one line that says how to fix it (e.g. the `aistack models pull` command)
 */
async function loadEmbedder (config: AgentConfig['embedder'], home?: string): Promise<Embedder> {
  try {
    const embedder = createEmbedder(config, 'embedder', { modelsDir: home != null ? join(home, 'models') : undefined })
    if (embedder instanceof LocalEmbedder) await embedder.load()
    return embedder
  } catch (err) {
    if (err instanceof EmbeddingError) throw new ConfigError(err.message)
    throw err
  }
}
