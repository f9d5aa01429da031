// Benchmark: sembatch's realtime class while bulk traffic saturates the link, for two sets of
// settings in one run, and the machine's own noise floor:
//
//   npm run bench:sembatch-realtime -- --help
//
// Each set of settings has its own serving node (a child process, scripts/bench/sembatch-peer.js)
// and its own client node in this process, both on the stack of an aistack node (TCP on
// 127.0.0.1, the hybrid handshake, the node's yamux: ./node-stack.js) and with the node's V8 flags
// (the npm script passes --single-threaded-gc and --initial-old-space-size=128, as `aistack start`
// does; children get this process's flags). The sets take turns
// in --rounds rounds, so both see the same load of the machine. In each round: --bulk-window
// bulk 16 KiB echo messages in flight all along, and --realtime realtime 64-byte echo round
// trips one at a time; p50/p99 round trip over all rounds, bulk MiB/s, and the event-loop delay
// (p99) of both processes. The noise floor: the event-loop delay of this process and of an idle
// child while nothing is sent (--idle-ms); the event-loop delay of a process working in 0.2 ms
// steps beside another busy process (what the machine's scheduler gives a busy process, with no
// protocol at all); realtime round trips with no bulk; and, in each bulk phase, the same number of
// 64-byte round trips on a plain TCP socket (no libp2p) between the same two processes: the floor
// the two event loops leave any message while they carry the bulk traffic. The client's garbage
// collections during bulk (count of full ones, longest pause) are reported beside it. And, with no
// sembatch at all, the same plain-socket round trips while bulk bytes go over a bare libp2p stream
// (Noise, Yamux) to the serving node's echo, --raw-window bytes in flight: the floor under bulk
// traffic on this stack whatever protocol runs over it.
//
// Sets: "before" is the settings sembatch had before bulk writes were bounded (64 KiB writes,
// bulk compressed like any batch, no yield between writes); "after" is today's defaults of the
// sembatch module (no bulk lane: bulk on the same stream and event loop as realtime); "lane" is
// the node's default, the bulk lane at both ends (bulk on a connection of its own, carried by a
// worker thread at each end).
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { loadavg, cpus } from 'node:os'
import { PerformanceObserver, constants as perfConstants, monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { sembatch } from '@aistack/sembatch'
import { identify } from '@libp2p/identify'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { benchArgs } from './args.js'
import { laneInit, nodeRuntime, nodeStack } from './node-stack.js'

const USAGE = `Usage: npm run bench:sembatch-realtime -- [--realtime 500] [--rounds 4] [--bulk-window 256] [--raw-window 65536] [--idle-ms 3000] [--json true]
--realtime: realtime round trips per set and round; --rounds: rounds, the sets alternating;
--bulk-window: bulk messages in flight; --raw-window: bytes in flight on the bare stream; --idle-ms: how long the idle noise floor is measured;
--json true: print one JSON object instead of the report.`
const args = benchArgs(USAGE, { realtime: 500, rounds: 4, 'bulk-window': 256, 'raw-window': 65536, 'idle-ms': 3000, json: 'false' })
const asJson = args.json === 'true' || process.argv.includes('--json')
const say = (...a) => { if (!asJson) console.log(...a) }
const runtime = nodeRuntime()
const load = { before: loadavg().map(x => Math.round(x * 100) / 100) }

export const SETS = {
  before: { bulkWriteBytes: 64 * 1024, yieldAfterBulk: false },
  after: {},
  lane: { bulkLane: true }
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]
}
const r2 = (x) => Math.round(x * 100) / 100
const r4 = (x) => Math.round(x * 10_000) / 10_000
const ms = (ns) => r2(ns / 1e6)
const eldStats = (h) => ({ p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max) })
const encoder = new TextEncoder()
const decoder = new TextDecoder()

const peerScript = fileURLToPath(new URL('./sembatch-peer.js', import.meta.url))
const children = []
async function startSet (settings) {
  const child = spawn(process.execPath, [...process.execArgv, peerScript, '65536', JSON.stringify(settings)], { stdio: ['pipe', 'pipe', 'inherit'] })
  children.push(child)
  const { addr, echoPort } = await new Promise((resolve, reject) => {
    let buf = ''
    child.stdout.on('data', (d) => {
      buf += d
      if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]))
    })
    child.on('exit', (code) => reject(new Error(`a serving node exited (${code})`)))
  })
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...nodeStack(),
    services: { identify: identify(), sembatch: sembatch(settings.bulkLane === true ? { ...settings, bulkLane: laneInit } : settings) }
  })
  const conn = await node.dial(multiaddr(addr))
  const sb = node.services.sembatch
  const peer = conn.remotePeer
  const peerEld = async (op) => JSON.parse(decoder.decode(await sb.send(peer, 'eld', encoder.encode(op), { qos: 'realtime' })))
  const socket = connect(echoPort, '127.0.0.1')
  socket.setNoDelay(true)
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  // one 64-byte round trip on the plain socket (the echo may come back in pieces)
  const tcpEcho = async () => new Promise(resolve => {
    let got = 0
    const onData = (d) => {
      got += d.byteLength
      if (got >= 64) { socket.off('data', onData); resolve() }
    }
    socket.on('data', onData)
    socket.write(p64)
  })
  // warm-up
  await Promise.all(Array.from({ length: 256 }, async () => sb.send(peer, 'echo', new Uint8Array(16 * 1024), { qos: 'bulk' })))
  if (settings.bulkLane != null) {
    const end = Date.now() + 30_000
    while (sb.stats().laneLinks === 0 && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 20))
    if (sb.stats().laneLinks === 0) throw new Error('the bulk lane did not open')
  }
  for (let i = 0; i < 200; i++) await sb.send(peer, 'echo', new Uint8Array(64), { qos: 'realtime' })
  for (let i = 0; i < 200; i++) await tcpEcho()
  return { node, sb, peer, conn, peerEld, socket, tcpEcho }
}

const eld = monitorEventLoopDelay({ resolution: 1 })
eld.enable()
const p64 = new Uint8Array(64)
// this process's garbage collections, read per phase
let gcs = []
new PerformanceObserver((list) => { for (const e of list.getEntries()) gcs.push(e) }).observe({ entryTypes: ['gc'] })
const gcStats = (entries) => ({
  full: entries.filter(e => e.detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR).length,
  longestMs: r2(Math.max(0, ...entries.map(e => e.duration)))
})
/** --realtime round trips of `once`, one at a time with a turn of the event loop between; their times (ms) */
async function roundTrips (once) {
  const samples = []
  for (let i = 0; i < args.realtime; i++) {
    const t = performance.now()
    await once()
    samples.push(performance.now() - t)
    await new Promise(resolve => setImmediate(resolve))
  }
  return samples
}
/** p50, p90, p95 and p99 of round-trip times (ms) */
const spread = (xs) => Object.fromEntries([50, 90, 95, 99].map(q => [`p${q}`, r2(pct(xs, q))]))

async function realtimeRun (set, withBulk) {
  const { sb, peer, peerEld } = set
  const state = { stop: false }
  let bulkBytes = 0
  const bulkPayload = new Uint8Array(16 * 1024).fill(1)
  const bulkStart = performance.now()
  const bulk = withBulk
    ? Promise.all(Array.from({ length: args['bulk-window'] }, async () => {
      while (!state.stop) {
        await sb.send(peer, 'echo', bulkPayload, { qos: 'bulk' })
        bulkBytes += bulkPayload.byteLength
      }
    }))
    : Promise.resolve([])
  // let the bulk traffic fill the pipe first
  if (withBulk) await new Promise(resolve => setTimeout(resolve, 200))
  eld.reset()
  await peerEld('reset')
  gcs = []
  const samples = await roundTrips(async () => sb.send(peer, 'echo', p64, { qos: 'realtime' }))
  const eventLoopDelay = { client: eldStats(eld), server: await peerEld('read') }
  const gc = gcStats(gcs)
  const tcpSamples = await roundTrips(set.tcpEcho)
  state.stop = true
  const seconds = (performance.now() - bulkStart) / 1000
  await bulk
  return { samples, tcpSamples, gc, bulkMiBps: bulkBytes / seconds / 1048576, eventLoopDelay }
}

// the noise floor: nothing sent, this process and the serving ones just wait
const sets = {}
for (const [name, settings] of Object.entries(SETS)) sets[name] = await startSet(settings)
eld.reset()
await Promise.all(Object.values(sets).map(async s => s.peerEld('reset')))
await new Promise(resolve => setTimeout(resolve, args['idle-ms']))
const idleFloor = { client: eldStats(eld), servers: await Promise.all(Object.values(sets).map(async s => s.peerEld('read'))) }
say(`noise floor (idle ${args['idle-ms']} ms): event-loop delay p99 client ${idleFloor.client.p99Ms} ms (max ${idleFloor.client.maxMs}), servers ${idleFloor.servers.map(s => s.p99Ms).join(', ')} ms`)

// the floor of a busy process: this process works in 0.2 ms steps (a turn of the event loop
// each, no I/O) while a second process spins, as the serving node does under bulk; its
// event-loop delay is what the scheduler of the machine gives a process that uses its CPU
async function busyFloor () {
  const spinner = spawn(process.execPath, ['-e', 'const end = Date.now() + ' + args['idle-ms'] + '; while (Date.now() < end) {}'], { stdio: 'ignore' })
  eld.reset()
  const end = performance.now() + args['idle-ms']
  while (performance.now() < end) {
    const until = performance.now() + 0.2
    while (performance.now() < until) { /* a step of work */ }
    await new Promise(resolve => setImmediate(resolve))
  }
  const stats = eldStats(eld)
  await new Promise(resolve => { if (spinner.exitCode != null) resolve(); else spinner.on('exit', resolve) })
  return stats
}
const busy = await busyFloor()
say(`busy floor (0.2 ms steps beside a spinning process, ${args['idle-ms']} ms): event-loop delay p99 ${busy.p99Ms} ms (max ${busy.maxMs})`)

// bulk bytes over a bare libp2p stream to the serving node's echo (no sembatch), the plain
// socket's round trips meanwhile
const RAW = '/aistack/bench-raw/1.0.0'
async function rawBulkRun (set) {
  const stream = await set.conn.newStream(RAW)
  const payload = new Uint8Array(16 * 1024).fill(1)
  let sent = 0
  let echoed = 0
  let wake
  stream.addEventListener('message', (evt) => {
    echoed += evt.data.byteLength
    if (wake != null) { const w = wake; wake = undefined; w() }
  })
  const state = { stop: false }
  const bulk = (async () => {
    while (!state.stop) {
      if (sent - echoed >= args['raw-window']) {
        await new Promise(resolve => { wake = resolve })
        continue
      }
      sent += payload.byteLength
      if (!stream.send(payload)) await stream.onDrain()
    }
  })()
  await new Promise(resolve => setTimeout(resolve, 200))
  gcs = []
  const started = performance.now()
  const from = echoed
  const tcpSamples = await roundTrips(set.tcpEcho)
  const seconds = (performance.now() - started) / 1000
  const gc = gcStats(gcs)
  state.stop = true
  if (wake != null) wake()
  await bulk
  stream.abort(new Error('bulk phase over'))
  return { tcpSamples, gc, bulkMiBps: (echoed - from) / seconds / 1048576 }
}

const out = {}
const raw = { tcp: [], mibps: [], gcFull: 0, gcLongest: 0 }
for (const name of Object.keys(SETS)) out[name] = { alone: [], bulk: [], tcp: [], tcpAlone: [], gcFull: 0, gcLongest: 0, mibps: [], eldClient: [], eldServer: [] }
for (let round = 0; round < args.rounds; round++) {
  for (const [name, set] of Object.entries(sets)) {
    const alone = await realtimeRun(set, false)
    out[name].alone.push(...alone.samples)
    out[name].tcpAlone.push(...alone.tcpSamples)
    const bulk = await realtimeRun(set, true)
    out[name].bulk.push(...bulk.samples)
    out[name].tcp.push(...bulk.tcpSamples)
    out[name].gcFull += bulk.gc.full
    out[name].gcLongest = Math.max(out[name].gcLongest, bulk.gc.longestMs)
    out[name].mibps.push(bulk.bulkMiBps)
    out[name].eldClient.push(bulk.eventLoopDelay.client.p99Ms)
    out[name].eldServer.push(bulk.eventLoopDelay.server.p99Ms)
  }
  const r = await rawBulkRun(sets.after)
  raw.tcp.push(...r.tcpSamples)
  raw.mibps.push(r.bulkMiBps)
  raw.gcFull += r.gc.full
  raw.gcLongest = Math.max(raw.gcLongest, r.gc.longestMs)
}
const result = { idleFloor, busyFloor: busy, sets: {} }
for (const [name, o] of Object.entries(out)) {
  result.sets[name] = {
    settings: SETS[name],
    realtimeAloneP50Ms: r4(pct(o.alone, 50)),
    realtimeAloneP99Ms: r4(pct(o.alone, 99)),
    realtimeP50Ms: r4(pct(o.bulk, 50)),
    realtimeP99Ms: r4(pct(o.bulk, 99)),
    realtimeUnderBulkMs: spread(o.bulk),
    plainTcpAloneP99Ms: r4(pct(o.tcpAlone, 99)),
    plainTcpUnderBulkMs: spread(o.tcp),
    clientGcUnderBulk: { full: o.gcFull, longestMs: o.gcLongest },
    bulkMiBps: r2(pct(o.mibps, 50)),
    eventLoopDelayP99Ms: { client: pct(o.eldClient, 50), server: pct(o.eldServer, 50) }
  }
  const r = result.sets[name]
  say(`${name.padEnd(6)}: realtime alone p50 ${r.realtimeAloneP50Ms} p99 ${r.realtimeAloneP99Ms} ms; under bulk p50 ${r.realtimeP50Ms} p99 ${r.realtimeP99Ms} ms, bulk ${r.bulkMiBps} MiB/s, event-loop delay p99 client ${r.eventLoopDelayP99Ms.client} server ${r.eventLoopDelayP99Ms.server} ms`)
  const q = (x) => `p50 ${x.p50} p90 ${x.p90} p95 ${x.p95} p99 ${x.p99}`
  say(`        under bulk, sembatch realtime: ${q(r.realtimeUnderBulkMs)} ms; a plain TCP socket between the same processes: ${q(r.plainTcpUnderBulkMs)} ms (alone p99 ${r.plainTcpAloneP99Ms}); client GC during bulk: ${r.clientGcUnderBulk.full} full, longest pause ${r.clientGcUnderBulk.longestMs} ms`)
}
result.rawStreamBulk = {
  bulkMiBps: r2(pct(raw.mibps, 50)),
  plainTcpUnderBulkMs: spread(raw.tcp),
  clientGcUnderBulk: { full: raw.gcFull, longestMs: raw.gcLongest }
}
{
  const r = result.rawStreamBulk
  const x = r.plainTcpUnderBulkMs
  say(`no sembatch: bulk on a bare libp2p stream ${r.bulkMiBps} MiB/s; the plain TCP socket meanwhile p50 ${x.p50} p90 ${x.p90} p95 ${x.p95} p99 ${x.p99} ms; client GC: ${r.clientGcUnderBulk.full} full, longest pause ${r.clientGcUnderBulk.longestMs} ms`)
}
result.p99Ratio = r2(result.sets.after.realtimeP99Ms / result.sets.before.realtimeP99Ms)
result.laneP99Ratio = r2(result.sets.lane.realtimeP99Ms / result.sets.after.realtimeP99Ms)
result.machine = { cpus: cpus().length, runtime, load: { ...load, after: loadavg().map(x => Math.round(x * 100) / 100) } }
result.args = args
say(`realtime p99 under bulk: after/before x${result.p99Ratio}, lane/after x${result.laneP99Ratio}; machine ${cpus().length} cpus, load ${load.before.join(' ')} -> ${result.machine.load.after.join(' ')}`)
if (asJson) console.log(JSON.stringify(result))
for (const s of Object.values(sets)) {
  s.socket.destroy()
  await s.node.stop()
}
for (const c of children) c.stdin.end()
