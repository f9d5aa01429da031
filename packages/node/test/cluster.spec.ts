import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createAgentNode } from '../src/index.js'
import { removeTempDirs, tempDir, waitFor } from './helpers.js'
import type { AgentNode } from '../src/index.js'

const loopback = { listen: ['/ip4/127.0.0.1/tcp/0'] }

describe('nodes in one process', function () {
  this.timeout(120_000)
  let nodes: AgentNode[] = []

  afterEach(async () => {
    await Promise.all(nodes.map(async n => n.stop().catch(() => {})))
    nodes = []
    await removeTempDirs()
  })

  it('five nodes fill every routing table and a gossipsub message reaches all', async () => {
    const first = await createAgentNode({ config: loopback, metricsRegistry: false })
    await first.start()
    nodes.push(first)
    const bootstrap = first.id().multiaddrs
    for (let i = 1; i < 5; i++) {
      const node = await createAgentNode({ config: { ...loopback, bootstrap }, metricsRegistry: false })
      await node.start()
      nodes.push(node)
    }
    const ids = nodes.map(n => n.peerId.toString())
    await waitFor(() => nodes.every(n => ids.every(id => id === n.peerId.toString() || n.routingTable().includes(id))),
      { timeoutMs: 60_000, what: 'full routing tables' })
    for (const node of nodes) assert.equal(node.routingTable().length, 4)

    const topic = 'aistack/1/test'
    const received = nodes.slice(1).map(n => new Promise<string>(resolve => {
      n.libp2p.services.pubsub.addEventListener('message', evt => {
        if (evt.detail.topic === topic) resolve(new TextDecoder().decode(evt.detail.data))
      })
    }))
    for (const node of nodes) node.libp2p.services.pubsub.subscribe(topic)
    // publish once every other node is known to the sender as a subscriber of the topic
    await waitFor(() => first.libp2p.services.pubsub.getSubscribers(topic).length === 4, { timeoutMs: 30_000, what: 'topic subscribers' })
    await first.libp2p.services.pubsub.publish(topic, new TextEncoder().encode('hello agents'))
    assert.deepEqual(await Promise.all(received), ['hello agents', 'hello agents', 'hello agents', 'hello agents'])
  })

  it('two aistack nodes connect with the hybrid handshake', async () => {
    const a = await createAgentNode({ config: loopback, metricsRegistry: false })
    const b = await createAgentNode({ config: loopback, metricsRegistry: false })
    nodes.push(a, b)
    await a.start()
    await b.start()
    await a.dial(b.id().multiaddrs[0])
    const [peer] = await a.peers()
    assert.equal(peer.encryption, 'noise-mlkem768-hfs')
    assert.equal(peer.pq, true)
    const [back] = await b.peers()
    assert.equal(back.encryption, 'noise-mlkem768-hfs')
    assert.equal(back.pq, true)
  })

  it('with pq required neither listens on nor dials QUIC', async () => {
    const node = await createAgentNode({
      config: { listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/udp/0/quic-v1'], pq: 'required' },
      metricsRegistry: false
    })
    nodes.push(node)
    await node.start()
    const addrs = node.id().multiaddrs
    assert.ok(addrs.length > 0)
    assert.ok(addrs.every(a => !a.includes('/quic')), addrs.join(' '))
    const other = await createAgentNode({ config: { listen: ['/ip4/127.0.0.1/udp/0/quic-v1'] }, metricsRegistry: false })
    nodes.push(other)
    await other.start()
    await assert.rejects(node.dial(other.id().multiaddrs[0]))
  })

  it('connects over QUIC and reports its encryption as quic-tls', async () => {
    const quicOnly = { listen: ['/ip4/127.0.0.1/udp/0/quic-v1'] }
    const a = await createAgentNode({ config: quicOnly, metricsRegistry: false })
    const b = await createAgentNode({ config: quicOnly, metricsRegistry: false })
    nodes.push(a, b)
    await a.start()
    await b.start()
    await a.dial(b.id().multiaddrs[0])
    const [peer] = await a.peers()
    assert.equal(peer.peerId, b.peerId.toString())
    assert.equal(peer.transport, 'quic')
    assert.equal(peer.encryption, 'quic-tls')
  })

  it('a restarted node keeps its identity and its peer store', async () => {
    const home = await tempDir()
    const privateKey = await generateKeyPair('Ed25519')
    const a = await createAgentNode({ config: loopback, privateKey, home, metricsRegistry: false })
    await a.start()
    nodes.push(a)
    const b = await createAgentNode({ config: loopback, metricsRegistry: false })
    await b.start()
    nodes.push(b)
    await a.dial(b.id().multiaddrs[0])
    await waitFor(async () => a.libp2p.peerStore.has(b.peerId), { what: 'peer in the peer store' })
    const peerIdBefore = a.peerId.toString()
    await a.stop()
    nodes = nodes.filter(n => n !== a)

    const again = await createAgentNode({ config: loopback, privateKey, home, metricsRegistry: false })
    await again.start()
    nodes.push(again)
    assert.equal(again.peerId.toString(), peerIdBefore)
    assert.ok(await again.libp2p.peerStore.has(b.peerId), 'the peer store kept the other peer')
    const stored = await again.libp2p.peerStore.get(b.peerId)
    assert.ok(stored.addresses.length > 0, 'the peer store kept its addresses')
  })
})
