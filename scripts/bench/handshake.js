#!/usr/bin/env node
// Connection setup and throughput of the hybrid handshake against /noise.
//
//   npm run bench:handshake [-- --connections 200 --mib 256 --rounds 5]
//
// Setup: dial to first stream ready over TCP loopback, interleaved across
// /noise, hybrid with node:crypto ML-KEM and hybrid with noble ML-KEM.
// Throughput: one stream carrying --mib MiB, /noise against the hybrid.
import { loadavg } from 'node:os'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { pqNoise, PQ_NOISE_PROTOCOL } from '../../protocols/handshake/dist/src/index.js'
import { benchArgs } from './args.js'

const USAGE = `Usage: npm run bench:handshake -- [--connections 200] [--warmup 20] [--mib 256] [--rounds 5] [--json]
--connections: connections set up per encrypter and round; --warmup: connections before measuring;
--mib: MiB carried on one stream per encrypter and round; --rounds: rounds, the encrypters taking turns;
--json: print one JSON object.`
// --json may come without a value (then it is taken out before the flags are read)
const bare = process.argv.findIndex((a, i) => a === '--json' && (process.argv[i + 1] == null || process.argv[i + 1].startsWith('--')))
if (bare !== -1) process.argv.splice(bare, 1)
const json = bare !== -1
const values = benchArgs(USAGE, { connections: 200, warmup: 20, mib: 256, rounds: 5, json: 'false' })
const CONNECTIONS = values.connections
const WARMUP = values.warmup
const MIB = values.mib
const ROUNDS = values.rounds

const loadBefore = loadavg()[0]

const PING = '/bench/first-stream/1.0.0'
const SINK = '/bench/sink/1.0.0'

async function node (encrypter) {
  const n = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    streamMuxers: [yamux()],
    connectionEncrypters: [encrypter],
    connectionManager: { maxConnections: 1000, inboundConnectionThreshold: 1e9, maxIncomingPendingConnections: 1000 }
  })
  await n.handle(PING, async (stream) => {
    await stream.close()
  })
  await n.handle(SINK, async (stream) => {
    let total = 0
    for await (const buf of stream) total += buf.byteLength
    const ack = new Uint8Array(8)
    new DataView(ack.buffer).setBigUint64(0, BigInt(total))
    stream.send(ack)
    await stream.close()
  }, { maxInboundStreams: 4 })
  return n
}

const kinds = {
  noise: { label: '/noise', make: () => noise(), expect: '/noise' },
  'pq-node': { label: 'hybrid, node:crypto ML-KEM', make: () => pqNoise({ kem: 'node' }), expect: PQ_NOISE_PROTOCOL },
  'pq-noble': { label: 'hybrid, noble ML-KEM', make: () => pqNoise({ kem: 'noble' }), expect: PQ_NOISE_PROTOCOL }
}

const pairs = {}
for (const [name, k] of Object.entries(kinds)) {
  const server = await node(k.make())
  const client = await node(k.make())
  pairs[name] = { server, client, addr: server.getMultiaddrs()[0], expect: k.expect }
}

async function setupOnce (name) {
  const { client, addr, expect } = pairs[name]
  const t0 = performance.now()
  const conn = await client.dial(addr)
  const stream = await conn.newStream(PING)
  const t = performance.now() - t0
  if (conn.encryption !== expect) throw new Error(`${name} negotiated ${conn.encryption}`)
  await stream.close()
  await conn.close()
  return t
}

function stats (xs) {
  const s = [...xs].sort((a, b) => a - b)
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))]
  return { n: s.length, median: q(0.5), p95: q(0.95), mean: s.reduce((a, b) => a + b, 0) / s.length }
}

function shuffle (xs) {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]]
  }
  return xs
}

// connection setup, interleaved in random order per round
const samples = Object.fromEntries(Object.keys(kinds).map(k => [k, []]))
for (let i = 0; i < WARMUP + CONNECTIONS; i++) {
  for (const name of shuffle(Object.keys(kinds))) {
    const t = await setupOnce(name)
    if (i >= WARMUP) samples[name].push(t)
  }
}
const setup = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)]))

async function throughputOnce (name, mib = MIB) {
  const { client, addr, expect } = pairs[name]
  const conn = await client.dial(addr)
  if (conn.encryption !== expect) throw new Error(`${name} negotiated ${conn.encryption}`)
  const stream = await conn.newStream(SINK)
  const chunk = new Uint8Array(64 * 1024).fill(7)
  const total = mib * 1024 * 1024
  const ack = new Promise((resolve, reject) => {
    const parts = []
    stream.addEventListener('message', (evt) => {
      parts.push(evt.data.subarray())
      const b = Buffer.concat(parts)
      if (b.byteLength >= 8) resolve(Number(b.readBigUInt64BE(0)))
    })
    stream.addEventListener('close', (evt) => { if (evt.error != null) reject(evt.error) })
  })
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  for (let sent = 0; sent < total; sent += chunk.byteLength) {
    if (!stream.send(chunk)) await stream.onDrain()
  }
  await stream.close()
  const received = await ack
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  const cpuSeconds = (cpu.user + cpu.system) / 1e6
  if (received !== total) throw new Error(`${name}: sink got ${received} of ${total} bytes`)
  await conn.close()
  return { wall: mib / seconds, cpu: mib / cpuSeconds }
}

const tput = { noise: [], 'pq-node': [] }
const tputCpu = { noise: [], 'pq-node': [] }
// warm both paths up (JIT, buffers) before measuring
for (const name of Object.keys(tput)) await throughputOnce(name, Math.min(64, MIB))
for (let r = 0; r < ROUNDS; r++) {
  for (const name of (r % 2 === 0 ? ['noise', 'pq-node'] : ['pq-node', 'noise'])) {
    const t = await throughputOnce(name)
    tput[name].push(t.wall)
    tputCpu[name].push(t.cpu)
  }
}
const throughput = Object.fromEntries(Object.entries(tput).map(([k, v]) => [k, stats(v).median]))
// MiB per CPU-second of this process (client and server): less sensitive to other load
const throughputCpu = Object.fromEntries(Object.entries(tputCpu).map(([k, v]) => [k, stats(v).median]))

for (const { server, client } of Object.values(pairs)) {
  await client.stop()
  await server.stop()
}

const setupRatio = setup['pq-node'].median / setup.noise.median
const setupRatioP95 = setup['pq-node'].p95 / setup.noise.p95
const nobleRatio = setup['pq-noble'].median / setup.noise.median
const tputRatio = throughput['pq-node'] / throughput.noise
const tputCpuRatio = throughputCpu['pq-node'] / throughputCpu.noise
const loadAfter = loadavg()[0]
const result = {
  node: process.version,
  loadAverage: { before: loadBefore, after: loadAfter },
  openssl: process.versions.openssl,
  connections: CONNECTIONS,
  mib: MIB,
  rounds: ROUNDS,
  setup,
  throughputMiBs: throughput,
  throughputMiBPerCpuSecond: throughputCpu,
  ratios: { setupMedian: setupRatio, setupP95: setupRatioP95, nobleSetupMedian: nobleRatio, throughput: tputRatio, throughputPerCpu: tputCpuRatio },
  pass: { setup: setupRatio <= 1.25, throughput: tputRatio >= 0.9 }
}

if (json || values.json === 'true') {
  process.stdout.write(JSON.stringify(result) + '\n')
} else {
  const f = (x) => x.toFixed(2)
  console.log(`Node ${process.version}, OpenSSL ${process.versions.openssl}; ${CONNECTIONS} connections each (after ${WARMUP} warm-up), interleaved; TCP loopback`)
  console.log('')
  console.log('connection setup (dial to first stream ready), ms')
  console.log('  encrypter                       median     p95    mean')
  for (const [k, s] of Object.entries(setup)) {
    console.log(`  ${kinds[k].label.padEnd(30)} ${f(s.median).padStart(7)} ${f(s.p95).padStart(7)} ${f(s.mean).padStart(7)}`)
  }
  console.log('')
  console.log(`single-stream throughput, ${MIB} MiB, median of ${ROUNDS} interleaved runs`)
  console.log('  encrypter                         MiB/s  MiB/CPU-s')
  console.log(`  /noise                          ${f(throughput.noise).padStart(7)}  ${f(throughputCpu.noise).padStart(9)}`)
  console.log(`  hybrid (node:crypto)            ${f(throughput['pq-node']).padStart(7)}  ${f(throughputCpu['pq-node']).padStart(9)}`)
  console.log('')
  console.log(`ratio setup hybrid(node)/noise: median ${f(setupRatio)}x, p95 ${f(setupRatioP95)}x  (bar <= 1.25x: ${result.pass.setup ? 'PASS' : 'FAIL'})`)
  console.log(`ratio setup hybrid(noble)/noise: median ${f(nobleRatio)}x`)
  console.log(`ratio throughput hybrid/noise: ${f(tputRatio)}x  (bar >= 0.90x: ${result.pass.throughput ? 'PASS' : 'FAIL'}); per CPU-second ${f(tputCpuRatio)}x`)
  // other load on the machine moves the wall-clock figures much more than the CPU-second ones
  console.log(`1-minute load average ${f(loadBefore)} before, ${f(loadAfter)} after`)
}
