import assert from 'node:assert/strict'
import { HashEmbedder } from '@aistack/embeddings'
import { multiaddr } from '@multiformats/multiaddr'
import { createNode, waitFor } from './helpers.js'
import type { TestNode } from './helpers.js'
import type { Embedder } from '@aistack/embeddings'

const base = new HashEmbedder()

/** A ranking model of its own id and dimension: the hash vector folded to `dim` values */
class FoldedEmbedder implements Embedder {
  readonly id: string
  readonly dim: number
  constructor (id: string, dim: number) {
    this.id = id
    this.dim = dim
  }

  async embed (texts: string[]): Promise<Float32Array[]> {
    return (await base.embed(texts)).map(v => {
      const out = new Float32Array(this.dim)
      for (let i = 0; i < v.length; i++) out[i % this.dim] += v[i]
      let n = 0
      for (const x of out) n += x * x
      n = Math.sqrt(n) || 1
      return out.map(x => x / n)
    })
  }
}

const CSV = { name: 'csv-to-json', description: 'Convert CSV tables into JSON', tags: ['csv', 'json'] }
const JSON2CSV = { name: 'json-to-csv', description: 'Convert JSON arrays into CSV tables', tags: ['csv', 'json'] }
const WEATHER = { name: 'weather', description: 'Weather forecast for a city: temperature, rain and wind', tags: ['weather', 'forecast'] }

describe('semantic anycast: timing, small networks and mixed models', function () {
  this.timeout(180_000)
  const nodes: TestNode[] = []

  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async n => n.stop()))
  })

  it('a lone node answers a search and a no-candidate ask at once, its own records counting for every source', async () => {
    const node = await createNode(base)
    nodes.push(node)
    node.provider.add(WEATHER, async () => 'sunny')
    await node.services.anycast.whenPublished()
    for (const source of ['auto', 'dht', 'cache'] as const) {
      const t0 = performance.now()
      const { candidates, stats } = await node.services.anycast.findWithStats('weather forecast for Oslo', { source })
      assert.ok(performance.now() - t0 < 1000, `${source}: ${performance.now() - t0} ms`)
      assert.equal(candidates[0]?.name, 'weather', source)
      assert.equal(candidates[0].source, 'own')
      if (source !== 'cache') assert.match(stats.explain.reason, /no peers/)
    }
    const t0 = performance.now()
    await assert.rejects(node.services.anycast.ask('quantum chromodynamics lattice simulation', null), { name: 'NoCandidatesError' })
    assert.ok(performance.now() - t0 < 1000)
  })

  it('records announced before any peer reach every node when they connect, without waiting for the republish', async () => {
    for (let i = 0; i < 3; i++) nodes.push(await createNode(base))
    nodes[0].provider.add(CSV, async () => 'a')
    nodes[1].provider.add(JSON2CSV, async () => 'b')
    nodes[2].provider.add(WEATHER, async () => 'c')
    await Promise.all(nodes.map(async n => n.services.anycast.whenPublished()))
    // a line: 0 - 1 - 2; node 0 and node 2 are not neighbours
    await nodes[1].dial(multiaddr(nodes[0].addr))
    await nodes[2].dial(multiaddr(nodes[1].addr))
    await waitFor(() => nodes.every(n => n.services.anycast.cache.size >= 3), 60_000, 'every record on every node')
    // the exact text of a description finds that record first
    const [first] = await nodes[2].services.anycast.find('Convert CSV tables into JSON', { k: 3 })
    assert.equal(first.name, 'csv-to-json')
    assert.equal(first.exact, true)
    // a change is gossiped at once
    nodes[0].provider.remove('csv-to-json')
    await waitFor(() => nodes[2].services.anycast.cache.get(nodes[0].peerId.toString(), 'csv-to-json') == null, 30_000, 'the withdrawal')
  })

  it('nodes with different embedders find each other through the base model and re-rank with their own', async () => {
    const a = await createNode(new FoldedEmbedder('test-model-a', 64), { baseEmbedder: base })
    const b = await createNode(new FoldedEmbedder('test-model-b', 96), { baseEmbedder: base })
    nodes.push(a, b)
    a.provider.add(WEATHER, async () => 'from a')
    b.provider.add(CSV, async () => 'from b')
    await b.dial(multiaddr(a.addr))
    await waitFor(() => a.services.anycast.cache.size >= 2 && b.services.anycast.cache.size >= 2, 60_000, 'records exchanged')
    // provider records go out once the node has a peer
    await waitFor(() => a.services.anycast.publishing().provided > 0 && b.services.anycast.publishing().provided > 0, 60_000, 'bucket keys provided')
    for (const source of ['cache', 'dht'] as const) {
      const fromA = await a.services.anycast.findWithStats('turn a CSV table into JSON', { source })
      assert.equal(fromA.candidates[0]?.peerId, b.peerId.toString(), source)
      assert.ok(fromA.stats.explain.reranked > 0)
      const fromB = await b.services.anycast.findWithStats('will it rain in Paris, weather forecast', { source })
      assert.equal(fromB.candidates[0]?.peerId, a.peerId.toString(), source)
    }
    const res = await a.services.anycast.ask('turn a CSV table into JSON', 'x')
    assert.equal(res.output, 'from b')
  })
})
