import assert from 'node:assert/strict'
import { HashEmbedder } from '@aistack/embeddings'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { pbStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { signCapabilityRecord } from '../src/index.js'
import { Request, Response } from '../src/pb/anycast.js'
import { connect, createNode, waitFor } from './helpers.js'
import type { TestNode } from './helpers.js'
import type { LocalCapability } from '../src/index.js'

const embedder = new HashEmbedder()
// the default LSH settings
const init = {}

const CAPS: LocalCapability[] = [
  { name: 'translate-fr', description: 'Translate English text into French', tags: ['translation', 'french', 'language'], examples: ['translate this sentence to French'] },
  { name: 'summarize', description: 'Summarize long documents and articles into a short summary', tags: ['summary', 'text'], examples: ['give me a summary of this article'] },
  { name: 'image-resize', description: 'Resize and crop images to a given width and height', tags: ['image', 'thumbnail'], examples: ['make a thumbnail of this picture'] },
  { name: 'weather', description: 'Weather forecast for a city: temperature, rain and wind', tags: ['weather', 'forecast'], examples: ['will it rain tomorrow in Paris'] },
  { name: 'sql', description: 'Write SQL queries for a database schema from a question', tags: ['sql', 'database', 'query'], examples: ['write a SQL query that counts orders per customer'] },
  { name: 'sentiment', description: 'Classify the sentiment of a review as positive, negative or neutral', tags: ['sentiment', 'classification', 'review'], examples: ['is this product review positive or negative'] },
  { name: 'transcribe', description: 'Transcribe speech audio recordings into text', tags: ['speech', 'audio', 'transcription'], examples: ['transcribe this audio recording'] },
  { name: 'currency', description: 'Convert amounts of money between currencies at current exchange rates', tags: ['currency', 'exchange', 'money'], examples: ['convert 100 dollars to euros'] },
  { name: 'code-review', description: 'Review source code for bugs and style problems', tags: ['code', 'review', 'programming'], examples: ['review my python code for bugs'] },
  { name: 'calendar', description: 'Schedule meetings and find free slots in a calendar', tags: ['calendar', 'meeting', 'schedule'], examples: ['schedule a meeting with Bob next week'] }
]

const QUERIES: Array<[string, string]> = [
  ['translate a paragraph from English to French', 'translate-fr'],
  ['summarise this long article', 'summarize'],
  ['crop and resize my photo', 'image-resize'],
  ['what is the temperature forecast for Berlin', 'weather'],
  ['generate a SQL query for my database', 'sql'],
  ['is this review negative', 'sentiment'],
  ['turn this audio recording into text', 'transcribe'],
  ['convert 50 dollars into euros at the exchange rate', 'currency'],
  ['find bugs in my code', 'code-review'],
  ['schedule a meeting on Tuesday', 'calendar']
]

describe('semantic anycast over ten nodes', function () {
  this.timeout(300_000)
  let nodes: TestNode[] = []
  const owner = new Map<string, string>()

  before(async () => {
    for (let i = 0; i < CAPS.length; i++) nodes.push(await createNode(embedder, init))
    await connect(nodes)
    // gossip reaches only peers known to be subscribed to the topic
    await waitFor(() => nodes.every(n => n.services.pubsub.getSubscribers('aistack/1/caps').length >= 2), 30_000, 'topic subscribers')
    // capabilities appear once the network has formed: the provider change announces them
    nodes.forEach((node, i) => {
      node.provider.add(CAPS[i], async (input) => ({ by: CAPS[i].name, input }))
      owner.set(CAPS[i].name, node.peerId.toString())
    })
    const published = await Promise.all(nodes.map(async n => n.services.anycast.whenPublished()))
    for (const p of published) {
      assert.equal(p.pending, 0)
      assert.ok(p.provided >= 1, `provided ${p.provided} keys, ${p.failed} failed`)
    }
    await waitFor(() => nodes.every(n => n.services.anycast.cache.size >= CAPS.length), 90_000, 'gossip to fill every cache')
  })

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    nodes = []
  })

  it('find ranks the right owner first, from the cache and from the DHT', async () => {
    const asker = nodes[3].services.anycast
    for (const [q, name] of QUERIES) {
      for (const source of ['auto', 'dht'] as const) {
        const { candidates, stats } = await asker.findWithStats(q, { k: 3, source })
        assert.ok(candidates.length > 0, `no candidates for "${q}" (${source})`)
        assert.equal(candidates[0].name, name, `"${q}" (${source}) ranked ${candidates.map(c => c.name).join(',')}`)
        assert.equal(candidates[0].peerId, owner.get(name))
        assert.ok(candidates[0].similarity > 0.2)
        assert.equal(typeof candidates[0].load, 'number')
        assert.ok(candidates[0].score <= candidates[0].similarity)
        if (source === 'dht') assert.ok(stats.keys > 0 && stats.providers > 0 && stats.source === 'dht')
        // the cache alone answers only with k fresh confident records of other nodes
        else assert.ok(stats.source === 'cache+dht' || stats.explain.refreshing || /no refresh/.test(stats.explain.reason), stats.explain.reason)
        const ownedByAsker = owner.get(name) === nodes[3].peerId.toString()
        if (source === 'dht') assert.equal(candidates[0].source, ownedByAsker ? 'own' : 'dht')
        assert.equal(candidates[0].liveness === 'failing', false)
      }
    }
  })

  it('ask is answered by the owner', async () => {
    for (const [q, name] of QUERIES.slice(0, 5)) {
      const res = await nodes[7].services.anycast.ask(q, { text: 'hello' }, { timeoutMs: 10_000 })
      assert.equal(res.capability, name)
      assert.equal(res.peerId, owner.get(name))
      assert.deepEqual(res.output, { by: name, input: { text: 'hello' } })
      assert.equal(res.attempts, 1)
      assert.ok(res.latencyMs > 0 && res.similarity > 0.2)
    }
  })

  it('a node can ask itself', async () => {
    const res = await nodes[0].services.anycast.ask(QUERIES[0][0], 'x')
    assert.equal(res.peerId, nodes[0].peerId.toString())
    assert.deepEqual(res.output, { by: 'translate-fr', input: 'x' })
  })

  it('no capable peer: NoCandidatesError', async () => {
    await assert.rejects(nodes[1].services.anycast.ask('quantum chromodynamics lattice simulation', null), { name: 'NoCandidatesError' })
  })

  it('a fresh node that joined after all gossip finds capabilities through the DHT alone', async () => {
    // without gossip, so without the anti-entropy fetch from its neighbour
    const fresh = await createNode(embedder, { ...init, gossip: false })
    nodes.push(fresh)
    await fresh.dial(multiaddr(nodes[5].addr))
    await waitFor(() => (fresh.services.dht.routingTable?.size ?? 0) >= 1, 10_000, 'fresh routing table')
    assert.equal(fresh.services.anycast.cache.size, 0)
    let first = true
    for (const [q, name] of QUERIES) {
      const { candidates, stats } = await fresh.services.anycast.findWithStats(q, { k: 3 })
      if (first) assert.equal(stats.source, 'cache+dht')
      first = false
      assert.equal(candidates[0]?.name, name, `fresh node: "${q}"`)
    }
    const res = await fresh.services.anycast.ask(QUERIES[3][0], { city: 'Oslo' })
    assert.equal(res.capability, 'weather')
  })

  it('asks every provider for its records in all probed buckets, not only in those it was named for', async () => {
    const fresh = await createNode(embedder, { ...init, gossip: false })
    nodes.push(fresh)
    await fresh.dial(multiaddr(nodes[3].addr))
    await waitFor(() => (fresh.services.dht.routingTable?.size ?? 0) >= 1, 10_000, 'fresh routing table')
    const svc = fresh.services.anycast
    const asked: number[] = []
    // the lookups' fetches go through the service's finder
    const finder = (svc as any).finder as { fetchRecords: typeof svc.fetchRecords }
    const fetchRecords = finder.fetchRecords.bind(finder)
    finder.fetchRecords = async (peer, keys, signal) => {
      asked.push(keys?.length ?? 0)
      return fetchRecords(peer, keys, signal)
    }
    const { candidates, stats } = await svc.findWithStats(QUERIES[1][0], { k: 3, source: 'dht' })
    assert.equal(candidates[0]?.name, QUERIES[1][1], JSON.stringify(stats.explain))
    assert.ok(asked.length > 0 && asked.length === stats.fetches)
    assert.ok(asked.every(n => n === stats.keys), `every request names all ${stats.keys} probed keys: ${asked.join(', ')}`)
  })

  it('rejects records with a bad signature or a foreign owner from gossip', async () => {
    const evil = nodes[9]
    const victim = nodes[1]
    const [vector] = await embedder.embed(['evil'])
    const base = { network: 'aistack', model: embedder.id, vector, seq: 1n, expiresAt: Date.now() + 60_000 }
    // claims to be owned by nodes[2] but is signed by another key
    const forged = await signCapabilityRecord(await generateKeyPair('Ed25519'), { name: 'forged', description: 'forged capability' }, { ...base, owner: nodes[2].peerId.toString() })
    const key = await generateKeyPair('Ed25519')
    const good = await signCapabilityRecord(key, { name: 'tampered', description: 'tampered capability' }, { ...base, owner: peerIdFromPrivateKey(key).toString() })
    const tampered = good.slice()
    tampered[tampered.length - 1] ^= 1
    await assert.rejects(victim.services.anycast.accept(forged), { name: 'InvalidRecordError' })
    await assert.rejects(victim.services.anycast.accept(tampered), { name: 'InvalidRecordError' })
    await evil.services.pubsub.publish('aistack/1/caps', forged)
    await evil.services.pubsub.publish('aistack/1/caps', new Uint8Array([1, 2, 3]))
    // a valid record published after the bad ones shows that gossip was processed
    evil.provider.add({ name: 'marker', description: 'marker capability for ordering' }, async () => 'ok')
    await waitFor(() => victim.services.anycast.cache.get(evil.peerId.toString(), 'marker') != null, 20_000, 'marker record')
    assert.equal([...victim.services.anycast.cache.values()].some(r => r.name === 'forged' || r.name === 'tampered'), false)
  })

  it('malformed anycast frames reset that stream only', async () => {
    const target = nodes[5]
    const stream = await nodes[8].dialProtocol(target.getMultiaddrs(), target.services.anycast.protocol)
    // varint length prefix announcing 2^35 bytes
    stream.send(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]))
    await waitFor(() => stream.status !== 'open', 10_000, 'stream reset')
    const garbage = await nodes[8].dialProtocol(target.getMultiaddrs(), target.services.anycast.protocol)
    const pb = pbStream(garbage)
    await pb.writeV([new Uint8Array([0xff, 0xff, 0xff])], { encode: (x: Uint8Array) => x })
    await assert.rejects(pb.read<Response>(Response as any, { signal: AbortSignal.timeout(5000) }))
    // the connection and the node still work
    const res = await nodes[8].services.anycast.ask(QUERIES[5][0], 'great product')
    assert.equal(res.peerId, target.peerId.toString())
    // an unknown capability gets NOT_FOUND
    const s = await nodes[8].dialProtocol(target.getMultiaddrs(), target.services.anycast.protocol)
    const p = pbStream(s)
    await p.write({ kind: Request.Kind.INVOKE, id: new Uint8Array(16), deadlineMs: 1000, capability: 'nope', input: new TextEncoder().encode('1'), model: '', keys: [] }, Request as any)
    const r = await p.read<Response>(Response as any)
    assert.equal(r.status, Response.Status.NOT_FOUND)
  })

  it('fails over on OVERLOADED and on a stopped peer; withdrawn capabilities disappear', async () => {
    // two peers offer similar capabilities: the better one is overloaded
    const a = await createNode(embedder, init)
    const b = await createNode(embedder, init)
    nodes.push(a, b)
    a.provider.add({ name: 'haiku', description: 'Write a haiku poem about a topic', tags: ['poem', 'haiku', 'poetry'] }, async () => 'a', 0)
    b.provider.add({ name: 'poem', description: 'Write a short poem about a topic', tags: ['poem', 'poetry'] }, async () => 'b')
    await a.dial(multiaddr(nodes[0].addr))
    await b.dial(multiaddr(nodes[1].addr))
    const asker = nodes[2].services.anycast
    await waitFor(() => a.services.dht.routingTable.size >= 2 && b.services.dht.routingTable.size >= 2, 20_000, 'routing tables')
    await Promise.all([a.services.anycast.republish(), b.services.anycast.republish()])
    await Promise.all([a.services.anycast.whenPublished(), b.services.anycast.whenPublished()])
    await waitFor(() => asker.cache.get(a.peerId.toString(), 'haiku') != null && asker.cache.get(b.peerId.toString(), 'poem') != null, 20_000, 'poem records')
    const q = 'write a haiku poem about autumn'
    const found = await asker.find(q, { k: 2 })
    assert.equal(found[0].name, 'haiku')
    const r1 = await asker.ask(q, 'autumn')
    assert.equal(r1.output, 'b', JSON.stringify(await asker.find(q, { k: 2 })))
    assert.equal(r1.attempts, 2, JSON.stringify((await asker.findWithStats(q, { k: 2 })).stats.explain))
    assert.equal(r1.peerId, b.peerId.toString())

    // the best peer answers normally, then its anycast service goes away without a tombstone
    a.provider.caps.get('haiku')!.limit = 4
    assert.equal((await asker.ask(q, 'autumn')).output, 'a')
    await a.services.anycast.stop()
    const r2 = await asker.ask(q, 'autumn')
    assert.equal(r2.peerId, b.peerId.toString())
    // a failed fetch during the lookup may already have demoted it: at most one failed attempt
    assert.ok(r2.attempts <= 2)
    const r2b = await asker.ask(q, 'autumn')
    assert.equal(r2b.attempts, 1, 'the failed owner is demoted at once')
    assert.equal(asker.liveness.state(a.peerId.toString()), 'failing')

    // the best node stops for good (clean stop): the next answers
    await a.stop()
    const r3 = await asker.ask(q, 'autumn')
    assert.equal(r3.peerId, b.peerId.toString())

    // removing a capability sends a tombstone
    b.provider.remove('poem')
    await waitFor(() => asker.cache.get(b.peerId.toString(), 'poem') == null, 20_000, 'tombstone')
  })
})
