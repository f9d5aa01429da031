import assert from 'node:assert/strict'
import { HashEmbedder } from '@aistack/embeddings'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { LookupLimiter, OwnerLiveness, RateLimiter, RecordCache, recordCost, signCapabilityRecord, verifyCapabilityRecord } from '../src/index.js'
import type { CapabilityRecord } from '../src/index.js'
import type { PrivateKey } from '@libp2p/interface'

const embedder = new HashEmbedder()
const network = 'aistack'
const opts = { network, model: embedder.id, dim: embedder.dim }

async function record (key: PrivateKey, name: string, seq: bigint, tombstone = false, description = 'Summarize long documents'): Promise<CapabilityRecord> {
  const [vector] = await embedder.embed([description])
  const owner = peerIdFromPrivateKey(key).toString()
  return verifyCapabilityRecord(await signCapabilityRecord(key, { name, description }, {
    network, owner, model: embedder.id, vector, seq, expiresAt: Date.now() + 60_000, tombstone
  }), opts)
}

describe('record cache bounds', () => {
  let key: PrivateKey

  before(async () => {
    key = await generateKeyPair('Ed25519')
  })

  it('stores a tombstone only when it removes or replaces something, within the per-owner cap', async () => {
    const cache = new RecordCache({ maxRecordsPerOwner: 4 })
    // tombstones for records never seen block nothing: not stored
    for (let i = 0; i < 50; i++) assert.equal(cache.put(await record(key, `t${i}`, 10n, true)), 'stale')
    assert.equal(cache.tombstoneCount, 0)
    assert.equal(cache.put(await record(key, 'a', 1n)), 'added')
    assert.equal(cache.put(await record(key, 'a', 2n, true)), 'removed')
    assert.equal(cache.tombstoneCount, 1)
    assert.equal(cache.put(await record(key, 'a', 1n)), 'stale', 'the tombstone blocks the older record')
    // a newer tombstone replaces the held one without growing the count
    assert.equal(cache.put(await record(key, 'a', 3n, true)), 'stale')
    assert.equal(cache.tombstoneCount, 1)
    // the per-owner cap applies to tombstones: the record is still removed
    for (const n of ['b', 'c', 'd', 'e', 'f']) {
      cache.put(await record(key, n, 1n))
      cache.put(await record(key, n, 2n, true))
    }
    assert.equal(cache.size, 0)
    assert.equal(cache.tombstoneCount, 4)
  })

  it('bounds the estimated bytes of the records held', async () => {
    const one = recordCost(await record(key, 'x0', 1n))
    const cache = new RecordCache({ maxBytes: one * 3 + 10, maxRecordsPerOwner: 100 })
    const results = []
    for (let i = 0; i < 5; i++) results.push(cache.put(await record(key, `x${i}`, 1n)))
    assert.deepEqual(results, ['added', 'added', 'added', 'full', 'full'])
    assert.ok(cache.bytes <= one * 3 + 10)
    assert.equal(cache.deleteOwner(peerIdFromPrivateKey(key).toString()), 3)
    assert.equal(cache.bytes, 0)
  })

  it('confirms a record when the held version arrives again', async () => {
    const cache = new RecordCache()
    const r = await record(key, 'c', 5n)
    cache.put(r, Date.now() - 10_000)
    const owner = peerIdFromPrivateKey(key).toString()
    const first = cache.confirmedAt(owner, 'c') ?? 0
    assert.equal(cache.put(r), 'stale')
    assert.ok((cache.confirmedAt(owner, 'c') ?? 0) > first)
  })
})

describe('owner liveness', () => {
  it('demotes on failure with growing back-off, evicts after the limit, restores on success', () => {
    const l = new OwnerLiveness({ evictAfterMs: 30_000, backoffMs: 1000, maxBackoffMs: 8000 })
    const t = 1_000_000
    assert.equal(l.state('p', t), 'unknown')
    l.succeeded('p', t)
    assert.equal(l.state('p', t), 'live')
    l.failed('p', t)
    assert.equal(l.state('p', t), 'failing')
    assert.ok(l.backingOff('p', t + 999))
    assert.ok(!l.backingOff('p', t + 1000), 'a back-off, not a ban')
    l.failed('p', t + 1000)
    assert.ok(l.backingOff('p', t + 2999))
    assert.deepEqual(l.expired(t + 29_999), [])
    assert.deepEqual(l.expired(t + 30_000), ['p'])
    l.succeeded('p', t + 31_000)
    assert.equal(l.state('p', t + 31_000), 'live')
    assert.deepEqual(l.expired(t + 100_000), [])
  })
})

describe('lookup limiter', () => {
  it('runs `concurrency` at once, queues up to `maxQueued`, refuses the rest', async () => {
    const limiter = new LookupLimiter({ concurrency: 2, maxQueued: 3 })
    let running = 0
    let peak = 0
    const gates: Array<() => void> = []
    const task = async (): Promise<number> => {
      running++
      peak = Math.max(peak, running)
      await new Promise<void>(resolve => { gates.push(resolve) })
      running--
      return 1
    }
    const runs = Array.from({ length: 5 }, async () => limiter.run(task))
    await assert.rejects(limiter.run(task), { name: 'LookupQueueFullError' })
    assert.deepEqual(limiter.load, { running: 2, queued: 3 })
    const state = { done: false }
    const all = Promise.all(runs).finally(() => { state.done = true })
    for (let i = 0; i < 1000; i++) {
      if (state.done) break
      gates.splice(0).forEach(g => { g() })
      await new Promise(resolve => setImmediate(resolve))
    }
    assert.deepEqual(await all, [1, 1, 1, 1, 1])
    assert.equal(peak, 2)
    assert.deepEqual(limiter.load, { running: 0, queued: 0 })
  })

  it('a waiter gives up after maxWaitMs', async () => {
    const limiter = new LookupLimiter({ concurrency: 1, maxQueued: 4, maxWaitMs: 50 })
    let release = (): void => {}
    const first = limiter.run(async () => { await new Promise<void>(resolve => { release = resolve }) })
    await assert.rejects(limiter.run(async () => 2), { name: 'LookupQueueFullError' })
    assert.equal(limiter.load.queued, 0)
    release()
    await first
  })

  it('a waiter that is aborted leaves the queue', async () => {
    const limiter = new LookupLimiter({ concurrency: 1, maxQueued: 1 })
    let release = (): void => {}
    const first = limiter.run(async () => { await new Promise<void>(resolve => { release = resolve }) })
    const ac = new AbortController()
    const second = limiter.run(async () => 2, ac.signal)
    ac.abort(new Error('gone'))
    await assert.rejects(second, /gone/)
    assert.equal(limiter.load.queued, 0)
    release()
    await first
  })
})

describe('rate limiter', () => {
  it('allows the burst, then the rate', () => {
    const r = new RateLimiter(2, 3)
    const t = 5000
    assert.deepEqual([1, 2, 3, 4].map(() => r.take('a', t)), [true, true, true, false])
    assert.equal(r.take('a', t + 499), false)
    assert.equal(r.take('a', t + 500), true)
    assert.equal(r.take('b', t), true, 'keys are separate')
  })
})
