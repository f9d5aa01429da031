import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { DEFAULT_CONNECTION_LIMITS } from '../src/gater.js'
import { cpuSeconds, idleCpuShare } from './flood-probe.js'
import { api, removeTempDirs, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'
import type { Libp2p } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import type { Socket } from 'node:net'

const FLOOD_SOURCE = '127.0.0.20'
const RAW_SOURCE = '127.0.0.21'
const PEER_SOURCE = '127.0.0.22'
const FLOOD_PEERS = 60
const RAW_SOCKETS = 300
/**
 * Limits of the connection flood's cost (docs/security.md): RSS growth while it lasts (MiB),
 * /healthz p99 during and after it (ms), the share of a core the node uses once it has gone
 */
const MAX_RSS_GROWTH_MIB = 128
const MAX_HEALTHZ_DURING_MS = 5000
const MAX_HEALTHZ_AFTER_MS = 500
const MAX_IDLE_CPU_AFTER = 0.15

async function stockNode (localAddress?: string): Promise<Libp2p<{ ping: Ping }>> {
  return createLibp2p({
    transports: [tcp({ dialOpts: localAddress != null ? { localAddress } as any : undefined })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false },
    services: { ping: ping({ maxOutboundStreams: 8 }) }
  })
}

/** resident set size of a process in MiB (Linux /proc) */
async function rssMiB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN)
  return Math.round(kb / 1024)
}

/** `n` sequential GET /healthz; returns the median and the maximum latency in ms */
async function healthzLatency (node: NodeProcess, n = 10): Promise<{ p50: number, max: number }> {
  const times: number[] = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    const { status } = await api(node.run, 'GET', '/healthz', { token: null })
    times.push(performance.now() - t0)
    assert.equal(status, 200)
  }
  times.sort((a, b) => a - b)
  return { p50: Math.round(times[Math.floor(n / 2)]), max: Math.round(times[n - 1]) }
}

async function inboundFrom (node: NodeProcess, ip: string): Promise<number> {
  const { json } = await api(node.run, 'GET', '/v1/peers')
  return json.peers.filter((p: any) => p.direction === 'inbound' && p.multiaddr.startsWith(`/ip4/${ip}/`)).length
}

describe('connection limits of an aistack node process', function () {
  this.timeout(300_000)
  let node: NodeProcess | undefined
  const peers: Array<Libp2p<any>> = []
  const sockets: Socket[] = []

  after(async () => {
    sockets.forEach(s => s.destroy())
    await Promise.all(peers.map(async p => p.stop()))
    await node?.stop()
    await removeTempDirs()
  })

  it('keeps one address to its share while others connect; one peer to its share of connections', async () => {
    const home = await tempDir()
    // the per-second limit would slow the flood down on its own: lift it, to test the others
    await writeFile(join(home, 'config.json'), JSON.stringify({ connections: { inboundRatePerAddress: 10_000 } }))
    node = await startNodeProcess(home)
    const target = multiaddr(node.run.multiaddrs[0])
    const pid = node.child.pid as number
    const port = Number(/\/tcp\/(\d+)/.exec(node.run.multiaddrs[0])?.[1])
    const rssBefore = await rssMiB(pid)
    const before = await healthzLatency(node)
    const cpu0 = await cpuSeconds(pid)
    const t0 = performance.now()

    // 300 raw sockets from one address, held idle
    for (let i = 0; i < RAW_SOCKETS; i++) {
      const s = connect({ host: '127.0.0.1', port, localAddress: RAW_SOURCE })
      s.on('error', () => {})
      sockets.push(s)
    }
    // 60 stock peers from one address, each with an idle, fully upgraded connection
    const flood = await Promise.all(Array.from({ length: FLOOD_PEERS }, async () => stockNode(FLOOD_SOURCE)))
    peers.push(...flood)
    // in threes, under the limit of connections being upgraded per address, to reach the one of open ones
    let accepted = 0
    for (let i = 0; i < flood.length; i += 3) {
      const results = await Promise.allSettled(flood.slice(i, i + 3).map(async p => p.dial(target, { signal: AbortSignal.timeout(30_000) })))
      accepted += results.filter(r => r.status === 'fulfilled' && r.value.status === 'open').length
    }

    const during = await healthzLatency(node)
    const rssDuring = await rssMiB(pid)
    const cpuDuring = await cpuSeconds(pid) - cpu0
    const floodS = (performance.now() - t0) / 1000
    // every address but the flooding ones still gets in, several times over
    for (let i = 0; i < 3; i++) {
      const good = await stockNode()
      peers.push(good)
      assert.ok(await good.services.ping.ping(target, { signal: AbortSignal.timeout(30_000) }) >= 0)
    }
    const fromFlood = await inboundFrom(node, FLOOD_SOURCE)
    assert.ok(accepted <= DEFAULT_CONNECTION_LIMITS.maxInboundPerAddress, `${accepted} connections from one address were accepted`)
    assert.ok(fromFlood <= DEFAULT_CONNECTION_LIMITS.maxInboundPerAddress)
    assert.ok(fromFlood >= DEFAULT_CONNECTION_LIMITS.maxInboundPerAddress / 2, `only ${fromFlood} connections from the flooding address`)
    assert.equal(await inboundFrom(node, RAW_SOURCE), 0)

    // one peer, many connections (a forced dial opens a new one each time)
    const greedy = await stockNode(PEER_SOURCE)
    peers.push(greedy)
    for (let i = 0; i < 8; i++) {
      await greedy.dial(target, { force: true, signal: AbortSignal.timeout(30_000) }).catch(() => {})
    }
    await waitFor(async () => await inboundFrom(node as NodeProcess, PEER_SOURCE) > 0, { what: 'the greedy peer in /v1/peers' })
    assert.ok(await inboundFrom(node, PEER_SOURCE) <= DEFAULT_CONNECTION_LIMITS.maxPerPeer)

    // the flood leaves
    sockets.forEach(s => s.destroy())
    await Promise.all(flood.map(async p => p.stop()))
    await waitFor(async () => await inboundFrom(node as NodeProcess, FLOOD_SOURCE) === 0, { what: 'the flood to be gone' })
    const cpuIdleAfter = await idleCpuShare(node, 3000)
    const afterwards = await healthzLatency(node)
    const rssAfter = await rssMiB(pid)
    assert.equal(node.child.exitCode, null)
    console.log(`  connection flood: ${RAW_SOCKETS} raw sockets + ${FLOOD_PEERS} peers from one address: ${accepted} accepted, ${fromFlood} listed; ` +
      `RSS ${rssBefore} -> ${rssDuring} -> ${rssAfter} MiB; healthz p50/max ms before ${before.p50}/${before.max}, ` +
      `during ${during.p50}/${during.max}, after ${afterwards.p50}/${afterwards.max}; ${cpuDuring.toFixed(1)} CPU-s in ${floodS.toFixed(1)} s of flood, ` +
      `${(cpuIdleAfter * 100).toFixed(1)} % of a core after it left`)
    assert.ok(rssDuring - rssBefore < MAX_RSS_GROWTH_MIB, `RSS grew by ${rssDuring - rssBefore} MiB`)
    assert.ok(during.max < MAX_HEALTHZ_DURING_MS, `/healthz took ${during.max} ms during the flood`)
    assert.ok(afterwards.max < MAX_HEALTHZ_AFTER_MS, `/healthz took ${afterwards.max} ms after the flood`)
    assert.ok(cpuIdleAfter < MAX_IDLE_CPU_AFTER, `${(cpuIdleAfter * 100).toFixed(1)} % of a core after the flood`)
  })
})
