import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { RecordEnvelope } from '@libp2p/peer-record'
import { DOMAINS, domainsFor, sealRecord, openRecord, ReplayGuard } from '../src/index.js'
import type { PrivateKey } from '@libp2p/interface'

const enc = new TextEncoder()

describe('signed envelopes', () => {
  let key: PrivateKey

  before(async () => {
    key = await generateKeyPair('Ed25519')
  })

  it('has one distinct domain per record type, per network', () => {
    const values = Object.values(DOMAINS)
    assert.deepEqual(Object.keys(DOMAINS).sort(), ['capability', 'event', 'result', 'task'])
    assert.equal(new Set(values).size, 4)
    assert.equal(DOMAINS.capability, 'aistack/1/capability-record')
    assert.equal(domainsFor('testnet').task, 'testnet/1/task-record')
    assert.throws(() => domainsFor('Bad Net'), RangeError)
  })

  it('seals and opens a record', async () => {
    const payload = enc.encode('{"task":"t1"}')
    const bytes = await sealRecord(key, DOMAINS.task, payload)
    const opened = await openRecord(bytes, DOMAINS.task)
    assert.equal(opened.signer.equals(peerIdFromPrivateKey(key)), true)
    assert.equal(opened.publicKey.equals(key.publicKey), true)
    assert.deepEqual(Buffer.from(opened.payload), Buffer.from(payload))
  })

  it('refuses a record sealed for another type', async () => {
    const bytes = await sealRecord(key, DOMAINS.task, enc.encode('x'))
    await assert.rejects(openRecord(bytes, DOMAINS.result), { name: 'EnvelopeDomainError' })
  })

  it('refuses a signature made for another domain with a relabelled type', async () => {
    // sign as a task, then claim the envelope is a capability record
    const bytes = await sealRecord(key, DOMAINS.task, enc.encode('x'))
    const env = RecordEnvelope.createFromProtobuf(bytes)
    const forged = new RecordEnvelope({ publicKey: env.publicKey, payloadType: enc.encode(DOMAINS.capability), payload: env.payload, signature: env.signature })
    await assert.rejects(openRecord(forged.marshal(), DOMAINS.capability), { name: 'EnvelopeSignatureError' })
  })

  it('refuses a tampered payload or signature, and another signer\'s key', async () => {
    const bytes = await sealRecord(key, DOMAINS.event, enc.encode('event-1'))
    const env = RecordEnvelope.createFromProtobuf(bytes)
    const payload = Uint8Array.from(env.payload)
    payload[0] ^= 1
    const tampered = new RecordEnvelope({ publicKey: env.publicKey, payloadType: env.payloadType, payload, signature: env.signature })
    await assert.rejects(openRecord(tampered.marshal(), DOMAINS.event), { name: 'EnvelopeSignatureError' })
    const sig = Uint8Array.from(env.signature)
    sig[10] ^= 1
    const badSig = new RecordEnvelope({ publicKey: env.publicKey, payloadType: env.payloadType, payload: env.payload, signature: sig })
    await assert.rejects(openRecord(badSig.marshal(), DOMAINS.event), { name: 'EnvelopeSignatureError' })
    const other = await generateKeyPair('Ed25519')
    const swapped = new RecordEnvelope({ publicKey: other.publicKey, payloadType: env.payloadType, payload: env.payload, signature: env.signature })
    await assert.rejects(openRecord(swapped.marshal(), DOMAINS.event), { name: 'EnvelopeSignatureError' })
    // flipping any byte of the marshalled envelope never opens
    for (let i = 0; i < bytes.byteLength; i += 7) {
      const b = Uint8Array.from(bytes)
      b[i] ^= 0x40
      await assert.rejects(openRecord(b, DOMAINS.event))
    }
  })

  it('refuses garbage and oversize input', async () => {
    await assert.rejects(openRecord(Uint8Array.of(0xff, 0xff, 0xff), DOMAINS.event), { name: 'InvalidEnvelopeError' })
    await assert.rejects(openRecord(new Uint8Array(0), DOMAINS.event))
    await assert.rejects(openRecord(new Uint8Array(2 * 1024 * 1024), DOMAINS.event), { name: 'InvalidEnvelopeError' })
    const big = await sealRecord(key, DOMAINS.result, new Uint8Array(2000))
    await assert.rejects(openRecord(big, DOMAINS.result, { maxSize: 1000 }), { name: 'InvalidEnvelopeError' })
  })
})

describe('ReplayGuard', () => {
  it('timestamps: accepts once, refuses duplicates, stale and future records', () => {
    let now = 1_000_000
    const guard = new ReplayGuard({ windowMs: 60_000, maxFutureMs: 5_000, now: () => now })
    assert.deepEqual(guard.check('peerA', now, 'e1'), { accept: true })
    assert.deepEqual(guard.check('peerA', now, 'e1'), { accept: false, reason: 'duplicate' })
    assert.deepEqual(guard.check('peerB', now, 'e1'), { accept: true })
    assert.deepEqual(guard.check('peerA', now - 60_001, 'e2'), { accept: false, reason: 'stale' })
    assert.deepEqual(guard.check('peerA', now + 5_001, 'e3'), { accept: false, reason: 'future' })
    now += 120_000
    // the old entry left the window: replaying it now is stale, not accepted
    assert.deepEqual(guard.check('peerA', now - 120_000, 'e1'), { accept: false, reason: 'stale' })
  })

  it('timestamps: memory is bounded and eviction never lets a replay through', () => {
    const now = 5_000_000
    const guard = new ReplayGuard({ maxEntries: 100, now: () => now })
    for (let i = 0; i < 1000; i++) {
      assert.equal(guard.check('p', now - 1000 + i, `id${i}`).accept, true)
      assert.ok(guard.size <= 100)
    }
    for (let i = 0; i < 1000; i++) {
      assert.equal(guard.check('p', now - 1000 + i, `id${i}`).accept, false, `replay ${i}`)
    }
    assert.equal(guard.check('p', now + 1, 'fresh').accept, true)
  })

  it('sequences: must grow per signer', async () => {
    const guard = new ReplayGuard({ kind: 'sequence', maxEntries: 2 })
    const a = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    assert.deepEqual(guard.check(a, 1n, 'cap'), { accept: true })
    assert.deepEqual(guard.check(a, 1, 'cap'), { accept: false, reason: 'duplicate' })
    assert.deepEqual(guard.check(a, 1, 'other'), { accept: false, reason: 'stale' })
    assert.deepEqual(guard.check(a, 0, 'cap'), { accept: false, reason: 'stale' })
    assert.deepEqual(guard.check(a, 2, 'cap'), { accept: true })
    assert.deepEqual(guard.check('b', 5, 'x'), { accept: true })
    assert.deepEqual(guard.check('c', 5, 'x'), { accept: true })
    assert.equal(guard.size, 2)
  })
})
