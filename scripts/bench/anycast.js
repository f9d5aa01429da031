// Semantic anycast benchmark: N nodes in one process (memory transport,
// classical Noise: the hybrid handshake is not what is measured here), a
// generated corpus of capabilities across many topics, queries that
// paraphrase them. The DHT-only lookup is compared with an exact brute-force
// search over all records with the same embedder (the baseline).
//
//   node scripts/bench/anycast.js [--nodes 64] [--caps 1024] [--queries 500]
//        [--configs 8x6x7,6x6x7] [--concurrency 4] [--provide-concurrency 2] [--dht-timeout 60000]
//        [--embedder offline|hash]
// a config is tables x bits x probes (per table; one published bucket per
// table), optionally x answers: a key's provider query stops after that many
// answers naming providers (default 1). Configs with the same bits share one published network (the one
// with the most tables): the hyperplanes of (table, bit) do not depend on L,
// so a lookup over the first L tables is exactly the lookup of that L.
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { memory } from '@libp2p/memory'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { createEmbedder } from '../../packages/embeddings/dist/src/index.js'
import { semanticAnycast } from '../../protocols/semantic-anycast/dist/src/index.js'
import { generateCorpus } from './anycast-corpus.js'
import { benchArgs, failUsage, lshConfigs } from './args.js'

const USAGE = `Usage: npm run bench:anycast -- [--nodes 64] [--caps 1024] [--queries 500]
  [--configs 8x6x7,6x6x7] [--concurrency 4] [--provide-concurrency 2] [--dht-timeout 60000]
  [--embedder offline|hash]
A config is tables x bits x probes [x answers] (answers: provider answers a key's query waits
for, default 1). The full size publishes for about 22 minutes on one thread and looks up for
about 15 per config; a quick run: --nodes 16 --caps 128 --queries 40 --configs 8x6x7`
const args = benchArgs(USAGE, {
  nodes: 64,
  caps: 1024,
  queries: 500,
  configs: '8x6x7,6x6x7',
  concurrency: 4,
  // with 64 nodes on one thread, 4 provides in flight per node time out; 2 drain the queue
  'provide-concurrency': 2,
  'dht-timeout': 60_000,
  embedder: 'offline'
})
const NODES = args.nodes
const CAPS = args.caps
const QUERIES = args.queries
const CONCURRENCY = args.concurrency
const PROVIDE_CONCURRENCY = args['provide-concurrency']
const DHT_TIMEOUT_MS = args['dht-timeout']
const CONFIGS = lshConfigs(args.configs, USAGE)
const BARS = { recall1: 0.95, warmP50: 5 }

if (!['offline', 'hash'].includes(args.embedder)) failUsage(`--embedder is offline or hash, not "${args.embedder}"`, USAGE)
const embedder = createEmbedder({ type: args.embedder })
const { capabilities, queries } = generateCorpus({ count: CAPS, queries: QUERIES, seed: 42 })

/** Capabilities appear once the network has formed (as when an agent registers them) */
class StaticProvider {
  constructor () { this.caps = []; this.listeners = new Set() }
  set (caps) { this.caps = caps; this.listeners.forEach(l => l()) }
  list () { return this.caps }
  async invoke (name) { return name }
  onChange (l) { this.listeners.add(l); return () => this.listeners.delete(l) }
}

const log = (...xs) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...xs)

function pct (xs, p) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]
}

async function mapLimit (items, limit, fn) {
  let i = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) { const j = i++; await fn(items[j], j) }
  }))
}

async function runGroup (bits, tables, lookups) {
  const t0 = performance.now()
  const lsh = { tables, bits, probes: Math.max(...lookups.map(l => l.probes)), publishProbes: 1 }
  const nodes = []
  const providers = []
  const perNode = Array.from({ length: NODES }, () => [])
  capabilities.forEach((c, i) => perNode[i % NODES].push({ name: c.name, description: c.description, tags: c.tags, examples: c.examples }))
  const addr = (i) => `/memory/bench-${bits}-${tables}-${i}`
  for (let i = 0; i < NODES; i++) {
    const provider = new StaticProvider()
    providers.push(provider)
    const node = await createLibp2p({
      addresses: { listen: [addr(i)] },
      transports: [memory()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { maxConnections: 500 },
      // every node would ping each of its ~N connections every 10 s: at 64 nodes in one
      // process that is more traffic than the DHT's own (N² / 10 s), and not what is measured
      connectionMonitor: { enabled: false },
      services: {
        identify: identify(),
        ping: ping(),
        dht: kadDHT({ protocol: '/aistack/kad/1.0.0', clientMode: false, peerInfoMapper: passthroughMapper, alpha: 3, disjointPaths: 1 }),
        anycast: semanticAnycast({ embedder, provider, lsh, gossip: false, dhtConcurrency: 16, provideConcurrency: PROVIDE_CONCURRENCY, dhtTimeoutMs: DHT_TIMEOUT_MS })
      }
    })
    nodes.push(node)
  }
  // each node dials 4 earlier ones
  for (let i = 1; i < NODES; i++) {
    for (const t of new Set([0, i - 1, Math.floor(i / 2), Math.floor(i / 3)])) {
      if (t !== i) await nodes[i].dial(multiaddr(addr(t)))
    }
  }
  const want = Math.min(NODES - 1, 20)
  const deadline = Date.now() + 120_000
  while (nodes.some(n => n.services.dht.routingTable.size < want) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 200))
  const rt = nodes.map(n => n.services.dht.routingTable.size).sort((a, b) => a - b)
  log(`k=${bits} L=${tables}: ${NODES} nodes up, routing tables ${rt[0]}..${rt[rt.length - 1]} peers (${((performance.now() - t0) / 1000).toFixed(0)} s)`)

  // publish: every node announces its capabilities; wait until all bucket keys are provided
  const tStart = performance.now()
  providers.forEach((p, i) => p.set(perNode[i]))
  const progress = setInterval(() => {
    const s = nodes.map(n => n.services.anycast.publishing()).reduce((a, x) => ({ provided: a.provided + x.provided, failed: a.failed + x.failed, pending: a.pending + x.pending, messages: a.messages + x.messages }))
    log(`publishing: ${s.provided} keys provided, ${s.failed} failed, ${s.pending} pending, ${s.messages} DHT messages (${((performance.now() - tStart) / 1000).toFixed(0)} s)`)
  }, 15_000)
  const published = await Promise.all(nodes.map(async n => n.services.anycast.whenPublished()))
  clearInterval(progress)
  const publishMs = performance.now() - tStart
  const pub = published.reduce((a, x) => ({ provided: a.provided + x.provided, failed: a.failed + x.failed, messages: a.messages + x.messages }), { provided: 0, failed: 0, messages: 0 })
  log(`published in ${(publishMs / 1000).toFixed(0)} s: ${pub.provided} keys provided, ${pub.failed} failed, ${pub.messages} DHT messages`)

  // baseline: brute force over all records with the same embedder (from the signed records themselves)
  const all = nodes.flatMap(n => n.services.anycast.ownRecords())
  const qv = await embedder.embed(queries.map(q => q.text))
  const truth = qv.map(v => all.map(r => {
    let s = 0
    for (let d = 0; d < v.length; d++) s += r.vector[d] * v[d]
    return { id: `${r.owner}/${r.name}`, s }
  }).sort((a, b) => b.s - a.s).slice(0, 5).map(x => x.id))
  // brute force baseline timing (the same exact search without the service)
  const tb = performance.now()
  for (const v of qv) {
    let best = -2
    for (const r of all) { let s = 0; for (let d = 0; d < v.length; d++) s += r.vector[d] * v[d]; if (s > best) best = s }
  }
  const bruteMs = (performance.now() - tb) / qv.length

  // warm: one querier's cache holds every record (as gossip would deliver them)
  const warmSvc = nodes[2].services.anycast
  for (const r of all) await warmSvc.accept(r.bytes)
  const warm = []
  let warmR1 = 0
  for (let i = 0; i < queries.length; i++) {
    const { candidates, stats } = await warmSvc.findWithStats(queries[i].text, { k: 5, source: 'cache', minSimilarity: -1 })
    warm.push(stats.ms)
    if (`${candidates[0]?.peerId}/${candidates[0]?.name}` === truth[i][0]) warmR1++
  }

  // cold: DHT only, from queriers whose caches hold no other node's record
  const queriers = [1, Math.floor(NODES / 3), Math.floor(2 * NODES / 3), NODES - 1].map(i => nodes[i].services.anycast)
  const results = []
  for (const l of lookups) {
    const cold = []
    const tl = performance.now()
    await mapLimit(queries, CONCURRENCY, async (q, i) => {
      const svc = queriers[i % queriers.length]
      const { candidates, stats } = await svc.findWithStats(q.text, { k: 5, source: 'dht', minSimilarity: -1, tables: l.tables, probes: l.probes, providerAnswers: l.answers })
      const ids = candidates.map(c => `${c.peerId}/${c.name}`)
      cold.push({ ms: stats.ms, msgs: stats.dhtMessages, keys: stats.keys, providers: stats.providers, fetched: stats.recordsFetched, fetches: stats.fetches, r1: ids[0] === truth[i][0] ? 1 : 0, r5: truth[i].filter(t => ids.includes(t)).length / truth[i].length })
      if (cold.length % 50 === 0) log(`L=${l.tables} k=${bits} probes=${l.probes} answers=${l.answers}: ${cold.length}/${queries.length} lookups, recall@1 so far ${(cold.reduce((s, x) => s + x.r1, 0) / cold.length).toFixed(3)} (${((performance.now() - tl) / 1000).toFixed(0)} s)`)
    })
    // drop what the lookups cached, so the next config starts cold too
    for (const svc of queriers) {
      const own = svc.ownRecords()[0]?.owner
      for (const r of [...svc.cache.values()]) if (r.owner !== own) svc.cache.deleteOwner(r.owner)
    }
    const mean = (k) => cold.reduce((s, x) => s + x[k], 0) / cold.length
    results.push({
      config: `L=${l.tables} k=${bits} probes=${l.probes}${l.answers > 1 ? ` answers=${l.answers}` : ''}`,
      records: all.length,
      publishS: publishMs / 1000,
      publishMsgs: pub.messages,
      provided: pub.provided,
      recall1: mean('r1'),
      recall5: mean('r5'),
      msgs: mean('msgs'),
      keys: mean('keys'),
      providers: mean('providers'),
      fetches: mean('fetches'),
      fetched: mean('fetched'),
      coldP50: pct(cold.map(x => x.ms), 0.5),
      coldP99: pct(cold.map(x => x.ms), 0.99),
      warmP50: pct(warm, 0.5),
      warmP99: pct(warm, 0.99),
      warmRecall1: warmR1 / queries.length,
      bruteMs,
      totalS: (performance.now() - t0) / 1000
    })
  }
  await Promise.all(nodes.map(async n => n.stop()))
  return results
}

console.log(`anycast benchmark: ${NODES} nodes, ${capabilities.length} capabilities, ${queries.length} queries, embedder ${embedder.id}, lookup concurrency ${CONCURRENCY}, node ${process.version}`)
const groups = new Map()
for (const c of CONFIGS) {
  const g = groups.get(c.bits) ?? []
  g.push(c)
  groups.set(c.bits, g)
}
const rows = []
for (const [bits, lookups] of groups) {
  const tables = Math.max(...lookups.map(l => l.tables))
  rows.push(...await runGroup(bits, tables, lookups))
}
const f = (x, d = 1) => x.toFixed(d)
console.log('| config | recall@1 (DHT) | recall@5 (DHT) | DHT msgs/lookup | keys | providers | GET_RECORDS | cold p50 / p99 ms | warm p50 / p99 ms | brute force ms/query | warm recall@1 | recall@1 / 0.95 | 5 ms / warm p50 | published keys, DHT msgs, s |')
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
for (const r of rows) {
  console.log(`| ${r.config} | ${f(r.recall1, 3)} | ${f(r.recall5, 3)} | ${f(r.msgs)} | ${f(r.keys)} | ${f(r.providers)} | ${f(r.fetches)} | ${f(r.coldP50)} / ${f(r.coldP99)} | ${f(r.warmP50, 2)} / ${f(r.warmP99, 2)} | ${f(r.bruteMs, 2)} | ${f(r.warmRecall1, 3)} | ${f(r.recall1 / BARS.recall1, 2)} | ${f(BARS.warmP50 / r.warmP50, 1)} | ${r.provided}, ${r.publishMsgs}, ${f(r.publishS, 0)} |`)
}
