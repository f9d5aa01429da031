import assert from 'node:assert/strict'
import { HashEmbedder } from '@aistack/embeddings'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { DEFAULT_SCORE_WEIGHTS, ObservedLoads, score, scoreInputs, signCapabilityRecord } from '../src/index.js'
import { createNode } from './helpers.js'
import type { TestNode } from './helpers.js'
import type { LoadSource, SourcedLoad } from '../src/index.js'

const embedder = new HashEmbedder()

function sourced (load: number, patch: Partial<SourcedLoad> = {}): SourcedLoad {
  return { up: true, lastSeenMs: 100, load, p95Ms: 0, errorRate: 0, capabilities: { summarize: { load, p95Ms: 0 } }, ...patch }
}

describe('anycast score with a load source', () => {
  it('takes load, p95 and error rate from the source when its record is fresher than the last answer', () => {
    const now = 1_000_000
    const source: LoadSource = { loadOf: () => sourced(0.75, { errorRate: 0.5, p95Ms: 900, capabilities: { summarize: { load: 0.75, p95Ms: 200 } } }) }
    // the last anycast answer came before the record (record arrived 100 ms ago)
    const fromSource = scoreInputs('p', 'summarize', { inflight: 0, capacity: 4, at: now - 5_000 }, 30, source, now)
    assert.deepEqual(fromSource, { load: 0.75, latencyMs: 200, errorRate: 0.5, loadFrom: 'telemetry' })
    // an answer after the record wins
    const fromAnswer = scoreInputs('p', 'summarize', { inflight: 1, capacity: 4, at: now - 10 }, 30, source, now)
    assert.deepEqual(fromAnswer, { load: 0.25, latencyMs: 30, errorRate: 0, loadFrom: 'anycast' })
    // a node the source holds as down is not read
    const down = scoreInputs('p', 'summarize', undefined, undefined, { loadOf: () => sourced(1, { up: false }) }, now)
    assert.deepEqual(down, { load: 0, errorRate: 0, loadFrom: 'none' })
    // a capability the record does not list: the node's figures
    const other = scoreInputs('p', 'translate', undefined, undefined, source, now)
    assert.deepEqual(other, { load: 0.75, latencyMs: 900, errorRate: 0.5, loadFrom: 'telemetry' })
    const s = score(0.9, fromSource, DEFAULT_SCORE_WEIGHTS)
    assert.ok(Math.abs(s - (0.9 - 0.1 * 0.75 - 0.05 * 0.2 - 0.1 * 0.5)) < 1e-9, `score ${s}`)
  })

  it('ObservedLoads stamps each answer with its time', () => {
    const loads = new ObservedLoads()
    const before = Date.now()
    loads.set('p/summarize', { inflight: 1, capacity: 2 })
    const got = loads.get('p/summarize')
    assert.ok(got != null && got.at >= before && got.at <= Date.now())
    assert.equal(got?.inflight, 1)
  })

  describe('in the service', () => {
    let node: TestNode
    let idle: string
    let loaded: string
    const loads = new Map<string, SourcedLoad>()

    before(async () => {
      node = await createNode(embedder, { gossip: false, loadSource: { loadOf: (peer) => loads.get(peer) } })
      await node.start()
      const [vector] = await embedder.embed(['Summarize long documents'])
      for (const which of ['idle', 'loaded']) {
        const key = await generateKeyPair('Ed25519')
        const owner = peerIdFromPrivateKey(key).toString()
        if (which === 'idle') idle = owner
        else loaded = owner
        const bytes = await signCapabilityRecord(key, { name: 'summarize', description: 'Summarize long documents' }, {
          network: 'aistack', owner, model: embedder.id, vector, seq: 1n, expiresAt: Date.now() + 60_000
        })
        await node.services.anycast.accept(bytes)
      }
      loads.set(idle, sourced(0))
      loads.set(loaded, sourced(1))
    })

    after(async () => {
      await node?.stop()
    })

    it('ranks a loaded peer below an idle one of equal similarity', async () => {
      const candidates = await node.services.anycast.find('Summarize long documents', { k: 2, source: 'cache' })
      assert.equal(candidates.length, 2)
      assert.equal(candidates[0].similarity, candidates[1].similarity)
      assert.deepEqual(candidates.map(c => c.peerId), [idle, loaded])
      assert.deepEqual(candidates.map(c => c.load), [0, 1])
      assert.deepEqual(candidates.map(c => c.loadFrom), ['telemetry', 'telemetry'])
      assert.ok(candidates[0].score > candidates[1].score)
      // and the other way round when the load moves
      loads.set(idle, sourced(1))
      loads.set(loaded, sourced(0))
      const again = await node.services.anycast.find('Summarize long documents', { k: 2, source: 'cache' })
      assert.deepEqual(again.map(c => c.peerId), [loaded, idle])
    })
  })
})
