// Offline LSH recall bound for the anycast benchmark's corpus: for each config,
// the fraction of queries whose brute-force best record shares at least one
// probed bucket with the buckets its owner publishes (the recall@1 the DHT path
// reaches when every provider lookup returns every provider), and the same
// counting only buckets of at most 20 distinct providers (a Kad-DHT node that
// answers from its own provider store names at most k = 20). No network.
//
//   npm run -s bench:anycast-bound -- [--nodes 64] [--caps 1024] [--queries 500] [--configs 8x6x7,8x7x10]
import { HashEmbedder } from '../../packages/embeddings/dist/src/index.js'
import { SimHashLsh } from '../../protocols/semantic-anycast/dist/src/lsh.js'
import { capabilityText, dequantize, quantize } from '../../protocols/semantic-anycast/dist/src/record.js'
import { generateCorpus } from './anycast-corpus.js'
import { benchArgs, lshConfigs } from './args.js'

const USAGE = `Usage: npm run -s bench:anycast-bound -- [--nodes 64] [--caps 1024] [--queries 500] [--configs 8x6x7,8x7x10]
A config is tables x bits x probes per table; capabilities are spread round-robin over the nodes.`
const args = benchArgs(USAGE, { nodes: 64, caps: 1024, queries: 500, configs: '4x6x7,6x6x7,8x6x7,8x7x7,10x7x7,8x7x10,8x8x9,10x8x9' })
const NODES = args.nodes
const CAPS = args.caps
const QUERIES = args.queries
const CONFIGS = lshConfigs(args.configs, USAGE)
const PROVIDER_CAP = 20

const embedder = new HashEmbedder()
const { capabilities, queries } = generateCorpus({ count: CAPS, queries: QUERIES, seed: 42 })
// vectors as published: int8 with a scale
const capVectors = (await embedder.embed(capabilities.map(c => capabilityText(c)))).map(v => {
  const q = quantize(v)
  return dequantize(q.values, q.scale)
})
const queryVectors = await embedder.embed(queries.map(q => q.text))
const bestOf = queryVectors.map(v => {
  let best = -1
  let bestScore = -2
  capVectors.forEach((c, i) => {
    let s = 0
    for (let d = 0; d < v.length; d++) s += c[d] * v[d]
    if (s > bestScore) {
      bestScore = s
      best = i
    }
  })
  return best
})

console.log(`LSH bound: ${capabilities.length} capabilities on ${NODES} nodes, ${queries.length} queries, ${embedder.id}`)
console.log('| L | k | probes | keys / lookup | recall@1 bound | counting buckets of <= 20 providers | providers per bucket p50 / max | buckets over 20 |')
console.log('|---|---|---|---|---|---|---|---|')
for (const { tables, bits, probes } of CONFIGS) {
  const lsh = new SimHashLsh('aistack', embedder.id, embedder.dim, { tables, bits })
  const bucketsOf = capVectors.map(v => lsh.buckets(v).map(b => `${b.table}/${b.bits}`))
  const owners = new Map()
  bucketsOf.forEach((buckets, i) => {
    for (const b of buckets) {
      let set = owners.get(b)
      if (set == null) owners.set(b, set = new Set())
      set.add(i % NODES)
    }
  })
  let hit = 0
  let hitSmall = 0
  queryVectors.forEach((v, qi) => {
    const probed = new Set(lsh.probes(v, probes).map(b => `${b.table}/${b.bits}`))
    const shared = bucketsOf[bestOf[qi]].filter(b => probed.has(b))
    if (shared.length > 0) hit++
    if (shared.some(b => owners.get(b).size <= PROVIDER_CAP)) hitSmall++
  })
  const sizes = [...owners.values()].map(s => s.size).sort((a, b) => a - b)
  const f = (x) => (x / queryVectors.length).toFixed(3)
  console.log(`| ${tables} | ${bits} | ${probes} | ${tables * probes} | ${f(hit)} | ${f(hitSmall)} | ${sizes[sizes.length >> 1]} / ${sizes.at(-1)} | ${sizes.filter(x => x > PROVIDER_CAP).length} of ${sizes.length} |`)
}
