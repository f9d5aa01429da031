// Embedder benchmark: how often each embedder ranks the intended capability
// first (top-1) and among the first three (top-3) for paraphrased queries in
// three difficulties (scripts/bench/data/paraphrases.json: 50 capabilities in
// 13 domains; light: reworded, moderate: one content word shared, hard: none
// shared), texts embedded per second, start-up time and memory. The baseline
// is aistack-hash-v1 in the same run. Each embedder runs in its own process so
// that start-up and memory are its own.
//
//   node scripts/bench/embed.js [--models DIR] [--model all-MiniLM-L6-v2] [--seconds 3]
// local: runs when DIR/<model> (default ~/.aistack/models) holds the model files;
// openai: runs when AISTACK_OPENAI_URL, AISTACK_OPENAI_MODEL and AISTACK_OPENAI_DIM are set
// (AISTACK_OPENAI_KEY optional).
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { benchArgs } from './args.js'

const USAGE = `Usage: npm run bench:embed -- [--models DIR] [--model all-MiniLM-L6-v2] [--seconds 3]
Ranks 50 capability descriptions for 150 paraphrased queries with each embedder: hash
(aistack-hash-v1, the baseline), offline (aistack-hybrid-v2), local (when DIR/<model> holds
the model; DIR defaults to $AISTACK_HOME/models or ~/.aistack/models) and openai (when
AISTACK_OPENAI_URL, AISTACK_OPENAI_MODEL and AISTACK_OPENAI_DIM are set).`
const args = benchArgs(USAGE, {
  models: join(process.env.AISTACK_HOME ?? join(homedir(), '.aistack'), 'models'),
  model: 'all-MiniLM-L6-v2',
  seconds: 3
})
const DATA = fileURLToPath(new URL('./data/paraphrases.json', import.meta.url))
const DIFFICULTIES = ['light', 'moderate', 'hard']

/** Top-1 and top-3 hits of each query against all descriptions, per difficulty */
function rankAll (capabilities, descVectors, queryVectors) {
  const out = {}
  for (const d of DIFFICULTIES) {
    let top1 = 0
    let top3 = 0
    capabilities.forEach((_, i) => {
      const q = queryVectors[d][i]
      const scores = descVectors.map(v => { let s = 0; for (let j = 0; j < v.length; j++) s += v[j] * q[j]; return s })
      const better = scores.filter(s => s > scores[i]).length
      if (better === 0) top1++
      if (better < 3) top3++
    })
    out[d] = { top1: top1 / capabilities.length, top3: top3 / capabilities.length }
  }
  return out
}

/** Measures one embedder type in this process and prints its figures as JSON */
async function worker (type) {
  const t0 = performance.now()
  const rss0 = process.memoryUsage().rss
  const { createEmbedder } = await import('../../packages/embeddings/dist/src/index.js')
  const config = type === 'openai'
    ? { type, baseUrl: process.env.AISTACK_OPENAI_URL, model: process.env.AISTACK_OPENAI_MODEL, dim: Number(process.env.AISTACK_OPENAI_DIM), apiKey: process.env.AISTACK_OPENAI_KEY }
    : type === 'local' ? { type, model: args.model, path: args.models } : { type }
  const embedder = createEmbedder(config)
  const { capabilities } = JSON.parse(readFileSync(DATA, 'utf8'))
  await embedder.embed(['warm up'])
  const startupMs = performance.now() - t0
  const descVectors = await embedder.embed(capabilities.map(c => c.description))
  const queryVectors = {}
  for (const d of DIFFICULTIES) queryVectors[d] = await embedder.embed(capabilities.map(c => c.queries[d]))
  const quality = rankAll(capabilities, descVectors, queryVectors)
  // throughput: the 200 texts in batches of 50, for --seconds
  const texts = [...capabilities.map(c => c.description), ...DIFFICULTIES.flatMap(d => capabilities.map(c => c.queries[d]))]
  let n = 0
  const tStart = performance.now()
  while (performance.now() - tStart < args.seconds * 1000) {
    for (let i = 0; i < texts.length; i += 50) await embedder.embed(texts.slice(i, i + 50))
    n += texts.length
  }
  const perSecond = n / ((performance.now() - tStart) / 1000)
  process.stdout.write(JSON.stringify({ id: embedder.id, dim: embedder.dim, quality, perSecond, startupMs, rssMiB: process.memoryUsage().rss / 2 ** 20, rssGrowthMiB: (process.memoryUsage().rss - rss0) / 2 ** 20 }))
}

if (process.env.AISTACK_BENCH_EMBED_WORKER != null) {
  await worker(process.env.AISTACK_BENCH_EMBED_WORKER)
} else {
  const { capabilities } = JSON.parse(readFileSync(DATA, 'utf8'))
  const domains = new Set(capabilities.map(c => c.domain)).size
  console.log(`embedder benchmark: ${capabilities.length} capabilities in ${domains} domains, ${capabilities.length * 3} queries, node ${process.version}`)
  const types = ['hash', 'offline']
  if (existsSync(join(args.models, args.model, 'onnx', 'model_quantized.onnx'))) types.push('local')
  else console.log(`local: skipped, no ${args.model} in ${args.models} (aistack models pull ${args.model})`)
  if (process.env.AISTACK_OPENAI_URL != null) types.push('openai')
  const results = []
  for (const type of types) {
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
      env: { ...process.env, AISTACK_BENCH_EMBED_WORKER: type },
      maxBuffer: 1 << 20
    })
    results.push({ type, ...JSON.parse(out.toString()) })
  }
  const pct = x => (100 * x).toFixed(0).padStart(3) + '%'
  console.log('\nembedder             dims  top-1 light/moderate/hard/all   top-3 light/moderate/hard/all   texts/s  start-up  RSS')
  const base = results[0]
  for (const r of results) {
    const q = r.quality
    const all1 = DIFFICULTIES.reduce((s, d) => s + q[d].top1, 0) / 3
    const all3 = DIFFICULTIES.reduce((s, d) => s + q[d].top3, 0) / 3
    r.all1 = all1
    console.log(`${r.id.padEnd(20)} ${String(r.dim).padStart(4)}  ${DIFFICULTIES.map(d => pct(q[d].top1)).join(' ')} ${pct(all1)}        ${DIFFICULTIES.map(d => pct(q[d].top3)).join(' ')} ${pct(all3)}       ${r.perSecond.toFixed(0).padStart(7)}  ${r.startupMs.toFixed(0).padStart(6)} ms  ${r.rssMiB.toFixed(0)} MiB`)
  }
  for (const r of results.slice(1)) {
    console.log(`${r.id} vs ${base.id}: top-1 ${(r.all1 / base.all1).toFixed(2)}x, throughput ${(r.perSecond / base.perSecond).toFixed(2)}x`)
  }
}
