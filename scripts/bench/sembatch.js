// Benchmark: sembatch (one long-lived stream per peer, batched by context key) against today's
// one-stream-per-message path, on the same two nodes, in one run:
//
//   npm run bench:sembatch -- --help
//
// The serving node is a child process (scripts/bench/sembatch-peer.js); this process is the
// client. Both are libp2p nodes on the stack of an aistack node (TCP on 127.0.0.1, the hybrid
// handshake, the node's yamux: ./node-stack.js), and both run with the node's V8 flags (the npm
// script passes --single-threaded-gc and --initial-old-space-size=128, as the `aistack` command
// does; the child gets this process's flags). Measured:
// - smallMessageRatio: 64- and 256-byte echo messages to one peer, messages per second with
//   sembatch (--window in flight) over one stream per message (--unbatched-window in flight,
//   each a new stream, a length-prefixed request and answer, then close, as anycast does);
//   the smaller of the two sizes' ratios;
// - idleAddedLatencyP50Ms: one message at a time (alternating sembatch, one stream per
//   message, and a plain long-lived echo stream), sembatch's median round trip minus the
//   unbatched one's; also reported against the plain stream;
// - realtimeP99Ms: realtime 64-byte messages one at a time while --bulk-window bulk 16 KiB
//   messages are in flight all along (sampled from --bulk-warmup-ms on, when bulk has reached its
//   steady pace), p99 round trip, with the bulk lane at both ends (the
//   node's default: bulk on a connection of its own, carried by a worker thread at each end);
//   realtimeP99MsSameLoop: the same from a second client node without a lane (bulk on the same
//   stream and event loop as the realtime messages), and realtimeLaneRatio between them; the
//   interactive class under bulk for reference; realtimeAloneP99Ms: the same realtime round trips
//   with no bulk at all (what the machine gives a round trip), and the event-loop delay of both
//   processes in each phase;
// - tensorBytesRatio: 384-d embeddings of a slowly changing text (a window of words moving
//   one word per step) from the offline embedder, int8 with deltas and zstd, bytes against
//   the f32 protobuf Tensor; the cosine error of the decoded vectors; a dense slowly
//   changing vector for reference; payload dictionaries on agent JSON messages against
//   JSON and plain zstd; embed answers (the builtin embed capability's JSON, one text each) with
//   their vectors as anycast answer tensors (f32, which gives the same JSON back, and the lossy
//   f16 and int8), bytes against the JSON answer, and the asker's and answerer's time per answer;
// - embedBatchRatio: texts/s of a batch-aware embed handler over item-by-item calls.
import { spawn } from 'node:child_process'
import { loadavg, cpus } from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { createEmbedder } from '@aistack/embeddings'
import {
  sembatch, DEFAULT_PIPE_BYTES, TensorEncoder, TensorDecoder, PayloadCompressor, PayloadDecompressor, cosine, zstdCompress
} from '@aistack/sembatch'
import { VectorEncoding, packVectors, unpackVectors } from '@aistack/semantic-anycast'
import { identify } from '@libp2p/identify'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { benchArgs } from './args.js'
import { laneInit, nodeRuntime, nodeStack } from './node-stack.js'

const USAGE = `Usage: npm run bench:sembatch -- [--messages 100000] [--unbatched 4000] [--window 4096]
  [--unbatched-window 64] [--seq 1000] [--realtime 1000] [--bulk-window 256] [--bulk-warmup-ms 3000] [--vectors 2000]
  [--embed 20000] [--pipe-bytes 65536] [--bulk-lane true] [--json true]
--messages: sembatch messages per size; --unbatched: one-stream-per-message messages per size;
--seq: sequential round trips per path for idle latency; --realtime: realtime samples alone and under bulk;
--bulk-warmup-ms: how long bulk traffic runs before realtime samples are taken (bulk speeds up for a few seconds as its code warms: the default measures its steady pace);
--vectors: embeddings in the tensor stream; --embed: texts through each embed handler;
--pipe-bytes: sembatch's pipeBytes on both nodes (unacknowledged bytes before interactive and bulk wait);
--bulk-lane false: no bulk lane on the client (realtimeP99Ms then measures bulk on the same stream);
--json true: print one JSON object instead of the report.`
const args = benchArgs(USAGE, {
  messages: 100_000,
  unbatched: 4000,
  window: 4096,
  'unbatched-window': 64,
  seq: 1000,
  realtime: 1000,
  'bulk-window': 256,
  'bulk-warmup-ms': 3000,
  vectors: 2000,
  embed: 20_000,
  'pipe-bytes': DEFAULT_PIPE_BYTES,
  'bulk-lane': 'true',
  json: 'false'
})
const asJson = args.json === 'true' || process.argv.includes('--json')
const say = (...a) => { if (!asJson) console.log(...a) }

const UNBATCHED = '/aistack/bench-unbatched/1.0.0'
const RAW = '/aistack/bench-raw/1.0.0'
const runtime = nodeRuntime()
const load = { before: loadavg().map(x => Math.round(x * 100) / 100) }

// the serving node
const peerScript = fileURLToPath(new URL('./sembatch-peer.js', import.meta.url))
const child = spawn(process.execPath, [...process.execArgv, peerScript, String(args['pipe-bytes']), JSON.stringify({ bulkLane: true })], { stdio: ['pipe', 'pipe', 'inherit'] })
const addr = await new Promise((resolve, reject) => {
  let buf = ''
  child.stdout.on('data', (d) => {
    buf += d
    const line = buf.split('\n').find(l => l.startsWith('{"addr"'))
    if (line != null) resolve(JSON.parse(line).addr)
  })
  child.on('exit', (code) => reject(new Error(`the serving node exited (${code})`)))
})
const client = async (bulkLane) => {
  const n = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...nodeStack(),
    services: { identify: identify(), sembatch: sembatch({ pipeBytes: args['pipe-bytes'], bulkLane: bulkLane ? laneInit : false }) }
  })
  return { node: n, conn: await n.dial(multiaddr(addr)) }
}
const { node, conn } = await client(args['bulk-lane'] === 'true')
// the same client without a lane: bulk on the stream (and event loop) of the realtime messages
const sameLoop = await client(false)
const peer = conn.remotePeer
const sb = node.services.sembatch

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]
}
const r2 = (x) => Math.round(x * 100) / 100
const r4 = (x) => Math.round(x * 10_000) / 10_000

async function unbatchedOnce (payload) {
  const stream = await node.dialProtocol(peer, UNBATCHED)
  const lp = lpStream(stream, { maxDataLength: 4 * 1024 * 1024 })
  await lp.write(payload)
  const answer = await lp.read()
  await stream.close()
  return answer
}

/** runs `total` calls of `fn` with `window` in flight; messages per second */
async function rate (total, window, fn) {
  let next = 0
  const started = performance.now()
  await Promise.all(Array.from({ length: Math.min(window, total) }, async () => {
    while (next < total) {
      next++
      await fn()
    }
  }))
  return total / ((performance.now() - started) / 1000)
}

// warm-up
await rate(2000, 256, () => sb.send(peer, 'echo', new Uint8Array(64)))
await rate(300, 32, () => unbatchedOnce(new Uint8Array(64)))

// 1. small messages
const small = {}
for (const size of [64, 256]) {
  const payload = new Uint8Array(size).fill(7)
  const before = sb.stats()
  const unbatched = await rate(args.unbatched, args['unbatched-window'], () => unbatchedOnce(payload))
  const batched = await rate(args.messages, args.window, () => sb.send(peer, 'echo', payload))
  const after = sb.stats()
  small[size] = {
    unbatchedPerSec: Math.round(unbatched),
    batchedPerSec: Math.round(batched),
    ratio: r2(batched / unbatched),
    messagesPerFrame: r2((after.messagesSent - before.messagesSent) / Math.max(1, after.framesSent - before.framesSent))
  }
  say(`${size} B: unbatched ${small[size].unbatchedPerSec} msg/s, sembatch ${small[size].batchedPerSec} msg/s (${small[size].messagesPerFrame} per frame): ${small[size].ratio}x`)
}

// 2. idle latency, one at a time, the three paths alternating
const raw = await node.dialProtocol(peer, RAW)
let rawWaiter
raw.addEventListener('message', () => { const w = rawWaiter; rawWaiter = undefined; w?.() })
const rawOnce = async (payload) => {
  const got = new Promise(resolve => { rawWaiter = resolve })
  raw.send(payload)
  await got
}
const lat = { sembatch: [], unbatched: [], raw: [] }
const p64 = new Uint8Array(64)
for (let i = 0; i < args.seq; i++) {
  let t = performance.now()
  await sb.send(peer, 'echo', p64)
  lat.sembatch.push(performance.now() - t)
  t = performance.now()
  await unbatchedOnce(p64)
  lat.unbatched.push(performance.now() - t)
  t = performance.now()
  await rawOnce(p64)
  lat.raw.push(performance.now() - t)
}
const idle = {
  sembatchP50Ms: r4(pct(lat.sembatch, 50)),
  unbatchedP50Ms: r4(pct(lat.unbatched, 50)),
  rawStreamP50Ms: r4(pct(lat.raw, 50))
}
idle.addedVsUnbatchedMs = r4(idle.sembatchP50Ms - idle.unbatchedP50Ms)
idle.addedVsRawStreamMs = r4(idle.sembatchP50Ms - idle.rawStreamP50Ms)
say(`idle p50: sembatch ${idle.sembatchP50Ms} ms, one stream per message ${idle.unbatchedP50Ms} ms, plain stream ${idle.rawStreamP50Ms} ms`)

// 3. realtime under bulk; first realtime alone (what a round trip costs on this machine with no
// bulk at all), and in both phases the event-loop delay of both processes (how long a ready
// callback waited for its turn: stalls of the process, not of the protocol)
const eld = monitorEventLoopDelay({ resolution: 1 })
const ms = (ns) => r2(ns / 1e6)
const eldStats = (h) => ({ p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max) })
const peerEld = async (op) => JSON.parse(new TextDecoder().decode(await sb.send(peer, 'eld', new TextEncoder().encode(op), { qos: 'realtime' })))
async function realtimeAlone () {
  eld.reset()
  await peerEld('reset')
  const samples = []
  for (let i = 0; i < args.realtime; i++) {
    const t = performance.now()
    await sb.send(peer, 'echo', p64, { qos: 'realtime' })
    samples.push(performance.now() - t)
    await new Promise(resolve => setImmediate(resolve))
  }
  return { p50Ms: r4(pct(samples, 50)), p99Ms: r4(pct(samples, 99)), eventLoopDelay: { client: eldStats(eld), server: await peerEld('read') } }
}
eld.enable()
const realtimeIdle = await realtimeAlone()
say(`realtime alone: p50 ${realtimeIdle.p50Ms} ms p99 ${realtimeIdle.p99Ms} ms; event-loop delay p99 client ${realtimeIdle.eventLoopDelay.client.p99Ms} ms, server ${realtimeIdle.eventLoopDelay.server.p99Ms} ms`)
/** Sends bulk until the client has a lane link to the peer (the lane starts when bulk first flows) */
async function laneOpen (s) {
  const end = Date.now() + 60_000
  while (s.stats().laneLinks === 0) {
    if (Date.now() > end) throw new Error('the bulk lane did not open within 60 s')
    await s.send(peer, 'echo', p64, { qos: 'bulk' })
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
async function underBulk (qos, s = sb) {
  const state = { stop: false }
  let bulkBytes = 0
  const bulkPayload = new Uint8Array(16 * 1024).fill(1)
  const bulkStart = performance.now()
  const bulk = Promise.all(Array.from({ length: args['bulk-window'] }, async () => {
    while (!state.stop) {
      await s.send(peer, 'echo', bulkPayload, { qos: 'bulk' })
      bulkBytes += bulkPayload.byteLength
    }
  }))
  // let the bulk traffic fill the pipe and reach its steady pace first
  await new Promise(resolve => setTimeout(resolve, args['bulk-warmup-ms']))
  eld.reset()
  await peerEld('reset')
  const samples = []
  for (let i = 0; i < args.realtime; i++) {
    const t = performance.now()
    await s.send(peer, 'echo', p64, { qos })
    samples.push(performance.now() - t)
    await new Promise(resolve => setImmediate(resolve))
  }
  const eventLoopDelay = { client: eldStats(eld), server: await peerEld('read') }
  state.stop = true
  const seconds = (performance.now() - bulkStart) / 1000
  await bulk
  return { p50Ms: r4(pct(samples, 50)), p99Ms: r4(pct(samples, 99)), bulkMiBps: r2(bulkBytes / seconds / 1048576), eventLoopDelay }
}
if (args['bulk-lane'] === 'true') await laneOpen(sb)
const realtime = await underBulk('realtime')
const realtimeSameLoop = await underBulk('realtime', sameLoop.node.services.sembatch)
const interactiveUnderBulk = await underBulk('interactive')
eld.disable()
const lane = args['bulk-lane'] === 'true' ? 'with the bulk lane' : 'without a lane'
say(`under bulk (${lane}): realtime p50 ${realtime.p50Ms} ms p99 ${realtime.p99Ms} ms (bulk ${realtime.bulkMiBps} MiB/s; event-loop delay p99 client ${realtime.eventLoopDelay.client.p99Ms} ms, server ${realtime.eventLoopDelay.server.p99Ms} ms); interactive p99 ${interactiveUnderBulk.p99Ms} ms`)
say(`under bulk on the same stream (no lane): realtime p50 ${realtimeSameLoop.p50Ms} ms p99 ${realtimeSameLoop.p99Ms} ms (bulk ${realtimeSameLoop.bulkMiBps} MiB/s); lane/no lane p99: x${r2(realtime.p99Ms / realtimeSameLoop.p99Ms)}`)

// 4. tensors and payload compression
const embedder = createEmbedder()
const words = []
{
  let s = 1
  const rand = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 }
  const vocab = 'agent task model embed vector query answer peer node stream batch latency summary log error retry queue plan tool call result context memory token search index shard cache route trace metric'.split(' ')
  for (let i = 0; i < args.vectors + 40; i++) words.push(vocab[Math.floor(rand() * vocab.length)] + (rand() < 0.3 ? String(Math.floor(rand() * 100)) : ''))
}
const texts = Array.from({ length: args.vectors }, (_, i) => words.slice(i, i + 40).join(' '))
const vectors = await embedder.embed(texts)
function tensorStream (vs, dtype) {
  const enc = new TensorEncoder({ dtype })
  const dec = new TensorDecoder()
  const f32 = new TensorEncoder({ dtype: 'f32', delta: false, compressThreshold: Infinity })
  let bytes = 0
  let baseline = 0
  let worst = 1
  let sum = 0
  for (const v of vs) {
    const b = enc.encode(v)
    bytes += b.byteLength
    baseline += f32.encode(v).byteLength
    const c = cosine(dec.decode(b).data, v)
    worst = Math.min(worst, c)
    sum += c
  }
  return { ratio: r4(bytes / baseline), bytesPerVector: r2(bytes / vs.length), f32BytesPerVector: r2(baseline / vs.length), meanCosineError: r4(1 - sum / vs.length), maxCosineError: r4(1 - worst) }
}
const tensors = { int8: tensorStream(vectors, 'int8'), f16: tensorStream(vectors, 'f16'), bf16: tensorStream(vectors, 'bf16') }
{
  // a dense vector drifting slowly (as a neural model's embedding of a slowly changing text)
  let s = 7
  const rand = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 }
  let v = Float32Array.from({ length: 384 }, () => rand() * 2 - 1)
  const dense = []
  for (let i = 0; i < args.vectors; i++) {
    v = Float32Array.from(v)
    for (let k = 0; k < 384; k++) v[k] += (rand() - 0.5) * 0.01
    dense.push(v)
  }
  tensors.denseInt8 = tensorStream(dense, 'int8')
}
say(`tensors (offline embedder, int8+delta+zstd): ${tensors.int8.bytesPerVector} B/vector against ${tensors.int8.f32BytesPerVector} B f32: ${tensors.int8.ratio}, cosine error mean ${tensors.int8.meanCosineError} max ${tensors.int8.maxCosineError}; dense drifting int8 ${tensors.denseInt8.ratio}`)

const agentPayloads = Array.from({ length: 2000 }, (_, i) => new TextEncoder().encode(JSON.stringify({
  query: ['summarise this build log', 'translate to French', 'classify the support ticket', 'extract the invoice total'][i % 4],
  input: { text: texts[i % texts.length], lang: 'en', maxTokens: 256 },
  trace: { traceparent: `00-${(i * 2654435761 % 2 ** 32).toString(16).padStart(32, '0')}-${i.toString(16).padStart(16, '0')}-01`, path: ['planner', 'router', 'worker'] },
  deadlineMs: 30000
})))
const compressor = new PayloadCompressor()
const decompressor = new PayloadDecompressor()
let jsonBytes = 0
let zstdBytes = 0
let dictBytes = 0
for (const p of agentPayloads) {
  jsonBytes += p.byteLength
  zstdBytes += zstdCompress(p).byteLength
  const c = compressor.compress(p)
  dictBytes += c.byteLength
  if (decompressor.decompress(c).byteLength !== p.byteLength) throw new Error('dictionary round trip failed')
}
const payloads = { jsonBytesPerMessage: r2(jsonBytes / agentPayloads.length), zstdRatio: r4(zstdBytes / jsonBytes), dictionaryRatio: r4(dictBytes / jsonBytes), dictionaryVsZstd: r4(dictBytes / zstdBytes) }
say(`agent JSON payloads (${payloads.jsonBytesPerMessage} B): plain zstd ${payloads.zstdRatio} of JSON, zstd with a context dictionary ${payloads.dictionaryRatio} (${payloads.dictionaryVsZstd} of plain zstd)`)

// vectors in anycast answers: the builtin embed capability's answer to one text
const embedAnswers = vectors.map(v => ({ model: embedder.id, dim: embedder.dim, vectors: [Array.from(v, x => Math.round(x * 1e6) / 1e6)] }))
const answerJsonBytes = embedAnswers.reduce((n, a) => n + new TextEncoder().encode(JSON.stringify(a)).byteLength, 0)
const answers = { jsonBytesPerAnswer: r2(answerJsonBytes / embedAnswers.length) }
for (const [name, encoding] of [['f32', VectorEncoding.F32], ['f16', VectorEncoding.F16], ['int8', VectorEncoding.INT8]]) {
  let bytes = 0
  let maxErr = 0
  let exact = true
  const t0 = performance.now()
  const packed = embedAnswers.map(a => packVectors(a, encoding))
  const t1 = performance.now()
  const back = packed.map(p => unpackVectors(p.json, p.tensors, encoding, 1e7))
  const t2 = performance.now()
  packed.forEach((p, i) => {
    bytes += p.tensors.reduce((n, t) => n + t.byteLength, new TextEncoder().encode(p.json).byteLength)
    maxErr = Math.max(maxErr, 1 - cosine(back[i].vectors[0], embedAnswers[i].vectors[0]))
    if (JSON.stringify(back[i]) !== JSON.stringify(embedAnswers[i])) exact = false
  })
  answers[name] = { ratio: r4(bytes / answerJsonBytes), bytesPerAnswer: r2(bytes / embedAnswers.length), exact, maxCosineError: r4(maxErr), packUs: r2((t1 - t0) * 1000 / packed.length), unpackUs: r2((t2 - t1) * 1000 / packed.length) }
}
say(`embed answers (${answers.jsonBytesPerAnswer} B of JSON): f32 tensors ${answers.f32.ratio} of JSON (exact: ${answers.f32.exact}), f16 ${answers.f16.ratio}, int8 ${answers.int8.ratio} (cosine error max ${answers.int8.maxCosineError}); f32 pack ${answers.f32.packUs} us, unpack ${answers.f32.unpackUs} us per answer`)

// 5. embed handlers
const embedTexts = Array.from({ length: args.embed }, (_, i) => new TextEncoder().encode(texts[i % texts.length]))
let k = 0
const oneByOne = await rate(args.embed, args.window, () => sb.send(peer, 'embed-one', embedTexts[k++ % embedTexts.length]))
k = 0
const batchAware = await rate(args.embed, args.window, () => sb.send(peer, 'embed-batch', embedTexts[k++ % embedTexts.length]))
const embed = { oneByOnePerSec: Math.round(oneByOne), batchPerSec: Math.round(batchAware), ratio: r2(batchAware / oneByOne) }
say(`embed: item by item ${embed.oneByOnePerSec} texts/s, batch-aware ${embed.batchPerSec} texts/s: ${embed.ratio}x`)

load.after = loadavg().map(x => Math.round(x * 100) / 100)
const result = {
  smallMessageRatio: Math.min(small[64].ratio, small[256].ratio),
  idleAddedLatencyP50Ms: idle.addedVsUnbatchedMs,
  realtimeP99Ms: realtime.p99Ms,
  realtimeAloneP99Ms: realtimeIdle.p99Ms,
  realtimeP99MsSameLoop: realtimeSameLoop.p99Ms,
  realtimeLaneRatio: r2(realtime.p99Ms / realtimeSameLoop.p99Ms),
  bulkLane: args['bulk-lane'] === 'true',
  tensorBytesRatio: tensors.int8.ratio,
  tensorCosineErrorMax: tensors.int8.maxCosineError,
  embedBatchRatio: embed.ratio,
  bars: {
    smallMessageRatio: '>= 20',
    idleAddedLatencyP50Ms: '<= 0.1',
    realtimeP99Ms: '<= 2',
    tensorBytesRatio: '<= 0.25'
  },
  small,
  idle,
  realtime,
  realtimeSameLoop,
  realtimeIdle,
  interactiveUnderBulk,
  tensors,
  payloads,
  answers,
  embed,
  node: process.version,
  cpus: cpus().length,
  runtime,
  pipeBytes: args['pipe-bytes'],
  bulkWarmupMs: args['bulk-warmup-ms'],
  loadAverage: load
}
result.pass = {
  smallMessageRatio: result.smallMessageRatio >= 20,
  idleAddedLatencyP50Ms: result.idleAddedLatencyP50Ms <= 0.1,
  realtimeP99Ms: result.realtimeP99Ms <= 2,
  tensorBytesRatio: result.tensorBytesRatio <= 0.25
}
if (asJson) console.log(JSON.stringify(result))
else say(`load average ${load.before.join(' ')} before, ${load.after.join(' ')} after; pass: ${JSON.stringify(result.pass)}`)
raw.abort(new Error('done'))
await node.stop()
await sameLoop.node.stop()
child.stdin.end()
await new Promise(resolve => child.once('exit', resolve))
