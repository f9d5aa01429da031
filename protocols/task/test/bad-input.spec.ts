import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { DOMAIN_RESULT, RESULT_BATCH_COUNT } from '../src/constants.js'
import { Control, ResultBatch } from '../src/pb/task.js'
import { sealRecord } from '../src/signing.js'
import { TestExecutor, connect, createNode, echo, hang, nextEvent, waitFor } from './helpers.js'
import type { Node } from './helpers.js'

function send (from: Node, to: Node, msg: Partial<Control> & { type: Control.Type, taskId: string }): Promise<void> {
  return (from.services.tasks as any).channels.send(to.peerId, { attempt: 0, leaseMs: 0, free: 0, ...msg })
}

describe('bad input', function () {
  this.timeout(60_000)
  let nodes: Node[] = []

  afterEach(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    nodes = []
  })

  it('drops and counts bad messages without crashing or corrupting the journal', async () => {
    const ex = new TestExecutor(['echo', 'hang'], async (input: any, ctx) => input === 'hang' ? hang(input, ctx) : echo(input, ctx))
    const attackerKey = await generateKeyPair('Ed25519')
    const [submitter, worker, attacker] = await Promise.all([createNode(), createNode({ executor: ex }), createNode({ privateKey: attackerKey })])
    nodes.push(submitter, worker, attacker)
    await connect(submitter, worker)
    await connect(attacker, submitter)
    await connect(attacker, worker)
    const s = submitter.services.tasks
    const w = worker.services.tasks

    // 1. garbage and foreign-signed announcements on the tasks topic
    const captured: Uint8Array[] = []
    attacker.services.pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic === s.tasksTopic) {
        captured.push(evt.detail.data)
      }
    })
    await attacker.services.pubsub.publish(s.tasksTopic, uint8ArrayFromString('not a signed record'))
    await waitFor(() => w.stats().dropped.badSignature >= 1, 5000, 'bad signature counted')

    // 2. an announcement re-published by another peer, and one replayed by its signer
    const running = nextEvent(s, e => e.type === 'task.running')
    const { id } = await s.submit({ capability: 'hang', input: 'hang' })
    await running
    await waitFor(() => captured.length > 0, 5000, 'captured announcement')
    await attacker.services.pubsub.publish(s.tasksTopic, captured[0])
    await waitFor(() => w.stats().dropped.badSignature >= 2, 5000, 'foreign announcement counted')
    await submitter.services.pubsub.publish(s.tasksTopic, captured[0])
    await waitFor(() => w.stats().dropped.replayed >= 1, 5000, 'replay counted')

    // 3. an offer for an unknown task
    await send(attacker, submitter, { type: Control.Type.OFFER, taskId: 'no-such-task', free: 1 })
    await waitFor(() => s.stats().dropped.unknownTask >= 1, 5000, 'unknown offer counted')

    // 4. a result from a peer the task is not assigned to
    const forged = await sealRecord(attackerKey, DOMAIN_RESULT, ResultBatch.encode({ results: [{ taskId: id, attempt: 1, submitter: submitter.peerId.toMultihash().bytes, spans: [], ok: true, output: uint8ArrayFromString('"forged"') }] }))
    await send(attacker, submitter, { type: Control.Type.RESULT, taskId: id, attempt: 1, record: forged })
    await waitFor(() => s.stats().dropped.notAssigned >= 1, 5000, 'not-assigned result counted')
    assert.equal(s.get(id).state, 'running')

    // 5. a result signed by someone else than the sender
    const otherKey = await generateKeyPair('Ed25519')
    const stolen = await sealRecord(otherKey, DOMAIN_RESULT, ResultBatch.encode({ results: [{ taskId: id, attempt: 1, submitter: submitter.peerId.toMultihash().bytes, ok: true, spans: [] }] }))
    await send(attacker, submitter, { type: Control.Type.RESULT, taskId: id, attempt: 1, record: stolen })
    await waitFor(() => s.stats().dropped.badSignature >= 1, 5000, 'bad result signature counted')
    assert.equal(s.get(id).state, 'running')

    // 5b. a result batch for another submitter, and one with more results than a batch may hold
    const malformedBefore = s.stats().dropped.malformed
    const elsewhere = await sealRecord(attackerKey, DOMAIN_RESULT, ResultBatch.encode({ results: [{ taskId: id, attempt: 1, submitter: attacker.peerId.toMultihash().bytes, ok: true, spans: [] }] }))
    await send(attacker, submitter, { type: Control.Type.RESULT, taskId: id, attempt: 1, record: elsewhere })
    await waitFor(() => s.stats().dropped.malformed >= malformedBefore + 1, 5000, 'result for another submitter counted')
    const tooMany = Array.from({ length: RESULT_BATCH_COUNT + 1 }, () => ({ taskId: id, attempt: 1, submitter: submitter.peerId.toMultihash().bytes, ok: true, spans: [] }))
    await send(attacker, submitter, { type: Control.Type.RESULT, taskId: id, attempt: 1, record: await sealRecord(attackerKey, DOMAIN_RESULT, ResultBatch.encode({ results: tooMany })) })
    await waitFor(() => s.stats().dropped.malformed >= malformedBefore + 2, 5000, 'oversize result batch counted')
    assert.equal(s.get(id).state, 'running')

    // 6. a malformed frame and an oversize frame on the task protocol
    const raw1 = await attacker.dialProtocol(submitter.peerId, s.protocol)
    raw1.send(Uint8Array.from([5, 0xff, 0xff, 0xff, 0xff, 0xff]))
    await waitFor(() => s.stats().dropped.malformed >= 1, 5000, 'malformed frame counted')
    const raw2 = await attacker.dialProtocol(submitter.peerId, s.protocol)
    raw2.send(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f]))
    await waitFor(() => s.stats().dropped.oversize >= 1, 5000, 'oversize frame counted')

    // 7. a duplicate result: the worker's result arrives twice
    const wChannels = (w as any).channels
    const original = wChannels.send.bind(wChannels)
    wChannels.send = async (peer: any, msg: Control) => {
      await original(peer, msg)
      if (msg.type === Control.Type.RESULT) {
        await original(peer, msg)
      }
    }
    const done = nextEvent(s, e => e.type === 'task.completed')
    const second = await s.submit({ capability: 'echo', input: 'fine' })
    await done
    await waitFor(() => s.stats().dropped.duplicate >= 1, 5000, 'duplicate result counted')
    assert.equal(s.get(second.id).result, 'fine')

    // everything still works and the journal is intact
    await s.cancel(id)
    const journal = (s as any).journal
    await journal.flush()
    const { records, corrupt } = await journal.load()
    assert.equal(corrupt, 0)
    assert.deepEqual(new Set(records.map((r: any) => r.id)), new Set([id, second.id]))
    assert.equal(s.stats().completed, 1)
  })

  it('drops a result whose signature fails from the worker the task is assigned to, and takes it when sent again intact', async () => {
    const ex = new TestExecutor(['echo'], echo)
    const [submitter, worker] = await Promise.all([createNode(), createNode({ executor: ex })])
    nodes.push(submitter, worker)
    await connect(submitter, worker)
    const s = submitter.services.tasks
    // the worker's first result leaves with one bit of its signature flipped
    const wChannels = (worker.services.tasks as any).channels
    const original = wChannels.send.bind(wChannels)
    let corrupted = 0
    wChannels.send = async (peer: any, msg: Control) => {
      if (msg.type === Control.Type.RESULT && msg.record != null && corrupted === 0) {
        corrupted++
        const record = msg.record.slice()
        record[record.byteLength - 1] ^= 1
        return original(peer, { ...msg, record })
      }
      return original(peer, msg)
    }
    const done = nextEvent(s, e => e.type === 'task.completed')
    const { id } = await s.submit({ capability: 'echo', input: 'intact' })
    await waitFor(() => s.stats().dropped.badSignature >= 1, 5000, 'bad signature counted')
    // from now on that worker's results are checked before anything is written for them
    assert.equal((s as any).badSigners.has(worker.peerId.toString()), true)
    // the worker holds its result until acknowledged and sends it again
    await done
    assert.equal(corrupted, 1)
    assert.equal(s.get(id).result, 'intact')
    assert.equal(s.stats().completed, 1)
    const journal = (s as any).journal
    await journal.flush()
    assert.deepEqual(await journal.stagedResults(), [])
  })

  it('rejects bad submissions with named errors', async () => {
    const [submitter] = await Promise.all([createNode({ init: { maxPayloadBytes: 1024 } })])
    nodes.push(submitter)
    const s = submitter.services.tasks
    await assert.rejects(s.submit({ input: 1 }), { name: 'InvalidTaskError' })
    await assert.rejects(s.submit({ capability: 'x' }), { name: 'InvalidTaskError' })
    await assert.rejects(s.submit({ capability: 'x', input: 1, inputs: [1] }), { name: 'InvalidTaskError' })
    await assert.rejects(s.submit({ capability: 'x', input: 1, maxAttempts: 0 }), { name: 'InvalidTaskError' })
    await assert.rejects(s.submit({ capability: 'x', input: 1, to: 'not-a-peer' }), { name: 'InvalidTaskError' })
    await assert.rejects(s.submit({ capability: 'x', input: 'y'.repeat(2000) }), { name: 'PayloadTooLargeError' })
    assert.throws(() => s.get('nope'), { name: 'TaskNotFoundError' })
  })
})
