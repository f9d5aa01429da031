import assert from 'node:assert/strict'
import { createAgentNode } from '../src/index.js'
import type { AgentNode } from '../src/index.js'

const loopback = { listen: ['/ip4/127.0.0.1/tcp/0'], logLevel: 'warn' as const }
const json = (x: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(x))
const parse = (b: Uint8Array): any => JSON.parse(new TextDecoder().decode(b))

describe('batch-aware capabilities over sembatch (in process)', function () {
  this.timeout(120_000)
  let a: AgentNode
  let b: AgentNode

  before(async () => {
    a = await createAgentNode({ config: loopback, metricsRegistry: false })
    b = await createAgentNode({
      config: { ...loopback, capabilities: [{ name: 'embed-text', description: 'Embed texts into vectors', handler: { type: 'builtin', name: 'embed', concurrency: 2 } }] },
      metricsRegistry: false
    })
    await a.start()
    await b.start()
    await a.dial(b.libp2p.getMultiaddrs()[0].toString())
  })

  after(async () => {
    await a?.stop()
    await b?.stop()
  })

  it('node.serve(name, fn, {batch: true}) gets requests that arrive together as one call, answers in order, fails per input', async () => {
    const calls: number[] = []
    b.serve('double', { description: 'Double numbers', batch: true, concurrency: 2 }, async (inputs: unknown[]) => {
      calls.push(inputs.length)
      return inputs.map(n => typeof n === 'number' ? n * 2 : new Error('not a number'))
    })
    const inputs: unknown[] = Array.from({ length: 300 }, (_, i) => i)
    inputs[5] = 'five'
    const results = await Promise.allSettled(inputs.map(async i => parse(await a.sembatch.send(b.peerId, 'double', json(i)))))
    results.forEach((r, i) => {
      if (i === 5) assert.equal(r.status, 'rejected')
      else assert.deepEqual(r, { status: 'fulfilled', value: i * 2 })
    })
    assert.ok(Math.max(...calls) > 1, `batch sizes ${calls.join(',')}`)
    assert.equal(calls.reduce((s, n) => s + n, 0), 300)
    // called directly, one input is a batch of one
    assert.equal(await b.capabilities.invoke('double', 21), 42)
  })

  it('the builtin embed answers a batch with one embedder call, as it answers each text alone', async () => {
    assert.equal(b.capabilities.takesBatches('embed-text'), true)
    const texts = Array.from({ length: 100 }, (_, i) => `text number ${i}`)
    const batched = await Promise.all(texts.map(async t => parse(await a.sembatch.send(b.peerId, 'embed-text', json(t)))))
    const alone = await b.capabilities.invoke('embed-text', texts[17]) as any
    assert.deepEqual(batched[17], alone)
    assert.equal(batched.length, 100)
    assert.equal(batched[0].vectors[0].length, b.embedder.dim)
  })
})
