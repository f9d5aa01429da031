// Benchmark: anycast INVOKE over sembatch against anycast's own one-stream-per-request path,
// on the same serving node, in one run:
//
//   npm run bench:anycast-sembatch -- --help
//
// Three libp2p nodes in this process (TCP on 127.0.0.1, Noise, Yamux, identify): a server with
// semantic anycast and sembatch serving an `echo` capability; a client with sembatch (its asks go
// over sembatch: `transportStats().sembatch` counts them) and a client without it (its asks go on
// a stream each, today's protocol). Both clients hold the server's record (fetched directly), so
// a lookup costs the same on both. Measured per path, the paths alternating in rounds:
// - sequential asks: p50 and p99 round trip of `anycast.ask` one at a time;
// - concurrent asks: asks per second with --window asks in flight;
// - askMany: inputs per second of `anycast.askMany` with --many inputs.
import { loadavg, cpus } from 'node:os'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { HashEmbedder } from '@aistack/embeddings'
import { sembatch } from '@aistack/sembatch'
import { semanticAnycast } from '@aistack/semantic-anycast'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { benchArgs } from './args.js'

const USAGE = `Usage: npm run bench:anycast-sembatch -- [--seq 2000] [--asks 20000] [--window 64] [--many 5000] [--rounds 3] [--json true]
--seq: sequential asks per path and round; --asks: concurrent asks per path and round, --window in flight;
--many: inputs of one askMany per path and round; --json true: print one JSON object instead of the report.`
const args = benchArgs(USAGE, { seq: 2000, asks: 20_000, window: 64, many: 5000, rounds: 3, json: 'false' })
const asJson = args.json === 'true' || process.argv.includes('--json')
const say = (...a) => { if (!asJson) console.log(...a) }
const load = { before: loadavg().map(x => Math.round(x * 100) / 100) }

const embedder = new HashEmbedder()
const ECHO = { name: 'echo', description: 'Echo the input back unchanged', tags: ['echo', 'test'] }
const provider = (caps) => ({
  list: () => caps,
  invoke: async (_name, input) => input
})

async function makeNode (withSembatch, caps) {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      anycast: semanticAnycast({ embedder, provider: provider(caps), gossip: false }),
      ...(withSembatch ? { sembatch: sembatch() } : {})
    }
  })
}

const server = await makeNode(true, [ECHO])
const viaSembatch = await makeNode(true, [])
const viaStream = await makeNode(false, [])
await server.services.anycast.whenPublished()
for (const client of [viaSembatch, viaStream]) {
  await client.dial(server.getMultiaddrs()[0])
  const deadline = Date.now() + 30_000
  // identify has told the peer store what the server speaks
  while (!(await client.peerStore.get(server.peerId)).protocols.includes(server.services.anycast.protocol)) {
    if (Date.now() > deadline) throw new Error('identify did not complete')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  await client.services.anycast.fetchRecords(server.peerId)
}
const QUERY = 'echo the input back'
const input = { text: 'a short agent message of about a hundred bytes, like most tool calls', n: 1 }

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]
}
const r2 = (x) => Math.round(x * 100) / 100
const r4 = (x) => Math.round(x * 10_000) / 10_000

async function sequential (client, n) {
  const samples = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await client.services.anycast.ask(QUERY, input)
    samples.push(performance.now() - t0)
  }
  return samples
}

async function concurrent (client, n, window) {
  let next = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: window }, async () => {
    while (next < n) {
      next++
      await client.services.anycast.ask(QUERY, input)
    }
  }))
  return n / ((performance.now() - t0) / 1000)
}

async function many (client, n) {
  const inputs = Array.from({ length: n }, (_, i) => ({ ...input, n: i }))
  const t0 = performance.now()
  const res = await client.services.anycast.askMany(QUERY, inputs)
  const failed = res.outputs.filter(o => 'error' in o).length
  if (failed > 0) throw new Error(`askMany: ${failed} inputs failed`)
  return n / ((performance.now() - t0) / 1000)
}

const paths = { sembatch: viaSembatch, stream: viaStream }
const seq = { sembatch: [], stream: [] }
const rates = { sembatch: [], stream: [] }
const manyRates = { sembatch: [], stream: [] }
// warm-up: connections, streams, JIT
for (const client of Object.values(paths)) await sequential(client, 200)
for (let round = 0; round < args.rounds; round++) {
  for (const [name, client] of Object.entries(paths)) seq[name].push(...await sequential(client, args.seq))
  for (const [name, client] of Object.entries(paths)) rates[name].push(await concurrent(client, args.asks, args.window))
  for (const [name, client] of Object.entries(paths)) manyRates[name].push(await many(client, args.many))
}
const stats = { sembatch: viaSembatch.services.anycast.transportStats(), stream: viaStream.services.anycast.transportStats() }
if (stats.sembatch.stream > 0 || stats.stream.sembatch > 0) throw new Error(`asks took the wrong path: ${JSON.stringify(stats)}`)
const median = (xs) => pct(xs, 50)
const result = {}
for (const name of Object.keys(paths)) {
  result[name] = {
    seqP50Ms: r4(pct(seq[name], 50)),
    seqP99Ms: r4(pct(seq[name], 99)),
    asksPerSecond: Math.round(median(rates[name])),
    askManyInputsPerSecond: Math.round(median(manyRates[name]))
  }
}
const out = {
  ...result,
  asksPerSecondRatio: r2(result.sembatch.asksPerSecond / result.stream.asksPerSecond),
  askManyRatio: r2(result.sembatch.askManyInputsPerSecond / result.stream.askManyInputsPerSecond),
  seqP50Ratio: r2(result.sembatch.seqP50Ms / result.stream.seqP50Ms),
  transportStats: stats,
  args,
  machine: { cpus: cpus().length, load: { ...load, after: loadavg().map(x => Math.round(x * 100) / 100) } }
}
if (asJson) console.log(JSON.stringify(out))
else {
  for (const name of Object.keys(paths)) {
    const r = result[name]
    say(`${name.padEnd(8)}: sequential p50 ${r.seqP50Ms} ms p99 ${r.seqP99Ms} ms; ${r.asksPerSecond} asks/s with ${args.window} in flight; askMany ${r.askManyInputsPerSecond} inputs/s`)
  }
  say(`sembatch/stream: asks/s x${out.asksPerSecondRatio}, askMany x${out.askManyRatio}, sequential p50 x${out.seqP50Ratio}`)
  say(`machine: ${cpus().length} cpus, load ${out.machine.load.before.join(' ')} -> ${out.machine.load.after.join(' ')}`)
}
await Promise.all([viaSembatch.stop(), viaStream.stop(), server.stop()])
