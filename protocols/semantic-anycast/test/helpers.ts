import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { memory } from '@libp2p/memory'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { OverloadedError, semanticAnycast } from '../src/index.js'
import type { CapabilityProvider, LocalCapability, SemanticAnycast, SemanticAnycastInit } from '../src/index.js'
import type { Embedder } from '@aistack/embeddings'
import type { Libp2p } from '@libp2p/interface'

export type Handler = (input: unknown, options: { signal: AbortSignal }) => Promise<unknown>

/** A provider backed by a map; `limit` makes invoke throw OverloadedError */
export class TestProvider implements CapabilityProvider {
  readonly caps = new Map<string, { cap: LocalCapability, fn: Handler, limit: number, running: number }>()
  private readonly listeners = new Set<() => void>()

  add (cap: LocalCapability, fn: Handler, limit = 8): void {
    this.caps.set(cap.name, { cap, fn, limit, running: 0 })
    this.listeners.forEach(l => { l() })
  }

  remove (name: string): void {
    this.caps.delete(name)
    this.listeners.forEach(l => { l() })
  }

  list (): LocalCapability[] {
    return [...this.caps.values()].map(c => c.cap)
  }

  async invoke (name: string, input: unknown, options: { signal: AbortSignal }): Promise<unknown> {
    const c = this.caps.get(name)
    if (c == null) throw new Error(`no capability ${name}`)
    if (c.running >= c.limit) throw new OverloadedError(`${name} is at its concurrency limit`)
    c.running++
    try {
      return await c.fn(input, options)
    } finally {
      c.running--
    }
  }

  onChange (listener: () => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }
}

export type TestNode = Libp2p<{ dht: any, pubsub: any, anycast: SemanticAnycast }> & { provider: TestProvider, addr: string }

let counter = 0

/** A node on the memory transport; `services` adds services (e.g. sembatch) */
export async function createNode (embedder: Embedder, init: Partial<SemanticAnycastInit> = {}, services: Record<string, any> = {}): Promise<TestNode> {
  const provider = new TestProvider()
  const addr = `/memory/aistack-test-${process.pid}-${counter++}`
  const node = await createLibp2p({
    addresses: { listen: [addr] },
    transports: [memory()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: 200 },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: '/aistack/kad/1.0.0',
        clientMode: false,
        alpha: 3,
        disjointPaths: 1,
        peerInfoMapper: passthroughMapper,
        initialQuerySelfInterval: 100
      }),
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, heartbeatInterval: 200 }),
      anycast: semanticAnycast({ embedder, provider, ...init }),
      ...services
    }
  }) as unknown as TestNode
  node.provider = provider
  node.addr = addr
  return node
}

export async function waitFor (cond: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

/** Connect node i to a few earlier nodes (seeded choice) and wait for DHT routing tables */
export async function connect (nodes: TestNode[], links = 3, seed = 1): Promise<void> {
  let s = seed
  const rand = (): number => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 }
  for (let i = 1; i < nodes.length; i++) {
    const targets = new Set<number>([i - 1, 0])
    while (targets.size < Math.min(links, i)) targets.add(Math.floor(rand() * i))
    for (const t of targets) await nodes[i].dial(multiaddr(nodes[t].addr))
  }
  const want = Math.min(nodes.length - 1, 3)
  await waitFor(() => nodes.every(n => (n.services.dht.routingTable?.size ?? 0) >= want), 30_000, 'routing tables')
}
