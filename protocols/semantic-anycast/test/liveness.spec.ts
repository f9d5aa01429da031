import assert from 'node:assert/strict'
import { HashEmbedder } from '@aistack/embeddings'
import { multiaddr } from '@multiformats/multiaddr'
import { OwnerLiveness } from '../src/liveness.js'
import { createNode, waitFor } from './helpers.js'
import type { TestNode } from './helpers.js'

describe('owner liveness: closed connections', () => {
  it('a connection closed with an error marks the owner failing at once, a failed request demotes it; a clean close or another open connection says nothing', () => {
    const l = new OwnerLiveness({ backoffMs: 1000 })
    const t = 1_000_000
    l.succeeded('p', t)
    assert.equal(l.connectionClosed('p', undefined, false, t), false)
    assert.equal(l.state('p', t), 'live')
    assert.equal(l.connectionClosed('p', new Error('reset'), true, t), false, 'another connection is still open')
    assert.equal(l.state('p', t), 'live')
    assert.equal(l.connectionClosed('p', new Error('reset'), false, t), true)
    assert.equal(l.state('p', t), 'failing')
    assert.ok(!l.backingOff('p', t), 'no back-off: the next request decides')
    assert.ok(!l.demoted('p'), 'failing, not demoted: alternatives are still measured against it')
    assert.deepEqual(l.expired(t + 30_000), [], 'a closed connection alone never evicts')
    l.failed('p', t + 1000)
    assert.ok(l.demoted('p'), 'a failed request demotes')
    assert.deepEqual(l.expired(t + 30_000), ['p'], 'with a failed request, it leaves the results unless it answers again')
    l.succeeded('p', t + 2000)
    assert.equal(l.state('p', t + 2000), 'live', 'a back-off, not a ban')
    assert.ok(!l.demoted('p'))
  })

  describe('on two nodes', function () {
    this.timeout(60_000)
    const embedder = new HashEmbedder()
    let a: TestNode
    let b: TestNode

    before(async () => {
      // the probe that would restore the owner is far off here (see the test below)
      a = await createNode(embedder, { gossip: false, liveness: { probeAfterMs: 600_000 } })
      b = await createNode(embedder, { gossip: false })
      b.provider.add({ name: 'weather', description: 'Weather forecast for a city', tags: ['weather'], examples: [] }, async () => 'sunny')
      await b.services.anycast.whenPublished()
    })

    after(async () => {
      await Promise.all([a?.stop(), b?.stop()])
    })

    it('the owner of a cached record whose connection closes with an error is demoted; a clean close leaves it live', async () => {
      const owner = b.peerId.toString()
      await a.dial(multiaddr(b.addr))
      const records = await a.services.anycast.fetchRecords(b.peerId)
      assert.equal(records.length, 1)
      assert.equal(a.services.anycast.liveness.state(owner), 'live')

      await a.hangUp(b.peerId)
      await waitFor(() => a.getConnections(b.peerId).length === 0, 20_000, 'the clean close')
      assert.equal(a.services.anycast.liveness.state(owner), 'live', 'a clean close says nothing of the owner')

      const conn = await a.dial(multiaddr(b.addr))
      conn.abort(new Error('transport failure'))
      await waitFor(() => a.services.anycast.liveness.state(owner) === 'failing', 20_000, 'the owner demoted')
      const [top] = await a.services.anycast.find('weather forecast', { source: 'cache' })
      assert.equal(top?.liveness, 'failing', 'results show the demotion')
    })

    it('an owner only seen to close a connection with an error keeps its asks; one a request failed on hands them to the next', async () => {
      const c = await createNode(embedder, { gossip: false })
      try {
        c.provider.add({ name: 'translate', description: 'Translate a weather report into French', tags: [], examples: [] }, async () => 'bonjour')
        await c.services.anycast.whenPublished()
        const owner = b.peerId.toString()
        await a.dial(multiaddr(b.addr))
        await a.dial(multiaddr(c.addr))
        await a.services.anycast.fetchRecords(b.peerId)
        await a.services.anycast.fetchRecords(c.peerId)
        const ask = async (): Promise<string> => {
          const res = await a.services.anycast.ask('weather forecast', 'Paris', { minSimilarity: 0, minRelativeSimilarity: 0.8, timeoutMs: 20_000 })
          return res.capability
        }
        assert.equal(await ask(), 'weather')
        a.services.anycast.liveness.connectionClosed(owner, new Error('missed keep-alive'))
        assert.equal(a.services.anycast.liveness.state(owner), 'failing')
        assert.equal(await ask(), 'weather', 'a missed keep-alive does not send the ask to an unrelated capability')
        assert.equal(a.services.anycast.liveness.state(owner), 'live', 'the answer restores it')
        a.services.anycast.liveness.failed(owner)
        assert.equal(await ask(), 'translate', 'after a failed request the best live alternative answers')
      } finally {
        await c.stop()
      }
    })

    it('an owner demoted by a failed connection is asked again and restored when it answers', async () => {
      const c = await createNode(embedder, { gossip: false, liveness: { probeAfterMs: 0 } })
      try {
        const owner = b.peerId.toString()
        await c.dial(multiaddr(b.addr))
        await c.services.anycast.fetchRecords(b.peerId)
        let demoted = 0
        const liveness = c.services.anycast.liveness
        const closed = liveness.connectionClosed.bind(liveness)
        liveness.connectionClosed = (...args) => {
          const out = closed(...args)
          if (out) demoted++
          return out
        }
        c.getConnections(b.peerId)[0].abort(new Error('transport failure'))
        await waitFor(() => demoted === 1 && liveness.state(owner) === 'live', 20_000, 'the owner demoted, then restored by its answer')
      } finally {
        await c.stop()
      }
    })
  })
})
