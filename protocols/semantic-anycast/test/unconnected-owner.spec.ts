import assert from 'node:assert/strict'
import { HashEmbedder } from '@aistack/embeddings'
import { multiaddr } from '@multiformats/multiaddr'
import { createNode, waitFor } from './helpers.js'
import type { TestNode } from './helpers.js'

describe('an owner this node holds a record of but no address for', function () {
  this.timeout(60_000)
  const embedder = new HashEmbedder()
  let asker: TestNode
  let middle: TestNode
  let owner: TestNode

  before(async () => {
    asker = await createNode(embedder, { gossip: false })
    middle = await createNode(embedder, { gossip: false })
    owner = await createNode(embedder, { gossip: false })
    owner.provider.add({ name: 'weather', description: 'Weather forecast for a city', tags: [], examples: [] }, async () => 'sunny')
    await owner.dial(multiaddr(middle.addr))
    await asker.dial(multiaddr(middle.addr))
    await waitFor(() => middle.services.dht.routingTable.size >= 2, 20_000, 'the middle node routing to both')
    // the asker learns the record from the owner, then forgets how to reach it (as when a record
    // arrives by gossip or anti-entropy from a neighbour)
    await asker.dial(multiaddr(owner.addr))
    assert.equal((await asker.services.anycast.fetchRecords(owner.peerId)).length, 1)
    await asker.hangUp(owner.peerId)
    await waitFor(() => asker.getConnections(owner.peerId).length === 0, 20_000, 'the hang-up')
    await asker.peerStore.delete(owner.peerId)
    await asker.services.dht.routingTable.remove(owner.peerId)
  })

  after(async () => {
    await Promise.all([asker?.stop(), middle?.stop(), owner?.stop()])
  })

  it('is found through the DHT before the dial, and the ask is answered by it', async () => {
    const res = await asker.services.anycast.ask('weather forecast', 'Paris', { timeoutMs: 20_000 })
    assert.equal(res.peerId, owner.peerId.toString())
    assert.equal(res.attempts, 1, JSON.stringify(res.failures))
    assert.equal(res.output, 'sunny')
  })
})
