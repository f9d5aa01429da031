import assert from 'node:assert/strict'
import { createEmbedder } from '@aistack/embeddings'
import { capsTopic, DEFAULT_GOSSIP_LIMITS, LIMITS, signCapabilityRecord } from '@aistack/semantic-anycast'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { formatFigures, measureFlood, metric } from './flood-probe.js'
import { api, removeTempDirs, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { FloodFigures } from './flood-probe.js'
import type { NodeProcess } from './helpers.js'
import type { LocalCapability } from '@aistack/semantic-anycast'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

/*
 * Floods on the capabilities topic against a real `aistack start` process, from stock js-libp2p
 * peers (Noise, Yamux, gossipsub) that each dial from a loopback address of their own. Each test
 * measures the node from outside (RSS, CPU time, /healthz latency, its cache gauges on /metrics)
 * before, during and after, and holds it to the limits below (docs/security.md, "Floods measured
 * on a node process"). The full-size floods are `npm run bench:floods`.
 */

/**
 * Limits each flood is held to. RSS: what it may grow by while the flood lasts (MiB), the
 * allocator's high-water mark of the traffic included; before the caps a record flood took a node
 * towards 1 GB. /healthz: its median during the flood (before the rate limits it was 649 ms), its
 * p99 during the flood (the machine's scheduling at load 20+ shows here: seconds-long stalls of a
 * process that is not running), and its p99 once the flood is over. CPU: the share of a core the
 * node may use once the hostile peers have gone.
 */
const LIMITS_OF = {
  tombstones: { rssGrowthMiB: 256 },
  records: { rssGrowthMiB: 384 }
}
const MAX_HEALTHZ_P50_DURING_MS = 500
const MAX_HEALTHZ_P99_DURING_MS = 10_000
const MAX_HEALTHZ_P99_AFTER_MS = 500
const MAX_IDLE_CPU_AFTER = 0.15
/** the record cache's estimated-bytes cap (`cache.maxBytes` of the anycast service) */
const CACHE_MAX_BYTES = 64 * 1024 * 1024

/** `AISTACK_FLOOD_FULL=1` (npm run bench:floods): larger floods */
const FULL = process.env.AISTACK_FLOOD_FULL === '1'

/** Deterministic PRNG (mulberry32) */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Owner { key: PrivateKey, id: string }

async function owners (n: number, from: number): Promise<Owner[]> {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    const seed = new Uint8Array(32)
    new DataView(seed.buffer).setUint32(0, from + i)
    const key = await generateKeyPairFromSeed('Ed25519', seed)
    return { key, id: peerIdFromPrivateKey(key).toString() }
  }))
}

/** A capability with every text field at its longest: the largest record a node accepts */
function maxCapability (name: string): LocalCapability {
  return {
    name,
    description: 'd'.repeat(LIMITS.maxDescriptionLength),
    tags: Array.from({ length: LIMITS.maxTags }, (_, i) => `${i}`.padEnd(LIMITS.maxTagLength, 't')),
    examples: Array.from({ length: LIMITS.maxExamples }, (_, i) => `${i}`.padEnd(LIMITS.maxExampleLength, 'e'))
  }
}

/**
 * A stock gossipsub peer dialling from `localAddress`, with identify under the network's prefix
 * (as the node's, so each learns the other speaks gossipsub); it does not subscribe to the topic,
 * so the node forwards nothing to it
 */
async function hostilePeer (localAddress: string, network: string): Promise<Libp2p<{ identify: any, pubsub: any }>> {
  return createLibp2p({
    transports: [tcp({ dialOpts: { localAddress } as any })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false },
    services: { identify: identify({ protocolPrefix: network }), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true }) }
  })
}

interface Flood {
  node: NodeProcess
  peers: Array<Libp2p<any>>
}

/** Connects one hostile peer per address and waits until each knows the node subscribes to the topic */
async function connectHostile (f: Flood, addresses: string[], topic: string): Promise<Array<Libp2p<any>>> {
  const target = multiaddr(f.node.run.multiaddrs[0])
  const nodeId = f.node.run.peerId
  const peers = await Promise.all(addresses.map(async a => hostilePeer(a, topic.split('/')[0])))
  f.peers.push(...peers)
  await Promise.all(peers.map(async p => p.dial(target, { signal: AbortSignal.timeout(30_000) })))
  await Promise.all(peers.map(async p => waitFor(() => p.services.pubsub.getSubscribers(topic).some((id: any) => id.toString() === nodeId), { timeoutMs: 30_000, what: 'the node\'s subscription to the capabilities topic' })))
  return peers
}

/** Publishes each peer's messages in order (the peers side by side) as fast as gossipsub takes them */
async function publishAll (peers: Array<Libp2p<any>>, topic: string, perPeer: Uint8Array[][]): Promise<void> {
  await Promise.all(peers.map(async (p, i) => {
    for (const data of perPeer[i]) await p.services.pubsub.publish(topic, data).catch(() => {})
  }))
}

/** The hostile peers hang up; resolves once the node lists no connection */
async function leave (f: Flood): Promise<void> {
  await Promise.all(f.peers.splice(0).map(async p => p.stop()))
  await waitFor(async () => (await api(f.node.run, 'GET', '/v1/peers')).json.peers.length === 0, { timeoutMs: 30_000, what: 'the hostile peers to be gone' })
}

function assertFigures (f: FloodFigures, maxRssGrowthMiB: number): void {
  assert.ok(f.rssPeakMiB - f.rssBeforeMiB < maxRssGrowthMiB, `RSS grew by ${(f.rssPeakMiB - f.rssBeforeMiB).toFixed(0)} MiB (limit ${maxRssGrowthMiB})`)
  assert.ok(f.healthzDuring.p50 < MAX_HEALTHZ_P50_DURING_MS, `/healthz p50 ${f.healthzDuring.p50} ms during the flood`)
  assert.equal(f.healthzDuring.failed, 0, `/healthz failed during the flood: ${(f.healthzDuring.errors ?? []).join('; ')}`)
  assert.ok(f.healthzDuring.n > 0, 'no /healthz answer during the flood')
  assert.ok(f.healthzDuring.p99 < MAX_HEALTHZ_P99_DURING_MS, `/healthz p99 ${f.healthzDuring.p99} ms during the flood`)
  assert.ok(f.healthzAfter.p99 < MAX_HEALTHZ_P99_AFTER_MS, `/healthz p99 ${f.healthzAfter.p99} ms after the flood`)
  assert.ok(f.cpuIdleAfter < MAX_IDLE_CPU_AFTER, `${(f.cpuIdleAfter * 100).toFixed(1)} % of a core after the flood`)
}

describe('gossip floods against an aistack node process', function () {
  this.timeout(240_000)
  const f: Flood = { node: undefined as unknown as NodeProcess, peers: [] }
  let topic = ''
  let model = { id: '', dim: 0 }

  beforeEach(async () => {
    f.node = await startNodeProcess(await tempDir(), [], { timeoutMs: 90_000 })
    topic = capsTopic((await api(f.node.run, 'GET', '/v1/id')).json.network)
    const embedder = createEmbedder({ type: 'offline' })
    model = { id: embedder.id, dim: embedder.dim }
  })

  afterEach(async () => {
    await Promise.all(f.peers.splice(0).map(async p => p.stop()))
    await f.node?.stop()
    await removeTempDirs()
  })

  const record = async (o: Owner, name: string, seq: bigint, random: () => number, tombstone = false): Promise<Uint8Array> => {
    // a tombstone carries no vector
    const vector = tombstone ? undefined : Array.from({ length: model.dim }, () => random() - 0.5)
    return signCapabilityRecord(o.key, maxCapability(name), { network: topic.split('/')[0], owner: o.id, model: model.id, vector, seq, expiresAt: Date.now() + 20 * 60_000, tombstone })
  }

  it('a tombstone flood from 10 keys: only tombstones that remove a record are kept, at a bounded cost', async () => {
    const random = rng(0x70)
    const PEERS = 5
    const RECORDS = 100
    const UNSEEN = FULL ? 14_800 : 1000
    const keys = await owners(10, 1000)
    // each owner's messages travel over one peer, in order: its records, the tombstones that
    // remove them, then tombstones of names never published
    const perPeer: Uint8Array[][] = Array.from({ length: PEERS }, () => [])
    for (let o = 0; o < keys.length; o++) {
      const out = perPeer[o % PEERS]
      for (let i = 0; i < RECORDS; i++) out.push(await record(keys[o], `r${i}`, 1n, random))
      for (let i = 0; i < RECORDS; i++) out.push(await record(keys[o], `r${i}`, 2n, random, true))
      for (let i = 0; i < UNSEEN; i++) out.push(await record(keys[o], `never-${i}`, 2n, random, true))
    }
    const sent = perPeer.reduce((n, m) => n + m.length, 0)
    const tombstonesSent = keys.length * (RECORDS + UNSEEN)
    const peers = await connectHostile(f, Array.from({ length: PEERS }, (_, i) => `127.0.0.${40 + i}`), topic)
    let last = -1
    const figures = await measureFlood(f.node, `tombstone flood (${sent} messages, ${tombstonesSent} of them tombstones, 10 keys, ${PEERS} peers)`,
      async () => { await publishAll(peers, topic, perPeer) },
      // settled when the tombstone count stops moving between two reads
      async () => { const n = await metric(f.node, 'aistack_anycast_cache_tombstones') ?? -1; const same = n === last; last = n; return same },
      async () => { await leave(f) })
    const tombstones = await metric(f.node, 'aistack_anycast_cache_tombstones') ?? NaN
    const records = await metric(f.node, 'aistack_anycast_cache_records') ?? NaN
    figures.extra = `stored: ${tombstones} tombstones, ${records} records (at most ${keys.length * RECORDS} tombstones can remove something)`
    console.log(formatFigures(figures))
    assertFigures(figures, LIMITS_OF.tombstones.rssGrowthMiB)
    // a tombstone is stored only when it removed a record: never one for a name never published
    assert.ok(tombstones <= keys.length * RECORDS, `${tombstones} tombstones stored`)
    assert.ok(tombstones <= keys.length * 256, 'over the per-owner cap')
    assert.ok(records <= keys.length * RECORDS, `${records} records stored`)
    // the flood did reach the cache (it is not held off by something else)
    assert.ok(tombstones > 0, 'no tombstone stored: the flood did not reach the node')
    assert.equal(f.node.child.exitCode, null)
  })

  it('a record flood of maximum-size records from 14 peers: at most the cache\'s bytes are kept, each peer held to its rate', async () => {
    const random = rng(0x71)
    const PEERS = 14
    const OWNERS_PER_PEER = 2
    const RECORDS_PER_OWNER = 200
    /** after those: records of fresh owners, far past the peer's rate */
    const EXTRA_PER_PEER = FULL ? 4000 : 200
    const keys = await owners(PEERS * (OWNERS_PER_PEER + 3), 2000)
    const perPeer: Uint8Array[][] = Array.from({ length: PEERS }, () => [])
    let size = 0
    for (let p = 0; p < PEERS; p++) {
      for (let o = 0; o < OWNERS_PER_PEER; o++) {
        for (let i = 0; i < RECORDS_PER_OWNER; i++) perPeer[p].push(await record(keys[p * (OWNERS_PER_PEER + 3) + o], `cap-${i}`.padEnd(LIMITS.maxNameLength, 'x'), 1n, random))
      }
      for (let i = 0; i < EXTRA_PER_PEER; i++) perPeer[p].push(await record(keys[p * (OWNERS_PER_PEER + 3) + OWNERS_PER_PEER + (i % 3)], `more-${i}`.padEnd(LIMITS.maxNameLength, 'x'), 1n, random))
      size = perPeer[p][0].byteLength
    }
    const sent = perPeer.reduce((n, m) => n + m.length, 0)
    const peers = await connectHostile(f, Array.from({ length: PEERS }, (_, i) => `127.0.0.${60 + i}`), topic)
    let last = -1
    const figures = await measureFlood(f.node, `record flood (${sent} records of ${size} bytes from ${keys.length} keys, ${PEERS} peers)`,
      async () => { await publishAll(peers, topic, perPeer) },
      async () => { const n = await metric(f.node, 'aistack_anycast_cache_records') ?? -1; const same = n === last; last = n; return same },
      async () => { await leave(f) })
    const records = await metric(f.node, 'aistack_anycast_cache_records') ?? NaN
    const bytes = await metric(f.node, 'aistack_anycast_cache_bytes') ?? NaN
    figures.extra = `stored: ${records} records, ${(bytes / 1024 / 1024).toFixed(1)} MiB estimated (cap ${CACHE_MAX_BYTES / 1024 / 1024} MiB); ${(bytes / Math.max(1, records) / 1024).toFixed(1)} KiB per record`
    console.log(formatFigures(figures))
    assertFigures(figures, LIMITS_OF.records.rssGrowthMiB)
    assert.ok(bytes <= CACHE_MAX_BYTES, `${bytes} bytes cached`)
    // each peer is held to its burst and rate: what it could have had accepted over the flood
    const perPeerMax = DEFAULT_GOSSIP_LIMITS.peerBurst + DEFAULT_GOSSIP_LIMITS.peerRate * figures.floodS
    assert.ok(records <= PEERS * perPeerMax, `${records} records from ${PEERS} peers`)
    // the peers' bursts together exceed the byte cap, which is what stops the cache: it is full
    assert.ok(bytes >= 0.8 * CACHE_MAX_BYTES, `only ${(bytes / 1024 / 1024).toFixed(1)} MiB cached: the flood did not reach the cap`)
    assert.equal(f.node.child.exitCode, null)
  })
})
