import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { HashEmbedder, cosine } from '@aistack/embeddings'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import {
  CAPABILITY_RECORD_DOMAIN, RecordCache, SimHashLsh, bucketKey, capabilityDomain, domainsFor, quantize, dequantize, sealRecord,
  signCapabilityRecord, verifyCapabilityRecord
} from '../src/index.js'
import { CapabilityRecord as PbRecord } from '../src/pb/anycast.js'
import type { PrivateKey } from '@libp2p/interface'

const embedder = new HashEmbedder()
const network = 'aistack'
const opts = { network, model: embedder.id, dim: embedder.dim }

describe('capability records', () => {
  let key: PrivateKey
  let other: PrivateKey
  let owner: string
  let vector: Float32Array

  before(async () => {
    key = await generateKeyPair('Ed25519')
    other = await generateKeyPair('Ed25519')
    owner = peerIdFromPrivateKey(key).toString()
    ;[vector] = await embedder.embed(['summarize documents'])
  })

  const cap = { name: 'summarize', description: 'Summarize documents', tags: ['text'], examples: ['tl;dr this'], attributes: { cost: 1, maxConcurrency: 4, region: 'eu', privacy: 'local' } }
  const base = (): any => ({ network, owner, model: embedder.id, vector, seq: 1n, expiresAt: Date.now() + 60_000 })

  async function rawRecord (patch: Partial<PbRecord>, signer = key): Promise<Uint8Array> {
    const { values, scale } = quantize(vector)
    const pb: PbRecord = {
      network,
      name: 'x',
      description: 'd',
      tags: [],
      examples: [],
      model: embedder.id,
      dim: values.length,
      vector: new Uint8Array(values.buffer),
      scale,
      owner,
      seq: 1n,
      expiresAt: BigInt(Date.now() + 60_000),
      tombstone: false,
      ...patch
    }
    return sealRecord(signer, CAPABILITY_RECORD_DOMAIN, PbRecord.encode(pb))
  }

  it('round-trips and keeps the int8 vector close', async () => {
    const bytes = await signCapabilityRecord(key, cap, base())
    const r = await verifyCapabilityRecord(bytes, opts)
    assert.equal(r.name, 'summarize')
    assert.equal(r.owner, owner)
    assert.deepEqual(r.attributes, cap.attributes)
    assert.equal(r.dim, 384)
    assert.ok(cosine(r.vector, vector) > 0.999)
    const q = quantize([0.5, -1, 0])
    const d = dequantize(q.values, q.scale)
    assert.deepEqual([...q.values], [64, -127, 0])
    assert.ok(Math.abs(d[0] - 0.447) < 0.005 && Math.abs(d[1] + 0.894) < 0.005 && d[2] === 0)
  })

  it('rejects a bad signature', async () => {
    const bytes = await signCapabilityRecord(key, cap, base())
    const bad = bytes.slice()
    bad[bad.length - 3] ^= 0xff
    await assert.rejects(verifyCapabilityRecord(bad, opts), { name: 'InvalidRecordError', message: /bad signature/ })
    await assert.rejects(verifyCapabilityRecord(new Uint8Array([1, 2, 3]), opts), { name: 'InvalidRecordError' })
  })

  it('rejects an owner that is not the signer', async () => {
    const bytes = await signCapabilityRecord(other, cap, base())
    await assert.rejects(verifyCapabilityRecord(bytes, opts), { name: 'InvalidRecordError', message: /not the signer/ })
  })

  it('signs under the network\'s capability domain and rejects other domains', async () => {
    assert.equal(CAPABILITY_RECORD_DOMAIN, domainsFor('aistack').capability)
    assert.equal(capabilityDomain('testnet'), 'testnet/1/capability-record')
    assert.throws(() => capabilityDomain('Bad Network'), RangeError)
    const { values, scale } = quantize(vector)
    const payload = PbRecord.encode({ network, name: 'x', description: 'd', tags: [], examples: [], model: embedder.id, dim: values.length, vector: new Uint8Array(values.buffer), scale, owner, seq: 1n, expiresAt: BigInt(Date.now() + 60_000), tombstone: false })
    // the same payload sealed as a task record, or for another network, does not open as a capability record
    for (const domain of [domainsFor('aistack').task, capabilityDomain('testnet')]) {
      const bytes = await sealRecord(key, domain, payload)
      await assert.rejects(verifyCapabilityRecord(bytes, opts), { name: 'InvalidRecordError', message: /bad signature/ })
    }
    const ok = await sealRecord(key, CAPABILITY_RECORD_DOMAIN, payload)
    assert.equal((await verifyCapabilityRecord(ok, opts)).name, 'x')
  })

  it('rejects the wrong dimension', async () => {
    const bytes = await signCapabilityRecord(key, cap, { ...base(), vector: vector.subarray(0, 100) })
    await assert.rejects(verifyCapabilityRecord(bytes, opts), { name: 'InvalidRecordError', message: /dimension 100/ })
    const mismatch = await rawRecord({ dim: 383 })
    await assert.rejects(verifyCapabilityRecord(mismatch, opts), { name: 'InvalidRecordError', message: /dim says 383/ })
  })

  it('rejects NaN and infinite values', async () => {
    await assert.rejects(verifyCapabilityRecord(await rawRecord({ scale: NaN }), opts), { name: 'InvalidRecordError', message: /scale/ })
    await assert.rejects(verifyCapabilityRecord(await rawRecord({ scale: Infinity }), opts), { name: 'InvalidRecordError', message: /scale/ })
    await assert.rejects(verifyCapabilityRecord(await rawRecord({ attributes: { cost: NaN } }), opts), { name: 'InvalidRecordError', message: /cost/ })
  })

  it('rejects oversize fields and records', async () => {
    await assert.rejects(verifyCapabilityRecord(await rawRecord({ description: 'x'.repeat(2000) }), opts), { name: 'InvalidRecordError', message: /description/ })
    await assert.rejects(verifyCapabilityRecord(await rawRecord({ tags: Array(17).fill('t') }), opts), { name: 'InvalidRecordError' })
    await assert.rejects(verifyCapabilityRecord(await rawRecord({ name: 'bad name!' }), opts), { name: 'InvalidRecordError', message: /name/ })
    await assert.rejects(verifyCapabilityRecord(new Uint8Array(20_000), opts), { name: 'InvalidRecordError', message: /limit/ })
  })

  it('rejects past expiry and a foreign network', async () => {
    await assert.rejects(verifyCapabilityRecord(await rawRecord({ expiresAt: BigInt(Date.now() - 1) }), opts), { name: 'InvalidRecordError', message: /expired/ })
    await assert.rejects(verifyCapabilityRecord(await rawRecord({ network: 'testnet' }), opts), { name: 'InvalidRecordError', message: /network/ })
  })

  it('cache: newest sequence wins, tombstones remove, expired records drop', async () => {
    const cache = new RecordCache()
    const r1 = await verifyCapabilityRecord(await signCapabilityRecord(key, cap, { ...base(), seq: 5n }), opts)
    const r0 = await verifyCapabilityRecord(await signCapabilityRecord(key, { ...cap, description: 'old' }, { ...base(), seq: 4n }), opts)
    const r2 = await verifyCapabilityRecord(await signCapabilityRecord(key, { ...cap, description: 'new' }, { ...base(), seq: 6n }), opts)
    assert.equal(cache.put(r1), 'added')
    assert.equal(cache.put(r0), 'stale')
    assert.equal(cache.put(r2), 'updated')
    assert.equal(cache.get(owner, 'summarize')?.description, 'new')
    const tomb = await verifyCapabilityRecord(await signCapabilityRecord(key, cap, { ...base(), seq: 7n, tombstone: true }), opts)
    assert.equal(cache.put(tomb), 'removed')
    assert.equal(cache.size, 0)
    assert.equal(cache.put(r2), 'stale', 'older than the tombstone')
    const r3 = await verifyCapabilityRecord(await signCapabilityRecord(key, cap, { ...base(), seq: 8n, expiresAt: Date.now() + 50 }), opts)
    assert.equal(cache.put(r3), 'added')
    assert.equal(cache.prune(Date.now() + 100), 1)
    assert.equal(cache.size, 0)
    assert.equal(cache.put(r3, Date.now() + 100), 'stale')
  })
})

describe('SimHash LSH keys', () => {
  it('is deterministic per network and model, and table/bit planes are shared across (L, k)', async () => {
    const [v] = await embedder.embed(['translate english to french'])
    const a = new SimHashLsh('aistack', embedder.id, 384, { tables: 4, bits: 8 })
    const b = new SimHashLsh('aistack', embedder.id, 384, { tables: 4, bits: 8 })
    const small = new SimHashLsh('aistack', embedder.id, 384, { tables: 2, bits: 4 })
    const other = new SimHashLsh('testnet', embedder.id, 384, { tables: 4, bits: 8 })
    assert.deepEqual(a.buckets(v), b.buckets(v))
    assert.deepEqual(small.buckets(v), a.buckets(v).slice(0, 2).map(x => ({ table: x.table, bits: x.bits.slice(0, 4) })))
    assert.notDeepEqual(a.buckets(v), other.buckets(v))
    assert.throws(() => a.buckets(new Float32Array(10)), RangeError)
  })

  it('keys are CIDv1 raw sha256 of the documented string', () => {
    const cid = bucketKey('aistack', 'aistack-hash-v1', { table: 3, bits: '0110' })
    assert.equal(cid.version, 1)
    assert.equal(cid.code, 0x55)
    const expected = createHash('sha256').update('aistack/1/cap-lsh/aistack-hash-v1/3/0110').digest()
    assert.deepEqual(cid.multihash.digest, new Uint8Array(expected))
    assert.equal(CID.decode(cid.bytes).toString(), cid.toString())
  })

  it('multi-probe starts with the own bucket and returns distinct neighbours', async () => {
    const [v] = await embedder.embed(['resize images'])
    const lsh = new SimHashLsh('aistack', embedder.id, 384, { tables: 3, bits: 6 })
    const probes = lsh.probes(v, 5)
    assert.equal(probes.length, 15)
    const own = lsh.buckets(v)
    for (let t = 0; t < 3; t++) {
      const mine = probes.filter(p => p.table === t)
      assert.deepEqual(mine[0], own[t])
      assert.equal(new Set(mine.map(p => p.bits)).size, 5)
    }
  })
})
