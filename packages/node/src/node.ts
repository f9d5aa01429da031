import { join } from 'node:path'
import { createEmbedder } from '@aistack/embeddings'
import { capsTopic, capsTopicScoreParams, semanticAnycast } from '@aistack/semantic-anycast'
import { taskQueue } from '@aistack/task'
import { connectionEncrypters, didFromPeerId, downgradeGuard, encryptionName, isPq, isQuicAddr } from '@aistack/handshake'
import { quic } from '@chainsafe/libp2p-quic'
import { bootstrap } from '@libp2p/bootstrap'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { MemoryDatastore } from 'datastore-core'
import { LevelDatastore } from 'datastore-level'
import { createLibp2p } from 'libp2p'
import { Registry } from 'prom-client'
import { CapabilityRegistry } from './capabilities/index.js'
import { defaultConfig, parseNetwork } from './config.js'
import { muxer } from './muxer.js'
import { VERSION } from './version.js'
import type { AgentConfig, NetworkPreset } from './config.js'
import type { HandlerFn, ServeSpec } from './capabilities/index.js'
import type { Embedder } from '@aistack/embeddings'
import type { DowngradeGuard } from '@aistack/handshake'
import type { SemanticAnycast } from '@aistack/semantic-anycast'
import type { TaskExecutor, TaskService } from '@aistack/task'
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
}

export interface AgentNodeInit {
  /** Resolved configuration; missing fields take their defaults. */
  config?: Partial<AgentConfig>
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

  private constructor (libp2p: Libp2p<AgentServices>, config: AgentConfig, network: NetworkPreset, datastore: Datastore, capabilities: CapabilityRegistry, embedder: Embedder, registry?: Registry) {
    this.libp2p = libp2p
    this.config = config
    this.network = network
    this.datastore = datastore
    this.capabilities = capabilities
    this.embedder = embedder
    this.metricsRegistry = registry
  }

  static async create (init: AgentNodeInit = {}): Promise<AgentNode> {
    const config: AgentConfig = { ...defaultConfig(), ...init.config }
    const network = parseNetwork(config.network)
    const privateKey = init.privateKey ?? await generateKeyPair('Ed25519')
    const datastore = init.datastore ?? (init.home != null ? new LevelDatastore(join(init.home, 'datastore')) : new MemoryDatastore())
    if (datastore instanceof LevelDatastore) await datastore.open()
    const registry = init.metricsRegistry === false ? undefined : (init.metricsRegistry ?? new Registry())
    // QUIC's TLS 1.3 is classical: with `pq: required` it is neither listened on nor dialled
    const withoutQuic = (addrs: string[]): string[] => config.pq === 'required' ? addrs.filter(a => !isQuicAddr(multiaddr(a))) : addrs
    const bootstrapList = withoutQuic(config.bootstrap.length > 0 ? config.bootstrap : network.bootstrap)
    const listen = withoutQuic(config.listen)
    const usesQuic = [...listen, ...bootstrapList].some(a => isQuicAddr(multiaddr(a)))

    const embedder = createEmbedder(config.embedder)
    // record vectors and LSH keys are of the network-wide base model (the offline default),
    // so nodes with different embedders find each other; the node's own model re-ranks
    const defaultEmbedder = createEmbedder(null)
    const baseEmbedder = defaultEmbedder.id === embedder.id ? embedder : defaultEmbedder
    const capabilities = new CapabilityRegistry({ embedder })
    config.capabilities.forEach((spec, i) => capabilities.add(spec, `capabilities[${i}]`))
    // the task queue resolves queries with anycast, which exists once libp2p does
    let resolveWith: SemanticAnycast | undefined

    const peerDiscovery = []
    if (bootstrapList.length > 0) peerDiscovery.push(bootstrap({ list: bootstrapList }))
    if (config.mdns) peerDiscovery.push(mdns({ serviceTag: `${network.id}.local` }))

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
            // a neighbour whose capability records the topic validator rejects (bad, or over
            // its rate) loses score fast and is graylisted (docs/security.md, semantic anycast)
            scoreParams: { topics: { [capsTopic(network.id)]: capsTopicScoreParams() } }
          }),
          downgradeGuard: downgradeGuard({ mode: config.pq }),
          anycast: semanticAnycast({ network: network.id, embedder, baseEmbedder, provider: capabilities }),
          tasks: taskQueue({
            network: network.id,
            executor: capabilityExecutor(capabilities),
            resolveQuery: async (query, { signal }) => {
              const [best] = await resolveWith?.find(query, { k: 1, signal }) ?? []
              return best == null ? undefined : { capability: best.name, peer: best.peerId }
            }
          })
        }
      })
      resolveWith = libp2p.services.anycast
      return new AgentNode(libp2p, config, network, datastore, capabilities, embedder, registry)
    } catch (err) {
      if (datastore instanceof LevelDatastore) await datastore.close()
      throw err
    }
  }

  /** Serves a TypeScript function as a capability (announced like any other). */
  serve (name: string, spec: ServeSpec, fn: HandlerFn): void {
    this.capabilities.serve(name, spec, fn)
  }

  get peerId (): PeerId {
    return this.libp2p.peerId
  }

  async start (): Promise<void> {
    await this.libp2p.start()
    // a LAN or testnet node cannot learn from AutoNAT that it is dialable, so it is told
    if (this.config.dht.mode === 'server') await this.libp2p.services.dht.setMode('server')
  }

  async stop (): Promise<void> {
    await this.libp2p.stop()
    if (this.datastore instanceof LevelDatastore) await this.datastore.close()
  }

  id (): IdInfo {
    return {
      peerId: this.peerId.toString(),
      did: didFromPeerId(this.peerId),
      network: this.network.id,
      multiaddrs: this.libp2p.getMultiaddrs().map(a => a.toString()),
      protocols: this.libp2p.getProtocols(),
      version: VERSION
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

/** Runs tasks with the node's capability handlers. */
function capabilityExecutor (capabilities: CapabilityRegistry): TaskExecutor {
  return {
    canRun: spec => spec.capability != null && capabilities.has(spec.capability),
    capacity: () => capabilities.entriesList().reduce((free, c) => free + Math.max(0, c.limits.concurrency - c.running), 0),
    run: async (spec, input, { signal, inputBytes }) => capabilities.invoke(spec.capability as string, input, { signal, inputBytes })
  }
}

export async function createAgentNode (init: AgentNodeInit = {}): Promise<AgentNode> {
  return AgentNode.create(init)
}
