import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { RecordEnvelope } from '@libp2p/peer-record'
import { MemoryDatastore } from 'datastore-core'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { inBatches } from '../src/batches.js'
import { FrameDecoder } from '../src/channel.js'
import { ed25519, nodeCryptoEd25519, sodiumEd25519 } from '../src/ed25519.js'
import * as handshake from '@aistack/handshake'
import { DOMAINS, domainsFor } from '@aistack/handshake'
import { DOMAIN_EVENT, DOMAIN_RESULT, DOMAIN_TASK, recordDomains } from '../src/constants.js'
import { Journal, decodeRecord, encodeRecord } from '../src/journal.js'
import { Announce, Control, Result } from '../src/pb/task.js'
import { openRecord, sealRecord } from '../src/signing.js'
import { assertTransition, backoffDelay, canTransition, isTerminal } from '../src/state.js'
import type { TaskRecord } from '../src/journal.js'

function record (id: string): TaskRecord {
  return {
    id,
    state: 'submitted',
    capability: 'echo',
    payload: uint8ArrayFromString('{"a":1}'),
    maxAttempts: 5,
    leaseMs: 30000,
    timeoutMs: 0,
    deadline: 0,
    createdAt: 1,
    updatedAt: 1,
    attempts: 0,
    round: 0,
    history: [{ at: 1, state: 'submitted', attempt: 0 }]
  }
}

describe('state machine', () => {
  it('allows the documented transitions only', () => {
    assert.ok(canTransition('submitted', 'assigned'))
    assert.ok(canTransition('assigned', 'running'))
    assert.ok(canTransition('running', 'completed'))
    assert.ok(canTransition('running', 'failed'))
    assert.ok(canTransition('failed', 'assigned'))
    assert.ok(canTransition('failed', 'dead'))
    assert.ok(!canTransition('completed', 'failed'))
    assert.ok(!canTransition('dead', 'assigned'))
    assert.ok(!canTransition('canceled', 'running'))
    assert.ok(!canTransition('submitted', 'failed'))
    assert.throws(() => { assertTransition('completed', 'assigned') }, { name: 'InvalidTransitionError' })
    assert.ok(isTerminal('completed') && isTerminal('dead') && isTerminal('canceled'))
    assert.ok(!isTerminal('failed'))
  })

  it('backs off exponentially up to a cap', () => {
    assert.equal(backoffDelay(0, 100, 1000), 0)
    assert.equal(backoffDelay(1, 100, 1000), 100)
    assert.equal(backoffDelay(2, 100, 1000), 200)
    assert.equal(backoffDelay(4, 100, 1000), 800)
    assert.equal(backoffDelay(5, 100, 1000), 1000)
    assert.equal(backoffDelay(500, 100, 1000), 1000)
  })
})

describe('journal', () => {
  it('round-trips records with their payload', () => {
    const r = record('x')
    const back = decodeRecord(encodeRecord({ ...r, leaseUntil: 5 }))
    assert.deepEqual(back, r)
  })

  it('saves, coalesces concurrent writes and loads', async () => {
    const ds = new MemoryDatastore()
    const journal = new Journal(ds, '/aistack/tasks')
    const r = record('t1')
    const writes = []
    for (let i = 0; i < 10; i++) {
      r.attempts = i
      writes.push(journal.save(r))
    }
    await Promise.all(writes)
    await journal.save(record('t2'))
    await journal.flush()
    const { records, corrupt } = await journal.load()
    assert.equal(corrupt, 0)
    assert.equal(records.length, 2)
    assert.equal(records.find(x => x.id === 't1')?.attempts, 9)
  })

  it('holds background saves back, then writes them with the next save that is waited for, in one batch', async () => {
    const ds = new MemoryDatastore()
    let commits = 0
    const batch = ds.batch.bind(ds)
    ds.batch = () => {
      const b = batch()
      const commit = b.commit.bind(b)
      b.commit = async () => { commits++; await commit() }
      return b
    }
    const journal = new Journal(ds, '/aistack/tasks')
    const background = journal.saveInBackground(record('later'))
    // a turn of the event loop later the delay has not run out: nothing is written yet
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(await ds.has(journal.key('later')), false)
    await journal.save(record('now'))
    await background
    assert.equal(commits, 1)
    assert.equal(await ds.has(journal.key('later')), true)
    assert.equal(await ds.has(journal.key('now')), true)
    // on its own, a background save is written when the delay runs out
    await journal.saveInBackground(record('alone'))
    assert.equal(commits, 2)
    // and flush() writes at once what is held back
    const held = journal.saveInBackground(record('flushed'))
    await journal.flush()
    assert.equal(await ds.has(journal.key('flushed')), true)
    await held
  })

  it('stages result records apart from task records and deletes them with the task record that supersedes them', async () => {
    const ds = new MemoryDatastore()
    const journal = new Journal(ds, '/aistack/tasks')
    const bytes = uint8ArrayFromString('a result record')
    await journal.stageResult('t1', 2, bytes)
    await journal.stageResult('t2.0', 1, bytes)
    assert.deepEqual((await journal.stagedResults()).map(r => [r.taskId, r.attempt]).sort(), [['t1', 2], ['t2.0', 1]])
    // staged entries are not task records
    assert.deepEqual((await journal.load()).records, [])
    const r = record('t1')
    r.state = 'completed'
    const saved = journal.saveInBackground(r, { unstage: 2 })
    journal.discardStaged('t2.0', 1)
    await journal.flush()
    await saved
    assert.deepEqual(await journal.stagedResults(), [])
    assert.equal((await journal.load()).records[0].state, 'completed')
  })

  it('skips and counts corrupt entries', async () => {
    const ds = new MemoryDatastore()
    const journal = new Journal(ds, '/aistack/tasks')
    await journal.save(record('good'))
    await ds.put(journal.key('bad'), uint8ArrayFromString('{not json'))
    const { records, corrupt } = await journal.load()
    assert.equal(records.length, 1)
    assert.equal(corrupt, 1)
  })
})

describe('wire messages and signatures', () => {
  it('round-trips control messages', () => {
    const msg: Control = { type: Control.Type.ASSIGN, taskId: 'a', attempt: 2, ref: 'b', leaseMs: 100, free: 1, task: { id: 'a', requirements: new Map([['gpu', 'yes']]), deadline: 5n, timeoutMs: 0, payloadSize: 3, payload: uint8ArrayFromString('"x"'), index: 0 } }
    const back = Control.decode(Control.encode(msg))
    assert.equal(back.type, Control.Type.ASSIGN)
    assert.equal(back.task?.requirements.get('gpu'), 'yes')
    assert.equal(back.task?.deadline, 5n)
  })

  it('signs and verifies records per domain', async () => {
    const key = await generateKeyPair('Ed25519')
    const payload = Announce.encode({ tasks: [{ task: { id: 'z', requirements: new Map(), deadline: 0n, timeoutMs: 0, payloadSize: 0, index: 0 }, round: 1 }], issuedAt: 1n })
    const sealed = await sealRecord(key, DOMAIN_TASK, payload)
    const opened = await openRecord(sealed, DOMAIN_TASK)
    assert.ok(opened.signer.equals(peerIdFromPrivateKey(key)))
    assert.deepEqual(opened.payload, payload)
    // another domain does not verify
    await assert.rejects(openRecord(sealed, DOMAIN_RESULT), { name: 'InvalidSignatureError' })
    // a flipped byte does not verify
    const bad = sealed.slice()
    bad[bad.length - 1] ^= 1
    await assert.rejects(openRecord(bad, DOMAIN_TASK), { name: 'InvalidSignatureError' })
    await assert.rejects(openRecord(uint8ArrayFromString('garbage'), DOMAIN_TASK), { name: 'InvalidSignatureError' })
    // interoperates with libp2p's own RecordEnvelope
    const viaLibp2p = await RecordEnvelope.seal({ domain: DOMAIN_TASK, codec: uint8ArrayFromString(DOMAIN_TASK), marshal: () => payload, equals: () => false }, key)
    assert.deepEqual((await openRecord(viaLibp2p.marshal(), DOMAIN_TASK)).payload, payload)
    assert.ok(await (await RecordEnvelope.openAndCertify(sealed, DOMAIN_TASK)).validate(DOMAIN_TASK))
  })

  it('seals exactly the envelopes of @aistack/handshake, with its per-network domains', async () => {
    assert.deepEqual(recordDomains('aistack'), { task: 'aistack/1/task-record', result: 'aistack/1/result-record', event: 'aistack/1/event-record' })
    assert.equal(recordDomains('aistack-testnet').task, domainsFor('aistack-testnet').task)
    assert.equal(DOMAIN_RESULT, DOMAINS.result)
    const key = await generateKeyPair('Ed25519')
    const payload = uint8ArrayFromString('a task record')
    for (const domain of Object.values(recordDomains('aistack'))) {
      const ours = await sealRecord(key, domain, payload)
      assert.deepEqual(ours, await handshake.sealRecord(key, domain, payload))
      assert.deepEqual((await handshake.openRecord(ours, domain)).payload, payload)
      assert.deepEqual((await openRecord(await handshake.sealRecord(key, domain, payload), domain)).payload, payload)
    }
    await assert.rejects(handshake.openRecord(await sealRecord(key, DOMAIN_TASK, payload), DOMAIN_EVENT), { name: 'EnvelopeDomainError' })
    // other key types go through the handshake's functions
    const secp = await generateKeyPair('secp256k1')
    const sealed = await sealRecord(secp, DOMAIN_RESULT, payload)
    const opened = await openRecord(sealed, DOMAIN_RESULT)
    assert.ok(opened.signer.equals(peerIdFromPrivateKey(secp)))
    await assert.rejects(openRecord(sealed, DOMAIN_TASK), { name: 'InvalidSignatureError' })
    assert.equal(Result.decode(Result.encode({ taskId: 'a', attempt: 1, submitter: new Uint8Array(2), ok: true })).ok, true)
  })
})

describe('batches', () => {
  it('cuts items into batches by count and by size, in order, an oversize item on its own', () => {
    const size = (n: number): number => n
    assert.deepEqual(inBatches([], size, 10, 3), [])
    assert.deepEqual(inBatches([1, 1, 1, 1, 1, 1, 1], size, 100, 3), [[1, 1, 1], [1, 1, 1], [1]])
    assert.deepEqual(inBatches([4, 4, 4, 2, 9], size, 10, 10), [[4, 4], [4, 2], [9]])
    assert.deepEqual(inBatches([3, 50, 3], size, 10, 10), [[3], [50], [3]])
  })
})

describe('ed25519', () => {
  const withPrebuilds = ['linux', 'darwin', 'win32'].includes(process.platform) && ['x64', 'arm64'].includes(process.arch)

  it('signs with libsodium where its binary loads', () => {
    if (withPrebuilds) {
      assert.equal(ed25519.name, 'libsodium')
    } else {
      assert.ok(['libsodium', 'node:crypto'].includes(ed25519.name))
    }
  })

  it('gives the same signatures with libsodium and node:crypto, and each checks the other\'s', async () => {
    const sodium = sodiumEd25519()
    if (sodium == null) {
      assert.ok(!withPrebuilds, 'sodium-native does not load')
      return
    }
    const node = nodeCryptoEd25519()
    const key = await generateKeyPair('Ed25519')
    for (const size of [0, 1, 300, 70_000]) {
      const data = Uint8Array.from({ length: size }, (_, i) => (i * 31 + size) & 0xff)
      const a = sodium.sign(data, key.raw)
      const b = node.sign(data, key.raw)
      assert.deepEqual(a, b)
      assert.ok(node.verify(a, data, key.publicKey.raw))
      assert.ok(sodium.verify(b, data, key.publicKey.raw))
      // and matches libp2p's own Ed25519
      assert.ok(await key.publicKey.verify(data, a))
    }
  })

  it('refuses what does not check, without throwing', async () => {
    const key = await generateKeyPair('Ed25519')
    const other = await generateKeyPair('Ed25519')
    const data = uint8ArrayFromString('a result')
    for (const impl of [sodiumEd25519(), nodeCryptoEd25519()]) {
      if (impl == null) {
        continue
      }
      const signature = impl.sign(data, key.raw)
      assert.equal(impl.verify(signature, data, key.publicKey.raw), true, impl.name)
      assert.equal(impl.verify(signature, uint8ArrayFromString('another result'), key.publicKey.raw), false, impl.name)
      assert.equal(impl.verify(signature, data, other.publicKey.raw), false, impl.name)
      const flipped = signature.slice()
      flipped[10] ^= 1
      assert.equal(impl.verify(flipped, data, key.publicKey.raw), false, impl.name)
      assert.equal(impl.verify(signature.subarray(0, 63), data, key.publicKey.raw), false, impl.name)
      assert.equal(impl.verify(new Uint8Array(0), data, key.publicKey.raw), false, impl.name)
      assert.equal(impl.verify(signature, data, key.publicKey.raw.subarray(0, 31)), false, impl.name)
      assert.equal(impl.verify(signature, data, new Uint8Array(32).fill(0xff)), false, impl.name)
    }
  })

  it('refuses the small-order key whose neutral signature would fit every message', () => {
    // the neutral point as the key, and R = the neutral point, S = 0
    const identity = new Uint8Array(32)
    identity[0] = 1
    const signature = new Uint8Array(64)
    signature[0] = 1
    for (const impl of [sodiumEd25519(), nodeCryptoEd25519()]) {
      assert.equal(impl?.verify(signature, uint8ArrayFromString('anything'), identity) ?? false, false, impl?.name)
    }
  })
})

describe('frame decoder', () => {
  it('reassembles frames split across chunks and rejects oversize ones', () => {
    const d = new FrameDecoder(300)
    const frame = new Uint8Array(200).fill(7)
    const wire = Uint8Array.from([0xc8, 0x01, ...frame, 0x02, 1, 2])
    const out = [...d.push(wire.subarray(0, 1)), ...d.push(wire.subarray(1, 50)), ...d.push(wire.subarray(50))]
    assert.equal(out.length, 2)
    assert.deepEqual(out[0], frame)
    assert.deepEqual(out[1], Uint8Array.from([1, 2]))
    assert.throws(() => new FrameDecoder(100).push(Uint8Array.from([0xc8, 0x01])), { name: 'FrameTooLargeError' })
    assert.throws(() => new FrameDecoder(100).push(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), { name: 'FrameTooLargeError' })
  })
})
