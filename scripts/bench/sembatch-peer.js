// The serving node of `npm run bench:sembatch`, run by it as a child process: a libp2p node on
// the stack of an aistack node (TCP on 127.0.0.1, the hybrid handshake, the node's yamux:
// ./node-stack.js) with sembatch handlers and the two baselines, and a plain TCP
// echo server (no libp2p) in the same process. Prints one JSON line
// `{ "addr": "<multiaddr>", "echoPort": <port> }` when ready; stops when its standard input closes. Its
// arguments: sembatch's pipeBytes, and optionally more sembatch settings as JSON (`bulkLane: true`
// is a lane on the node's stack).
import { createEmbedder } from '@aistack/embeddings'
import { sembatch } from '@aistack/sembatch'
import { identify } from '@libp2p/identify'
import { lpStream } from '@libp2p/utils'
import { createServer } from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createLibp2p } from 'libp2p'
import { laneInit, nodeRuntime, nodeStack } from './node-stack.js'

export const UNBATCHED = '/aistack/bench-unbatched/1.0.0'
export const RAW = '/aistack/bench-raw/1.0.0'

const embedder = createEmbedder()
const decoder = new TextDecoder()
const vectorBytes = (v) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength)

nodeRuntime()
const settings = JSON.parse(process.argv[3] ?? '{}')
if (settings.bulkLane === true) settings.bulkLane = laneInit
const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  ...nodeStack(),
  services: { identify: identify(), sembatch: sembatch({ creditMessages: 8192, creditBytes: 64 * 1024 * 1024, pipeBytes: Number(process.argv[2] ?? 65536), ...settings }) }
})
const sb = node.services.sembatch
sb.handle('echo', payload => payload, { concurrency: 100_000 })
// item by item: one embedder call per text
sb.handle('embed-one', async payload => vectorBytes((await embedder.embed([decoder.decode(payload)]))[0]), { concurrency: 64 })
// batch-aware: one embedder call per batch
sb.handleBatch('embed-batch', async payloads => (await embedder.embed(payloads.map(p => decoder.decode(p)))).map(vectorBytes), { concurrency: 2, maxBatch: 512 })

// this process's event-loop delay, for the benchmark to tell stalls of the process from the protocol's
const eld = monitorEventLoopDelay({ resolution: 1 })
eld.enable()
const ms = (ns) => Math.round(ns / 1e4) / 100
sb.handle('eld', payload => {
  if (decoder.decode(payload) === 'reset') eld.reset()
  return new TextEncoder().encode(JSON.stringify({ p50Ms: ms(eld.percentile(50)), p99Ms: ms(eld.percentile(99)), maxMs: ms(eld.max) }))
})

// today's path: one stream per message, a length-prefixed request and answer, then close
await node.handle(UNBATCHED, async (stream) => {
  try {
    const lp = lpStream(stream, { maxDataLength: 4 * 1024 * 1024 })
    const req = await lp.read({ signal: AbortSignal.timeout(10_000) })
    await lp.write(req.subarray(), { signal: AbortSignal.timeout(10_000) })
    await stream.close({ signal: AbortSignal.timeout(10_000) })
  } catch (err) {
    stream.abort(err)
  }
}, { maxInboundStreams: 4096 })

// a plain long-lived stream that echoes bytes: the floor under any protocol on one stream
await node.handle(RAW, (stream) => {
  stream.addEventListener('message', (evt) => { stream.send(evt.data) })
}, { maxInboundStreams: 16 })

// the floor under any protocol in this process: bytes echoed on a plain socket of its own
const echo = createServer((socket) => {
  socket.setNoDelay(true)
  socket.on('data', (data) => { socket.write(data) })
  socket.on('error', () => {})
})
await new Promise(resolve => echo.listen(0, '127.0.0.1', resolve))

process.stdout.write(JSON.stringify({ addr: node.getMultiaddrs()[0].toString(), echoPort: echo.address().port }) + '\n')
process.stdin.resume()
process.stdin.on('end', () => { echo.close(); node.stop().finally(() => process.exit(0)) })
