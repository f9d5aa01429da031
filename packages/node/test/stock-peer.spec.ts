import assert from 'node:assert/strict'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { api, removeTempDirs, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'
import type { Identify } from '@libp2p/identify'
import type { Libp2p } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'

/** A node built only from public packages, with libp2p's default protocol names. */
async function stockNode (): Promise<Libp2p<{ identify: Identify, ping: Ping }>> {
  return createLibp2p({
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() }
  })
}

describe('a stock js-libp2p node', function () {
  this.timeout(60_000)
  let node: NodeProcess | undefined

  afterEach(async () => {
    await node?.stop()
    node = undefined
    await removeTempDirs()
  })

  it('connects to an aistack node process and pings it', async () => {
    node = await startNodeProcess(await tempDir())
    const stock = await stockNode()
    try {
      const rtt = await stock.services.ping.ping(multiaddr(node.run.multiaddrs[0]))
      assert.ok(rtt >= 0)
      const run = node.run
      const peers = await waitFor(async () => {
        const { json } = await api(run, 'GET', '/v1/peers')
        return json.peers.find((p: any) => p.peerId === stock.peerId.toString())
      }, { what: 'the stock peer in /v1/peers' })
      assert.equal(peers.transport, 'tcp')
      assert.equal(peers.encryption, 'noise')
      assert.equal(peers.pq, false)
    } finally {
      await stock.stop()
    }
  })

  it('keeps answering a stock peer that pings once a second over one connection', async () => {
    node = await startNodeProcess(await tempDir())
    const stock = await stockNode()
    try {
      const target = multiaddr(node.run.multiaddrs[0])
      const rtts: number[] = []
      for (let i = 0; i < 8; i++) {
        if (i > 0) await new Promise(resolve => setTimeout(resolve, 1000))
        rtts.push(await stock.services.ping.ping(target, { signal: AbortSignal.timeout(20_000) }))
      }
      assert.equal(rtts.length, 8)
      assert.ok(rtts.every(rtt => rtt >= 0))
      // all over the one connection the first ping opened
      assert.equal(stock.getConnections().length, 1)
    } finally {
      await stock.stop()
    }
  })

  it('is refused by a node started with --pq required', async () => {
    node = await startNodeProcess(await tempDir(), ['--pq', 'required'])
    const stock = await stockNode()
    try {
      await assert.rejects(stock.services.ping.ping(multiaddr(node.run.multiaddrs[0]), { signal: AbortSignal.timeout(10_000) }))
      const { json } = await api(node.run, 'GET', '/v1/peers')
      assert.equal(json.peers.length, 0)
      // the node keeps serving
      assert.equal((await api(node.run, 'GET', '/healthz', { token: null })).status, 200)
    } finally {
      await stock.stop()
    }
  })
})
