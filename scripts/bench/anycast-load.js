// Semantic anycast under load, on real `aistack start` processes (127.0.0.1):
// 1. `--nodes` processes (one bootstrap, the others with 2-3 capabilities each
//    from the generated corpus); once every node sees every capability,
//    `--searchers` nodes search at once with fresh queries (their lookups go to
//    the DHT): wall-clock latency p50/p99 of GET /v1/capabilities/search,
//    against the bars (p50 <= 500 ms, p99 <= 2 s).
// 2. once the network has settled (all nodes together under a quarter of one
//    core; its start-up publishing takes the machine for a minute or more),
//    `--burst` concurrent searches (distinct queries) on one node: every
//    request must be answered (200, or 503 when the lookup queue is full)
//    within 30 s; RSS growth of that process (bar: 150 MiB), its CPU time.
//
//   npm run bench:anycast-load -- [--nodes 16] [--searchers 8] [--queries 20] [--burst 1000]
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, removeTempDirs, startNodeProcess, tempDir } from '../../packages/node/dist/test/helpers.js'
import { HybridEmbedder } from '../../packages/embeddings/dist/src/index.js'
import { capabilityText } from '../../protocols/semantic-anycast/dist/src/index.js'
import { generateCorpus } from './anycast-corpus.js'
import { benchArgs } from './args.js'

const USAGE = `Usage: npm run bench:anycast-load -- [--nodes 16] [--searchers 8] [--queries 20] [--burst 1000]
Starts --nodes aistack processes on 127.0.0.1; --searchers of them search --queries fresh queries
each at once; then --burst concurrent searches hit one node.`
const args = benchArgs(USAGE, { nodes: 16, searchers: 8, queries: 20, burst: 1000 })

// CPU time of a process (user + system), ms (/proc/<pid>/stat fields 14 and 15, clock ticks of 10 ms)
const cpuMs = async (pid) => { const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10 }
const rssKiB = async (pid) => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))] }

const owners = args.nodes - 1
const { capabilities, queries } = generateCorpus({ count: owners * 3, queries: args.searchers * args.queries + args.burst, seed: 7 })
const nodes = []
try {
  const t0 = performance.now()
  nodes.push(await startNodeProcess(await tempDir(), [], { timeoutMs: 120_000 }))
  const bootstrap = ['--bootstrap', nodes[0].run.multiaddrs[0]]
  const starts = []
  const names = new Set()
  const served = []
  for (let i = 0; i < owners; i++) {
    const caps = capabilities.slice(i * 3, i * 3 + 2 + (i % 2)).map(c => ({ name: c.name, description: c.description, tags: c.tags, examples: c.examples, handler: { type: 'builtin', name: 'echo' } }))
    caps.forEach(c => { names.add(c.name); served.push(c) })
    const home = await tempDir()
    await writeFile(join(home, 'config.json'), JSON.stringify({ capabilities: caps }))
    starts.push(startNodeProcess(home, bootstrap, { timeoutMs: 120_000 }).then(n => { nodes.push(n); return n }))
  }
  await Promise.all(starts)
  const lastStart = performance.now()
  console.log(`${nodes.length} nodes started in ${Math.round(lastStart - t0)} ms, ${names.size} capabilities`)

  // the network is up once every node sees every capability (as a user would wait for a
  // started network, not search during its start-up storm); bounded wait
  const deadline = performance.now() + 180_000
  let short = 0
  for (const n of nodes) {
    while (true) {
      const res = await api(n.run, 'GET', '/v1/capabilities/network')
      const seen = new Set((res.json?.capabilities ?? []).map(c => c.name))
      if ([...names].every(name => seen.has(name))) break
      if (performance.now() > deadline) {
        console.log(`a node sees ${seen.size} of ${names.size} capabilities after 3 min; searching anyway`)
        short++
        break
      }
      await new Promise(resolve => setTimeout(resolve, 500))
    }
  }
  console.log(`${nodes.length - short} of ${nodes.length} nodes see every capability ${Math.round(performance.now() - lastStart)} ms after the last start`)

  // phase 1: searchers at once, fresh queries
  const searchers = nodes.slice(1, 1 + args.searchers)
  const latencies = []
  const found = []
  const slow = []
  let q = 0
  await Promise.all(searchers.map(async (n, s) => {
    for (let i = 0; i < args.queries; i++) {
      const text = queries[s * args.queries + i].text
      const t = performance.now()
      const path = `/v1/capabilities/search?q=${encodeURIComponent(text)}&k=5&explain=1`
      // a kept-alive socket the server closes as it is reused resets the request: it is sent again once
      const res = await api(n.run, 'GET', path).catch(async err => {
        if (err.cause?.code !== 'ECONNRESET') throw err
        console.log('search reset on a reused connection: sent again')
        return api(n.run, 'GET', path)
      })
      const ms = performance.now() - t
      latencies.push(ms)
      found.push({ text, names: (res.json?.results ?? []).map(r => r.name) })
      if (res.status !== 200) console.log(`search answered ${res.status}`)
      else slow.push({ ms: Math.round(ms), node: s, explain: res.json.explain })
      q++
    }
  }))
  const p50 = pct(latencies, 0.5)
  const p99 = pct(latencies, 0.99)
  // where the time of the slowest lookups went (reason, per-phase ms, failed fetches)
  for (const { ms, node, explain: e } of slow.sort((a, b) => b.ms - a.ms).slice(0, 3)) {
    console.log(`  slow: ${ms} ms on searcher ${node}: ${e.path} (${e.reason}); phases ${JSON.stringify(e.phases)}; ${e.dhtMessages} DHT messages, ${e.providers.length} providers, fetches ${JSON.stringify(e.fetches.filter(f => f.ms > 1000 || f.error != null).slice(0, 4))}`)
  }
  // no owner lost: each search against an exact search over every served capability with the
  // nodes' embedder (the top 5 at or above the default minimum similarity, 0.2)
  const embedder = new HybridEmbedder()
  const capVectors = served.map(c => embedder.embedOne(capabilityText(c)))
  let expected = 0
  let missed = 0
  let firstMissed = 0
  for (const { text, names: got } of found) {
    const v = embedder.embedOne(text)
    const exact = served.map((c, i) => ({ name: c.name, sim: capVectors[i].reduce((sum, x, j) => sum + x * v[j], 0) }))
      .filter(r => r.sim >= 0.2).sort((a, b) => b.sim - a.sim).slice(0, 5)
    expected += exact.length
    missed += exact.filter(r => !got.includes(r.name)).length
    if (exact.length > 0 && !got.includes(exact[0].name)) firstMissed++
  }
  console.log(`phase 1 results against exact search: ${expected - missed} of ${expected} expected results returned (recall@5 ${((expected - missed) / Math.max(1, expected)).toFixed(3)}), the exact best missing from ${firstMissed} of ${found.length} searches`)
  console.log(`phase 1: ${q} searches from ${searchers.length} nodes at once: p50 ${Math.round(p50)} ms (bar 500, ratio ${(p50 / 500).toFixed(2)}), p99 ${Math.round(p99)} ms (bar 2000, ratio ${(p99 / 2000).toFixed(2)})`)

  // phase 2: a burst on one node, once the network has settled: for a minute or more after a
  // start the nodes publish their provider records (a DHT walk and an ADD_PROVIDER per bucket key)
  // and fill their peer stores, which takes the whole machine; the burst measures a node of a
  // running network, so it waits until all nodes together use under a quarter of one core
  // (bounded: 5 min, then it runs anyway and says so)
  const settleStart = performance.now()
  let settled = false
  let share = NaN
  while (performance.now() - settleStart < 300_000) {
    const c0 = await Promise.all(nodes.map(n => cpuMs(n.run.pid)))
    const w0 = performance.now()
    await new Promise(resolve => setTimeout(resolve, 5000))
    const c1 = await Promise.all(nodes.map(n => cpuMs(n.run.pid)))
    share = c1.reduce((sum, c, i) => sum + c - c0[i], 0) / (performance.now() - w0)
    if (share < 0.25) {
      settled = true
      break
    }
  }
  console.log(`${settled ? 'settled' : 'not settled'} ${Math.round((performance.now() - lastStart) / 1000)} s after the last start: the ${nodes.length} nodes use ${Math.round(share * 100)} % of one core together (wait for < 25 %)`)
  const target = nodes[1]
  const rss0 = await rssKiB(target.run.pid)
  const cpu0 = await cpuMs(target.run.pid)
  let peak = rss0
  const sampler = setInterval(() => { rssKiB(target.run.pid).then(r => { peak = Math.max(peak, r) }, () => {}) }, 100)
  const statuses = new Map()
  let slowest = 0
  const tb = performance.now()
  await Promise.all(Array.from({ length: args.burst }, async (_, i) => {
    const text = queries[args.searchers * args.queries + i].text
    const t = performance.now()
    let status
    try {
      status = (await api(target.run, 'GET', `/v1/capabilities/search?q=${encodeURIComponent(text)}&k=5`)).status
    } catch (err) {
      status = `error ${err.cause?.code ?? err.message}`
    }
    slowest = Math.max(slowest, performance.now() - t)
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
  }))
  clearInterval(sampler)
  const rss1 = await rssKiB(target.run.pid)
  const cpuBurst = await cpuMs(target.run.pid) - cpu0
  console.log(`phase 2: ${args.burst} concurrent searches in ${Math.round(performance.now() - tb)} ms, slowest ${Math.round(slowest)} ms (bar 30000): ${[...statuses].map(([s, n]) => `${s}: ${n}`).join(', ')}; RSS ${Math.round(rss0 / 1024)} -> peak ${Math.round(peak / 1024)} -> ${Math.round(rss1 / 1024)} MiB (growth ${Math.round((peak - rss0) / 1024)} MiB, bar 150); the node's CPU ${Math.round(cpuBurst)} ms (${(cpuBurst / args.burst).toFixed(1)} ms per search)`)
} finally {
  await Promise.all(nodes.map(async n => n.stop()))
  await removeTempDirs()
}
