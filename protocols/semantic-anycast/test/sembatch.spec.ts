import assert from 'node:assert/strict'
import { HashEmbedder } from '@aistack/embeddings'
import { sembatch } from '@aistack/sembatch'
import { multiaddr } from '@multiformats/multiaddr'
import { createNode, waitFor } from './helpers.js'
import type { TestNode } from './helpers.js'
import type { SembatchService } from '@aistack/sembatch'

const embedder = new HashEmbedder()
const CSV = { name: 'csv-to-json', description: 'Convert CSV tables into JSON', tags: ['csv', 'json'], attributes: { maxConcurrency: 16 } }
const WEATHER = { name: 'weather', description: 'Weather forecast for a city: temperature, rain and wind', tags: ['weather', 'forecast'] }

type SbNode = TestNode & { services: { sembatch: SembatchService } }

describe('semantic anycast over sembatch', function () {
  this.timeout(120_000)
  const nodes: TestNode[] = []
  let asker: SbNode
  let batcher: SbNode
  let plain: TestNode

  before(async () => {
    asker = await createNode(embedder, {}, { sembatch: sembatch() }) as SbNode
    batcher = await createNode(embedder, {}, { sembatch: sembatch() }) as SbNode
    // a node of today's protocol only
    plain = await createNode(embedder)
    nodes.push(asker, batcher, plain)
    batcher.provider.add(CSV, async (input: any) => ({ rows: input.csv.split('\n').length }), 16)
    plain.provider.add(WEATHER, async (input: any) => `sunny in ${String(input.city)}`)
    await asker.dial(multiaddr(batcher.addr))
    await asker.dial(multiaddr(plain.addr))
    await batcher.dial(multiaddr(plain.addr))
    const sembatchId = asker.services.sembatch.protocol
    // identify tells each peer store what the other speaks
    await waitFor(async () => (await asker.peerStore.get(batcher.peerId)).protocols.includes(sembatchId), 30_000, 'identify of the sembatch node')
    await waitFor(async () => (await asker.peerStore.get(plain.peerId)).protocols.includes(asker.services.anycast.protocol), 30_000, 'identify of the plain node')
    await waitFor(async () => {
      const names = (await asker.services.anycast.find('convert csv tables to json', { source: 'cache' })).map(c => c.name)
      const weather = (await asker.services.anycast.find('weather forecast for a city', { source: 'cache' })).map(c => c.name)
      return names[0] === 'csv-to-json' && weather[0] === 'weather'
    }, 30_000, 'records')
  })

  after(async () => {
    await Promise.all(nodes.splice(0).map(async n => n.stop()))
  })

  it('an ask to a peer that speaks sembatch travels as a sembatch message, and is answered', async () => {
    const before = asker.services.anycast.transportStats()
    const sent = asker.services.sembatch.stats().messagesSent
    const res = await asker.services.anycast.ask('convert csv tables to json', { csv: 'a,b\n1,2\n3,4' })
    assert.deepEqual(res.output, { rows: 3 })
    assert.equal(res.peerId, batcher.peerId.toString())
    const after = asker.services.anycast.transportStats()
    assert.equal(after.sembatch, before.sembatch + 1)
    assert.equal(after.stream, before.stream)
    assert.equal(asker.services.sembatch.stats().messagesSent, sent + 1)
  })

  it('a peer without sembatch is asked on a stream of its own', async () => {
    const before = asker.services.anycast.transportStats()
    const sent = asker.services.sembatch.stats().messagesSent
    const res = await asker.services.anycast.ask('weather forecast for a city', { city: 'Oslo' })
    assert.equal(res.output, 'sunny in Oslo')
    assert.equal(res.peerId, plain.peerId.toString())
    const after = asker.services.anycast.transportStats()
    assert.equal(after.stream, before.stream + 1)
    assert.equal(after.sembatch, before.sembatch)
    assert.equal(asker.services.sembatch.stats().messagesSent, sent)
  })

  it('a peer listed as speaking sembatch that refuses it is answered on a stream, and not tried over sembatch again', async () => {
    // the peer store says so (e.g. identify of an earlier run), the peer itself does not
    await asker.peerStore.merge(plain.peerId, { protocols: [asker.services.sembatch.protocol] })
    const before = asker.services.anycast.transportStats()
    const first = await asker.services.anycast.ask('weather forecast for a city', { city: 'Bergen' })
    assert.equal(first.output, 'sunny in Bergen')
    const second = await asker.services.anycast.ask('weather forecast for a city', { city: 'Tromsø' })
    assert.equal(second.output, 'sunny in Tromsø')
    const after = asker.services.anycast.transportStats()
    assert.equal(after.fallbacks, before.fallbacks + 1)
    assert.equal(after.stream, before.stream + 2)
    assert.equal(after.sembatch, before.sembatch)
  })

  it('askMany sends every input to the best match over sembatch, outputs in input order with failures per input', async () => {
    const inputs: unknown[] = Array.from({ length: 200 }, (_, i) => ({ csv: Array.from({ length: (i % 7) + 1 }, () => 'x').join('\n') }))
    inputs[13] = { nope: true }
    const before = asker.services.anycast.transportStats()
    const res = await asker.services.anycast.askMany('convert csv tables to json', inputs, { maxAttempts: 1 })
    assert.equal(res.capability, 'csv-to-json')
    assert.equal(res.outputs.length, 200)
    res.outputs.forEach((o, i) => {
      if (i === 13) {
        assert.ok('error' in o, 'input 13 fails alone')
        assert.equal(o.error.code, 'RemoteError')
      } else {
        assert.deepEqual(o, { output: { rows: (i % 7) + 1 }, peerId: batcher.peerId.toString(), capability: 'csv-to-json' })
      }
    })
    const after = asker.services.anycast.transportStats()
    assert.equal(after.sembatch, before.sembatch + 200)
    assert.equal(after.stream, before.stream)
  })

  it('askMany to a peer without sembatch still answers every input', async () => {
    const res = await asker.services.anycast.askMany('weather forecast for a city', ['a', 'b', 'c'].map(city => ({ city })))
    assert.deepEqual(res.outputs.map(o => 'output' in o ? o.output : o.error.message), ['sunny in a', 'sunny in b', 'sunny in c'])
  })
})
