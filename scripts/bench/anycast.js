// Semantic anycast benchmark: N nodes in one process (memory transport), a
// generated corpus of capabilities across many topics, queries that
// paraphrase them. The DHT-only lookup is compared with an exact brute-force
// search over all records with the same embedder (the baseline).
//
//   node scripts/bench/anycast.js [--nodes 64] [--caps 1024] [--queries 500]
//        [--configs 6x6x7x1,8x6x7x1] [--concurrency 4]
// a config is tables x bits x probes x publishProbes
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { memory } from '@libp2p/memory'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { HashEmbedder } from '../../packages/embeddings/dist/src/index.js'
import { semanticAnycast } from '../../protocols/semantic-anycast/dist/src/index.js'
import { generateCorpus } from './anycast-corpus.js'

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]])
  return acc
}, []))
const NODES = Number(args.nodes ?? 64)
const CAPS = Number(args.caps ?? 1024)
const QUERIES = Number(args.queries ?? 500)
const CONCURRENCY = Number(args.concurrency ?? 4)
const CONFIGS = (args.configs ?? '6x6x7x1,8x6x7x1').split(',').map(c => {
  const [tables, bits, probes, publishProbes] = c.split('x').map(Number)
  return { tables, bits, probes, publishProbes }
})

const embedder = new HashEmbedder()
const { capabilities, queries } = generateCorpus({ count: CAPS, queries: QUERIES, seed: 42 })

class StaticProvider {
  constructor (caps) { this.caps = caps }
  list () { return this.caps }
  async invoke (name) { return name }
}

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

async function runConfig (lsh) {
  const t0 = performance.now()
  const nodes = []
  const perNode = Array.from({ length: NODES }, () => [])
  capabilities.forEach((c, i) => perNode[i % NODES].push({ name: c.name, description: c.description, tags: c.tags, examples: c.examples }))
  for (let i = 0; i < NODES; i++) {
    const node = await createLibp2p({
      addresses: { listen: [`/memory/bench-${lsh.tables}-${lsh.bits}-${i}`] },
      transports: [memory()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { maxConnections: 500 },
      services: {
        identify: identify(),
        ping: ping(),
        dht: kadDHT({ protocol: '/aistack/kad/1.0.0', clientMode: false, peerInfoMapper: passthroughMapper, alpha: 3, disjointPaths: 1 }),
        anycast: semanticAnycast({ embedder, provider: new StaticProvider(perNode[i]), lsh, gossip: false, dhtConcurrency: 16 })
      }
    })
    nodes.push(node)
  }
  // each node dials 4 earlier ones
  for (let i = 1; i < NODES; i++) {
    for (const t of new Set([0, i - 1, Math.floor(i / 2), Math.floor(i / 3)])) {
      if (t !== i) await nodes[i].dial(multiaddr(`/memory/bench-${lsh.tables}-${lsh.bits}-${t}`))
    }
  }
  const deadline = Date.now() + 60_000
  while (nodes.some(n => n.services.dht.routingTable.size < 8) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  const tStart = performance.now()
  await mapLimit(nodes, 8, async n => n.services.anycast.republish())
  const publishMs = performance.now() - tStart

  // baseline: brute force over all records with the same embedder (from the signed records themselves)
  const all = nodes.flatMap(n => n.services.anycast.ownRecords())
  const qv = await embedder.embed(queries.map(q => q.text))
  const truth = qv.map(v => all.map(r => {
    let s = 0
    for (let d = 0; d < v.length; d++) s += r.vector[d] * v[d]
    return { id: `${r.owner}/${r.name}`, s }
  }).sort((a, b) => b.s - a.s).slice(0, 5).map(x => x.id))

  // cold: DHT only, from queriers with empty caches
  const queriers = [1, Math.floor(NODES / 3), Math.floor(2 * NODES / 3), NODES - 1].map(i => nodes[i].services.anycast)
  const cold = []
  await mapLimit(queries, CONCURRENCY, async (q, i) => {
    const svc = queriers[i % queriers.length]
    const { candidates, stats } = await svc.findWithStats(q.text, { k: 5, source: 'dht', minSimilarity: -1 })
    const ids = candidates.map(c => `${c.peerId}/${c.name}`)
    cold.push({ ms: stats.ms, msgs: stats.dhtMessages, keys: stats.keys, providers: stats.providers, fetched: stats.recordsFetched, r1: ids[0] === truth[i][0] ? 1 : 0, r5: truth[i].filter(t => ids.includes(t)).length / truth[i].length })
  })

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
  // brute force baseline timing (the same exact search without the service)
  const tb = performance.now()
  for (const v of qv) {
    let best = -2
    for (const r of all) { let s = 0; for (let d = 0; d < v.length; d++) s += r.vector[d] * v[d]; if (s > best) best = s }
  }
  const bruteMs = (performance.now() - tb) / qv.length

  await Promise.all(nodes.map(async n => n.stop()))
  const mean = (k) => cold.reduce((s, x) => s + x[k], 0) / cold.length
  return {
    config: `L=${lsh.tables} k=${lsh.bits} probes=${lsh.probes} publish=${lsh.publishProbes}`,
    records: all.length,
    publishS: publishMs / 1000,
    recall1: mean('r1'),
    recall5: mean('r5'),
    msgs: mean('msgs'),
    keys: mean('keys'),
    providers: mean('providers'),
    fetched: mean('fetched'),
    coldP50: pct(cold.map(x => x.ms), 0.5),
    coldP99: pct(cold.map(x => x.ms), 0.99),
    warmP50: pct(warm, 0.5),
    warmP99: pct(warm, 0.99),
    warmRecall1: warmR1 / queries.length,
    bruteMs,
    totalS: (performance.now() - t0) / 1000
  }
}

console.log(`anycast benchmark: ${NODES} nodes, ${capabilities.length} capabilities, ${queries.length} queries, embedder ${embedder.id}, lookup concurrency ${CONCURRENCY}`)
console.log('| config | recall@1 | recall@5 | DHT msgs/lookup | keys | providers | records fetched | cold p50 / p99 ms | warm p50 / p99 ms | brute force ms/query | warm recall@1 | publish s |')
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|')
for (const lsh of CONFIGS) {
  const r = await runConfig(lsh)
  const f = (x, d = 1) => x.toFixed(d)
  console.log(`| ${r.config} | ${f(r.recall1, 3)} | ${f(r.recall5, 3)} | ${f(r.msgs)} | ${f(r.keys)} | ${f(r.providers)} | ${f(r.fetched)} | ${f(r.coldP50)} / ${f(r.coldP99)} | ${f(r.warmP50, 2)} / ${f(r.warmP99, 2)} | ${f(r.bruteMs, 2)} | ${f(r.warmRecall1, 3)} | ${f(r.publishS)} |`)
}
