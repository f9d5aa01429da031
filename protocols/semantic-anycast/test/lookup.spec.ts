import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { KeyProviders, PeerFetches, dhtLookup, emptyExplain } from '../src/lookup.js'
import type { DhtLookupInit } from '../src/lookup.js'
import type { CapabilityRecord } from '../src/record.js'
import type { PeerId, PeerInfo } from '@libp2p/interface'

const raw = 0x55

async function key (n: number): Promise<CID> {
  return CID.createV1(raw, await sha256.digest(new TextEncoder().encode(`bucket-${n}`)))
}

async function peer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

/** A DHT whose keys answer with given providers at once, or never (until aborted) */
function fakeDht (answers: Map<string, PeerInfo[] | 'never'>, calls: Map<string, number>, self: PeerId, from: PeerId): DhtLookupInit['dht'] {
  return {
    async * findProviders (key: CID, options?: { signal?: AbortSignal }) {
      const id = key.toString()
      calls.set(id, (calls.get(id) ?? 0) + 1)
      const answer = answers.get(id) ?? []
      yield { name: 'SEND_QUERY', to: from }
      if (answer === 'never') {
        await new Promise<void>((resolve, reject) => {
          options?.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }, { once: true })
        })
        return
      }
      // an answer from a peer: it may name providers, then the query stops
      await Promise.resolve()
      if (answer.length > 0) yield { name: 'PROVIDER', from, providers: answer }
      for (let i = 0; i < 3; i++) yield { name: 'PEER_RESPONSE', from: i === 0 ? from : self, providers: answer, closer: [] }
      yield { name: 'PEER_RESPONSE', from, providers: [], closer: [] }
      yield { name: 'PEER_RESPONSE', from, providers: [], closer: [] }
    }
  }
}

describe('DHT lookup', () => {
  let self: PeerId
  let other: PeerId
  let owner: PeerId

  before(async () => {
    self = await peer()
    other = await peer()
    owner = await peer()
  })

  const init = (dht: DhtLookupInit['dht'], extra: Partial<DhtLookupInit> = {}): DhtLookupInit => ({
    self,
    dht,
    log: Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false, newScope: () => { throw new Error('unused') } }) as any,
    fetch: async (p: PeerInfo) => [{ owner: p.id.toString(), name: 'cap' } as unknown as CapabilityRecord],
    concurrency: 4,
    responsesPerKey: 3,
    providerAnswersPerKey: 1,
    providersTimeoutMs: 60_000,
    fetchTimeoutMs: 60_000,
    ...extra
  })

  it('past the soft budget, neighbouring buckets that do not answer are given up; the own buckets are kept', async () => {
    const keys = await Promise.all([0, 1, 2, 3].map(key))
    const answers = new Map<string, PeerInfo[] | 'never'>([
      [keys[0].toString(), [{ id: owner, multiaddrs: [] }]],
      [keys[1].toString(), []],
      [keys[2].toString(), 'never'],
      [keys[3].toString(), 'never']
    ])
    const explain = emptyExplain()
    // without the soft budget this lookup would wait for the 60 s hard budget
    const { records } = await dhtLookup(init(fakeDht(answers, new Map(), self, other), { softMs: 50, primaryKeys: 2 }), keys, explain)
    assert.deepEqual(records.map(r => r.owner), [owner.toString()], 'the records found before the budget ran out are kept')
    assert.equal(explain.keysAbandoned, 2)
    assert.deepEqual(explain.providers, [owner.toString()])
  })

  it('the soft budget cuts nothing while the records found do not answer the query well enough', async () => {
    const keys = await Promise.all([4, 5, 6].map(key))
    const answers = new Map<string, PeerInfo[] | 'never'>([
      [keys[0].toString(), [{ id: owner, multiaddrs: [] }]],
      [keys[2].toString(), 'never']
    ])
    const explain = emptyExplain()
    const { records } = await dhtLookup(init(fakeDht(answers, new Map(), self, other), { softMs: 20, primaryKeys: 1, providersTimeoutMs: 300, enough: () => false }), keys, explain)
    assert.deepEqual(records.map(r => r.owner), [owner.toString()])
    assert.equal(explain.keysAbandoned, 0, 'the silent key ran until the hard budget')
  })

  it('lookups at once share the query of a key, and a key asked lately is answered without a message', async () => {
    const keys = await Promise.all([10, 11, 12].map(key))
    const answers = new Map<string, PeerInfo[] | 'never'>([[keys[0].toString(), [{ id: owner, multiaddrs: [] }]]])
    const calls = new Map<string, number>()
    const keyCache = new KeyProviders({ ttlMs: 60_000 })
    const dht = fakeDht(answers, calls, self, other)
    const explains = [emptyExplain(), emptyExplain(), emptyExplain()]
    const results = await Promise.all(explains.slice(0, 2).map(async e => dhtLookup(init(dht, { keyCache }), keys, e)))
    for (const r of results) assert.deepEqual(r.records.map(x => x.owner), [owner.toString()])
    assert.deepEqual([...calls.values()], [1, 1, 1], 'each key asked once')
    assert.equal(explains[0].keysShared + explains[1].keysShared, 3)
    const later = await dhtLookup(init(dht, { keyCache }), keys, explains[2])
    assert.deepEqual(later.records.map(x => x.owner), [owner.toString()])
    assert.equal(explains[2].keysShared, 1, 'the key naming a provider is answered from the cache')
    assert.deepEqual([...calls.values()], [1, 2, 2], 'empty answers are asked again')
  })

  it('the provider cache is bounded, forgets after its time, and keeps no answer that was cut short', async () => {
    const c = new KeyProviders({ ttlMs: 1000, maxKeys: 2 })
    const p: PeerInfo = { id: owner, multiaddrs: [] }
    await c.run('a', async () => [p])
    await c.run('b', async () => [p])
    await c.run('c', async () => undefined)
    assert.equal(c.fresh('c'), undefined, 'a cut query is not kept')
    await c.run('e', async () => [])
    assert.equal(c.fresh('e'), undefined, 'an empty answer is not kept')
    await c.run('d', async () => [p])
    assert.equal(c.size, 2)
    assert.equal(c.fresh('a'), undefined, 'the oldest went first')
    assert.deepEqual(c.fresh('b'), [p])
    assert.equal(c.fresh('d', Date.now() + 2000), undefined, 'expired')
  })

  it('a provider asked lately is asked only for the buckets it was not asked for; fetches at once are shared', async () => {
    const f = new PeerFetches({ ttlMs: 60_000 })
    const keys = await Promise.all([20, 21, 22].map(key))
    const asked: string[][] = []
    const fetch = async (ks: CID[]): Promise<CapabilityRecord[]> => {
      asked.push(ks.map(k => k.toString()))
      return ks.map(k => ({ owner: 'p', name: `cap-${k.toString().slice(-6)}` } as unknown as CapabilityRecord))
    }
    const [a, b] = await Promise.all([f.get('p', keys.slice(0, 2), fetch), f.get('p', keys.slice(0, 2), fetch)])
    assert.equal(asked.length, 1, 'one fetch for both')
    assert.equal(a.length, 2)
    assert.deepEqual(a, b)
    const c = await f.get('p', keys, fetch)
    assert.deepEqual(asked[1], [keys[2].toString()], 'only the bucket not asked before')
    assert.equal(c.length, 3)
    await f.get('p', keys, fetch, Date.now() + 120_000)
    assert.equal(asked.length, 3, 'asked again once the entry expired')
    await assert.rejects(f.get('q', keys, async () => { throw new Error('refused') }), /refused/)
    await f.get('q', keys, fetch)
    assert.equal(asked.length, 4, 'a failed fetch is not remembered')
  })
})
