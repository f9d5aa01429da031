import assert from 'node:assert/strict'
import { HashEmbedder } from '@aistack/embeddings'
import { pbStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { verifyCapabilityRecord } from '../src/index.js'
import { Request, Response } from '../src/pb/anycast.js'
import { createNode, waitFor } from './helpers.js'
import type { TestNode } from './helpers.js'

const embedder = new HashEmbedder()

async function getRecords (from: TestNode, to: TestNode, held: boolean): Promise<string[]> {
  const stream = await from.dialProtocol(to.getMultiaddrs(), to.services.anycast.protocol)
  const pb = pbStream(stream)
  await pb.write({ kind: Request.Kind.GET_RECORDS, id: new Uint8Array(16), deadlineMs: 5000, capability: '', input: new Uint8Array(0), model: embedder.id, keys: [], held }, Request as any)
  const res = await pb.read<Response>(Response as any, { signal: AbortSignal.timeout(10_000) })
  assert.equal(res.status, Response.Status.OK)
  const names: string[] = []
  for (const bytes of res.records) {
    const r = await verifyCapabilityRecord(bytes, { network: 'aistack', model: embedder.id, dim: embedder.dim })
    names.push(`${r.owner === to.peerId.toString() ? 'own' : 'held'}:${r.name}`)
  }
  return names.sort()
}

describe('semantic anycast anti-entropy', function () {
  this.timeout(120_000)
  const nodes: TestNode[] = []

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
  })

  it('GET_RECORDS with held returns the records of other owners too; a late node learns them from its one neighbour', async () => {
    const hub = await createNode(embedder)
    const owner = await createNode(embedder)
    nodes.push(hub, owner)
    await hub.start()
    await owner.start()
    hub.provider.add({ name: 'hub-cap', description: 'Count the words of a text' }, async () => 1)
    owner.provider.add({ name: 'owner-cap', description: 'Translate English text into French' }, async () => 2)
    await owner.dial(multiaddr(hub.addr))
    await waitFor(() => hub.services.anycast.cache.get(owner.peerId.toString(), 'owner-cap') != null, 20_000, 'the hub to hold the owner\'s record')

    const late = await createNode(embedder, { gossip: false })
    nodes.push(late)
    await late.start()
    await late.dial(multiaddr(hub.addr))
    assert.deepEqual(await getRecords(late, hub, false), ['own:hub-cap'])
    assert.deepEqual(await getRecords(late, hub, true), ['held:owner-cap', 'own:hub-cap'])

    // with gossip, the late node's subscription makes it take what its neighbour holds
    const joiner = await createNode(embedder)
    nodes.push(joiner)
    await joiner.start()
    await joiner.dial(multiaddr(hub.addr))
    await waitFor(() => joiner.services.anycast.cache.get(owner.peerId.toString(), 'owner-cap') != null, 20_000, 'the joiner to hold the owner\'s record')
  })

  it('a node that holds the network as its neighbour saw it answers a search that matches nothing from the cache at once, and refreshes it in the background', async () => {
    const joiner = nodes[nodes.length - 1]
    const anycast = joiner.services.anycast
    await waitFor(() => (anycast as any).announcer.neighbourViewAt() != null, 20_000, 'a whole anti-entropy answer')
    // a DHT whose provider queries never answer: the lookup would wait its whole provider budget (10 s)
    const hanging = {
      async * findProviders (_key: unknown, options: { signal?: AbortSignal } = {}): AsyncGenerator<any> {
        await new Promise<void>(resolve => { options.signal?.addEventListener('abort', () => { resolve() }, { once: true }) })
      },
      async provide (): Promise<void> {},
      async cancelReprovide (): Promise<void> {}
    }
    ;(anycast as any).finder.dht = hanging
    const started = Date.now()
    const { candidates, stats } = await anycast.findWithStats('Compile Fortran sources into WebAssembly modules')
    const ms = Date.now() - started
    assert.ok(stats.explain.reason.includes('the cache holds the network as a neighbour saw it'), stats.explain.reason)
    assert.equal(stats.explain.refreshing, true)
    assert.equal(stats.source, 'cache', 'no DHT wait')
    assert.ok(ms < 8000, `answered after ${ms} ms`)
    assert.ok(candidates.every(c => c.similarity < 0.35), 'nothing matched well')
  })
})
