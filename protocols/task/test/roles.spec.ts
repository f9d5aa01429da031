import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { MemoryDatastore } from 'datastore-core'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { JOURNAL_PREFIX, MIN_LEASE_MS, recordDomains } from '../src/constants.js'
import { Dispatcher } from '../src/dispatcher.js'
import { EventBus } from '../src/event-bus.js'
import { Journal } from '../src/journal.js'
import { Announce, Control, EventBatch, ResultBatch } from '../src/pb/task.js'
import { ResultIntake } from '../src/result-intake.js'
import { ResultOutbox } from '../src/result-outbox.js'
import { Retention, settleMap } from '../src/retention.js'
import { openRecord, sealRecord } from '../src/signing.js'
import { Submitter } from '../src/submitter.js'
import { Worker } from '../src/worker.js'
import { TestExecutor, echo, waitFor } from './helpers.js'
import type { DropReason } from '../src/counters.js'
import type { TaskRecord } from '../src/journal.js'
import type { TaskBody } from '../src/pb/task.js'
import type { TaskEvent } from '../src/types.js'
import type { PeerId, PrivateKey } from '@libp2p/interface'

/** a logger that says nothing */
const log: any = Object.assign(() => {}, { error: () => {}, trace: () => {} })
const domains = recordDomains('aistack')

interface Peer { key: PrivateKey, id: PeerId }

async function peer (): Promise<Peer> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key) }
}

/** Channels that record what is sent instead of sending it */
class FakeChannels {
  sent: Array<{ peer: PeerId, message: Control }> = []
  lazy: Array<{ peer: PeerId, message: Control }> = []
  async send (peer: PeerId, message: Control): Promise<void> {
    this.sent.push({ peer, message })
  }

  sendLazy (peer: PeerId, message: Control): void {
    this.lazy.push({ peer, message })
  }

  of (type: Control.Type): Control[] {
    return this.sent.filter(s => s.message.type === type).map(s => s.message)
  }
}

class Drops {
  counts: Partial<Record<DropReason, number>> = {}
  drop = (reason: DropReason, n = 1): void => { this.counts[reason] = (this.counts[reason] ?? 0) + n }
}

function body (id: string, capability = 'echo', input: unknown = id): TaskBody {
  return { id, capability, requirements: new Map(), deadline: 0n, timeoutMs: 0, payloadSize: 0, payload: uint8ArrayFromString(JSON.stringify(input)), index: 0 }
}

function record (id: string, over: Partial<TaskRecord> = {}): TaskRecord {
  return { id, state: 'submitted', capability: 'echo', payload: uint8ArrayFromString('1'), maxAttempts: 3, leaseMs: MIN_LEASE_MS, timeoutMs: 0, deadline: 0, createdAt: 1, updatedAt: 1, attempts: 0, round: 0, history: [], ...over }
}

describe('roles of the task service, each against fakes of the others', function () {
  this.timeout(30_000)

  describe('Worker', () => {
    async function worker (executor = new TestExecutor(['echo'], echo, 2)): Promise<{ w: Worker, channels: FakeChannels, drops: Drops, self: Peer }> {
      const self = await peer()
      const channels = new FakeChannels()
      const drops = new Drops()
      const w = new Worker({
        self: self.id,
        privateKey: self.key,
        executor,
        channels,
        isConnected: () => true,
        domains,
        options: { defaultLeaseMs: 30_000, taskTimeoutMs: 60_000, maxPayloadBytes: 1024, maxOutputBytes: 1024, offerTimeoutMs: 3000, resultRetryMs: 2000, maxRecordAgeMs: 60_000, maxHeldResults: 2, maxHeldBytes: 1 << 20 },
        log,
        drop: drops.drop
      })
      w.start()
      return { w, channels, drops, self }
    }

    it('offers its free slots for an announced task, runs what it is assigned and sends a signed result it holds until acknowledged', async () => {
      const { w, channels, self } = await worker()
      const submitter = await peer()
      const announce = await sealRecord(submitter.key, domains.task, Announce.encode({ tasks: [{ task: body('t1'), round: 1 }], issuedAt: BigInt(Date.now()) }))
      await w.onAnnounceRecord(announce, submitter.id)
      const [offer] = channels.of(Control.Type.OFFER)
      assert.equal(offer.taskId, 't1')
      assert.equal(offer.free, 2)
      w.onAssign(submitter.id, { type: Control.Type.ASSIGN, taskId: 't1', attempt: 1, ref: 't1', leaseMs: MIN_LEASE_MS, free: 0, task: body('t1', 'echo', { x: 1 }) })
      await waitFor(() => channels.of(Control.Type.RESULT).length === 1, 5000, 'the result')
      assert.equal(channels.of(Control.Type.PROGRESS).length, 1, 'the start report')
      const opened = await openRecord(channels.of(Control.Type.RESULT)[0].record as Uint8Array, domains.result)
      assert.ok(opened.signer.equals(self.id))
      const [result] = ResultBatch.decode(opened.payload).results
      assert.deepEqual(JSON.parse(new TextDecoder().decode(result.output)), { x: 1 })
      assert.equal(w.outbox.held.size, 1)
      w.onAck(submitter.id, { type: Control.Type.ACK, taskId: 't1', attempt: 1, leaseMs: 0, free: 0 })
      assert.equal(w.outbox.held.size, 0)
      assert.equal(w.executed, 1)
      w.stop()
    })

    it('refuses assignments it cannot take once, without holding anything, and past maxHeldResults', async () => {
      const { w, channels } = await worker()
      const submitter = await peer()
      w.onAssign(submitter.id, { type: Control.Type.ASSIGN, taskId: 'x', attempt: 1, leaseMs: 0, free: 0, task: body('x', 'unknown') })
      for (const id of ['a', 'b']) {
        w.onAssign(submitter.id, { type: Control.Type.ASSIGN, taskId: id, attempt: 1, leaseMs: 0, free: 0, task: body(id) })
        await waitFor(() => w.runningCount === 0 && w.outbox.holds(submitter.id, id), 5000, 'run and held')
      }
      // two held for this submitter: the next is refused
      w.onAssign(submitter.id, { type: Control.Type.ASSIGN, taskId: 'c', attempt: 1, leaseMs: 0, free: 0, task: body('c') })
      await waitFor(() => channels.of(Control.Type.RESULT).length >= 3, 5000, 'the results')
      const results = (await Promise.all(channels.of(Control.Type.RESULT).map(async m => ResultBatch.decode((await openRecord(m.record as Uint8Array, domains.result)).payload).results))).flat()
      const refused = results.filter(r => r.code === 'rejected').map(r => `${r.taskId}: ${r.error ?? ''}`).sort()
      assert.deepEqual(refused, ['c: too many unacknowledged results', 'x: this worker cannot run the task'])
      assert.equal(w.outbox.held.size, 2)
      assert.equal(w.executed, 2)
      w.stop()
    })

    it('drops announcements over the limits and replays', async () => {
      const { w, drops } = await worker()
      const submitter = await peer()
      const long = await sealRecord(submitter.key, domains.task, Announce.encode({ tasks: [{ task: body('x'.repeat(200)), round: 1 }], issuedAt: BigInt(Date.now()) }))
      await w.onAnnounceRecord(long, submitter.id)
      assert.equal(drops.counts.oversize, 1)
      const ok = await sealRecord(submitter.key, domains.task, Announce.encode({ tasks: [{ task: body('t'), round: 1 }], issuedAt: BigInt(Date.now()) }))
      await w.onAnnounceRecord(ok, submitter.id)
      const replayed = drops.counts.replayed ?? 0
      await w.onAnnounceRecord(ok, submitter.id)
      assert.equal(drops.counts.replayed, replayed + 1)
      const other = await peer()
      await w.onAnnounceRecord(ok, other.id)
      assert.equal(drops.counts.badSignature, 1)
      w.stop()
    })
  })

  describe('ResultOutbox', () => {
    it('sends held results again only while their submitter is connected, and at once when it connects', async () => {
      const self = await peer()
      const submitter = await peer()
      const channels = new FakeChannels()
      let connected = false
      const outbox = new ResultOutbox({ privateKey: self.key, domain: domains.result, channels, isConnected: () => connected, resultRetryMs: 100, limits: { perSubmitter: 10, bytesPerSubmitter: 1 << 20, total: 10, bytesTotal: 1 << 20 }, log })
      outbox.start()
      outbox.send(submitter.id, 't', 1, { ok: true, output: uint8ArrayFromString('1') })
      outbox.send(submitter.id, 'r', 1, { ok: false, code: 'rejected', error: 'no' }, false)
      await waitFor(() => channels.of(Control.Type.RESULT).length === 1, 5000, 'one batch')
      assert.equal(ResultBatch.decode((await openRecord(channels.of(Control.Type.RESULT)[0].record as Uint8Array, domains.result)).payload).results.length, 2)
      assert.equal(outbox.held.size, 1, 'the refusal is not held')
      outbox.sweep(Date.now() + 1000)
      await new Promise(resolve => setTimeout(resolve, 20))
      assert.equal(channels.of(Control.Type.RESULT).length, 1, 'not sent again to a submitter that is not connected')
      connected = true
      outbox.sweep(Date.now() + 1000)
      await waitFor(() => channels.of(Control.Type.RESULT).length === 2, 5000, 'sent again')
      outbox.onPeerConnect(submitter.id)
      await waitFor(() => channels.of(Control.Type.RESULT).length === 3, 5000, 'sent on connect')
      outbox.forget(submitter.id, 't', 2)
      assert.equal(outbox.held.size, 1, 'another attempt is not forgotten')
      outbox.forget(submitter.id, 't', 1)
      assert.equal(outbox.held.size, 0)
      outbox.stop()
    })
  })

  describe('EventBus', () => {
    it('delivers local events, signs and publishes them while someone subscribes, and checks remote ones', async () => {
      const self = await peer()
      const published: Uint8Array[] = []
      const subscribed: string[] = []
      let subscribers = 0
      let listeners = 0
      const delivered: TaskEvent[] = []
      const drops = new Drops()
      const pubsub = {
        subscribe: (t: string) => { subscribed.push(`+${t}`) },
        unsubscribe: (t: string) => { subscribed.push(`-${t}`) },
        publish: async (_t: string, data: Uint8Array) => { published.push(data) },
        getSubscribers: () => Array.from({ length: subscribers }, () => self.id)
      }
      const bus = new EventBus({ self: self.id, privateKey: self.key, pubsub, topic: 'ev', domain: domains.event, publish: true, subscribe: 'on-demand', maxRecordAgeMs: 60_000, log, deliver: e => { delivered.push(e) }, listeners: () => listeners, drop: drops.drop })
      bus.start()
      assert.deepEqual(subscribed, [])
      listeners = 1
      bus.updateSubscription()
      assert.deepEqual(subscribed, ['+ev'])
      bus.emit({ type: 'task.created', taskId: 'a' })
      bus.flush()
      assert.equal(published.length, 0, 'nobody subscribed: nothing signed')
      subscribers = 1
      bus.emit({ type: 'task.running', taskId: 'a' })
      bus.emit({ type: 'task.completed', taskId: 'a', result: 42 })
      bus.flush()
      await waitFor(() => published.length === 1, 5000, 'a batch')
      const batch = EventBatch.decode((await openRecord(published[0], domains.event)).payload)
      assert.deepEqual(batch.events.map(e => e.type), ['task.completed'], 'running is not published, results are not')
      assert.ok(!(batch.events[0].data ?? '').includes('42'))
      assert.deepEqual(delivered.map(e => e.type), ['task.created', 'task.running', 'task.completed'])
      // a remote node's batch, then the same again
      const other = await peer()
      const remote = await sealRecord(other.key, domains.event, EventBatch.encode({ events: [{ type: 'task.dead', taskId: 'b', at: BigInt(Date.now()), seq: 1n, data: JSON.stringify({ reason: 'r' }) }] }))
      await bus.onMessage(remote, other.id)
      await bus.onMessage(remote, other.id)
      const last = delivered[delivered.length - 1]
      assert.equal(last.local, false)
      assert.equal(last.reason, 'r')
      assert.equal(drops.counts.replayed, 1)
      await bus.onMessage(remote, self.id)
      assert.equal(drops.counts.badSignature, 1)
      listeners = 0
      bus.updateSubscription()
      assert.deepEqual(subscribed, ['+ev', '-ev'])
      bus.stop()
    })
  })

  describe('Dispatcher', () => {
    it('assigns an offered task and others of its kind up to the slots, keeps the rest of the offer open, and passes over a worker that failed', async () => {
      const self = await peer()
      const w1 = await peer()
      const w2 = await peer()
      const records = new Map<string, TaskRecord>()
      const assigned: string[] = []
      const channels = new FakeChannels()
      const published: Uint8Array[] = []
      const replies: Control[] = []
      const target = {
        record: (id: string) => records.get(id),
        assign: (r: TaskRecord, worker: PeerId) => { assigned.push(`${r.id}>${worker === w1.id ? 'w1' : 'w2'}`); d.unready(r) }
      }
      const d: Dispatcher = new Dispatcher({ self: self.id, privateKey: self.key, domain: domains.task, channels, publish: async (data) => { published.push(data) }, localWorker: false, considerLocally: () => {}, reply: (_p, m) => { replies.push(m as Control) }, isStarted: () => true, options: { reannounceMs: 60_000, retryElsewhereMs: 60_000, offerTimeoutMs: 3000 }, log, drop: () => {} }, target)
      for (const id of ['a', 'b', 'c']) {
        records.set(id, record(id))
        d.markReady(records.get(id) as TaskRecord)
      }
      d.announce(records.get('a') as TaskRecord)
      d.announce(records.get('b') as TaskRecord)
      await waitFor(() => published.length === 1, 5000, 'one announcement')
      assert.equal(Announce.decode((await openRecord(published[0], domains.task)).payload).tasks.length, 1, 'a kind announced a moment ago is not announced again')
      d.workerFailed('b', w1.id.toString(), Date.now())
      d.onOffer(w1.id, { type: Control.Type.OFFER, taskId: 'a', attempt: 0, leaseMs: 3000, free: 3 })
      assert.deepEqual(assigned, ['a>w1', 'c>w1'], 'b is passed over: w1 failed it')
      // one slot of w1's offer is left open: a new task of the kind goes straight to it
      records.set('d', record('d'))
      d.markReady(records.get('d') as TaskRecord)
      d.announce(records.get('d') as TaskRecord)
      assert.deepEqual(assigned, ['a>w1', 'c>w1', 'd>w1'])
      d.onOffer(w2.id, { type: Control.Type.OFFER, taskId: 'zzz', attempt: 0, leaseMs: 3000, free: 1 })
      assert.equal(replies[0].type, Control.Type.DECLINE)
      d.onOffer(w2.id, { type: Control.Type.OFFER, taskId: 'b', attempt: 0, leaseMs: 3000, free: 1 })
      assert.deepEqual(assigned, ['a>w1', 'c>w1', 'd>w1', 'b>w2'])
      assert.equal(d.announced, 1)
      d.stop()
    })
  })

  describe('ResultIntake', () => {
    it('takes a result only from the lease holder, journals it before completing, and acknowledges', async () => {
      const self = await peer()
      const w = await peer()
      const stranger = await peer()
      const journal = new Journal(new MemoryDatastore(), JOURNAL_PREFIX)
      const channels = new FakeChannels()
      const drops = new Drops()
      const rec = record('t', { state: 'running', attempts: 1, worker: w.id.toString() })
      const completed: unknown[] = []
      const failed: string[] = []
      const target = {
        record: (id: string) => id === 't' ? rec : undefined,
        leaseHolder: (r: TaskRecord | undefined, p: PeerId, attempt: number) => r != null && r.state === 'running' && r.worker === p.toString() && r.attempts === attempt,
        failAttempt: (_r: TaskRecord, reason: string) => { failed.push(reason) },
        completeResult: async (r: TaskRecord, output: unknown, _w: PeerId, _u: number | undefined, ack: () => void) => { r.state = 'completed'; completed.push(output); ack() },
        completeStaged: async () => {}
      }
      const intake = new ResultIntake({ ownId: self.id.toMultihash().bytes, domain: domains.result, journal, channels, maxOutputBytes: 1024, isStarted: () => true, log, drop: drops.drop }, target)
      const seal = async (key: PrivateKey, output: string): Promise<Uint8Array> => sealRecord(key, domains.result, ResultBatch.encode({ results: [{ taskId: 't', attempt: 1, submitter: self.id.toMultihash().bytes, spans: [], ok: true, output: uint8ArrayFromString(JSON.stringify(output)) }] }))
      await intake.onResult(stranger.id, { type: Control.Type.RESULT, taskId: 't', attempt: 1, leaseMs: 0, free: 0, record: await seal(stranger.key, 'forged') })
      assert.equal(drops.counts.notAssigned, 1)
      await intake.onResult(w.id, { type: Control.Type.RESULT, taskId: 't', attempt: 1, leaseMs: 0, free: 0, record: await seal(w.key, 'done') })
      assert.deepEqual(completed, ['done'])
      assert.ok(channels.lazy.some(l => l.message.type === Control.Type.ACK && l.peer.equals(w.id)))
      // the result was staged in the journal on the way (a task at a time)
      await journal.flush()
      assert.equal((await journal.stagedResults()).length, 1)
      assert.deepEqual(failed, [])
    })
  })

  describe('Submitter', () => {
    it('journals a submission, assigns it on an offer, extends the lease on progress and completes it once', async () => {
      const self = await peer()
      const w = await peer()
      const journal = new Journal(new MemoryDatastore(), JOURNAL_PREFIX)
      const channels = new FakeChannels()
      const events: string[] = []
      const s = new Submitter({
        self: self.id,
        privateKey: self.key,
        domains,
        journal,
        channels,
        publish: async () => {},
        localWorker: false,
        considerLocally: () => {},
        reply: (peer, msg) => { channels.sent.push({ peer, message: { attempt: 0, leaseMs: 0, free: 0, ...msg } }) },
        emit: e => { events.push(e.type) },
        isStarted: () => true,
        options: { defaultLeaseMs: MIN_LEASE_MS, defaultMaxAttempts: 2, backoffMs: 10, maxBackoffMs: 100, maxPayloadBytes: 1024, maxOutputBytes: 1024, reannounceMs: 60_000, retryElsewhereMs: 0, offerTimeoutMs: 3000, retainMs: 60_000, maxRetained: 10 },
        log,
        drop: () => {}
      })
      await s.resume()
      const { id } = await s.submit({ capability: 'echo', input: 'hi' })
      assert.equal((await journal.load()).records[0].id, id)
      s.dispatcher.onOffer(w.id, { type: Control.Type.OFFER, taskId: id, attempt: 0, leaseMs: 3000, free: 1 })
      const [assign] = channels.of(Control.Type.ASSIGN)
      assert.equal(assign.taskId, id)
      assert.equal(s.get(id).state, 'assigned')
      s.onProgress(w.id, { type: Control.Type.PROGRESS, taskId: id, attempt: 1, leaseMs: 0, free: 0 })
      assert.equal(s.get(id).state, 'running')
      assert.ok(s.roundTrips.srtt(w.id.toString()) != null, 'the round trip to the worker is measured')
      // the lease outlives its time by the grace, then expires
      s.sweep(Date.now() + MIN_LEASE_MS - 10)
      assert.equal(s.get(id).state, 'running')
      s.sweep(Date.now() + MIN_LEASE_MS + 10_000 + 100)
      assert.equal(s.get(id).state, 'failed')
      assert.match(s.get(id).history.find(h => h.state === 'failed')?.reason ?? '', /lease expired/)
      assert.ok(channels.of(Control.Type.CANCEL).length === 1, 'the worker is told to stop')
      // retried: assigned again on the next offer, and completed
      await new Promise(resolve => setTimeout(resolve, 20))
      s.sweep(Date.now())
      s.dispatcher.onOffer(w.id, { type: Control.Type.OFFER, taskId: id, attempt: 0, leaseMs: 3000, free: 1 })
      assert.equal(s.get(id).attempts, 2)
      await s.completeResult(s.record(id) as TaskRecord, 'hi', w.id, undefined, () => { events.push('ack') })
      assert.equal(s.get(id).state, 'completed')
      assert.deepEqual(events, ['task.created', 'task.assigned', 'task.running', 'task.failed', 'task.assigned', 'ack', 'task.completed'])
      // announced when submitted, and again when it was ready after its backoff
      assert.deepEqual(s.stats(), { submitted: 1, completed: 1, failedAttempts: 1, dead: 0, canceled: 0, announced: 2 })
      s.stop()
    })
  })

  describe('Retention and map tasks', () => {
    it('forgets finished tasks oldest first, and settles a map task from its children', () => {
      const r = new Retention(1000, 2)
      r.retire(record('a'), 1)
      r.retire(record('b'), 2)
      r.retire(record('m', { children: 2 }), 3)
      // a map task's inputs go with it: five tasks tracked, two kept
      assert.deepEqual(r.due(10), ['a', 'b', 'm'], 'beyond maxRetained, the oldest first')
      assert.deepEqual(r.due(5000), ['m.0', 'm.1'], 'after retainMs')
      const parent = record('p', { children: 2 })
      const kids = [record('p.0', { state: 'completed', result: 1 }), record('p.1', { state: 'running' })]
      assert.deepEqual(settleMap(parent, i => kids[i], () => false), { state: 'waiting' })
      kids[1] = record('p.1', { state: 'completed', result: 2 })
      assert.deepEqual(settleMap(parent, i => kids[i], id => id === 'p.1'), { state: 'waiting' })
      assert.deepEqual(settleMap(parent, i => kids[i], () => false), { state: 'completed', results: [1, 2] })
      kids[0] = record('p.0', { state: 'dead', error: 'boom' })
      assert.deepEqual(settleMap(parent, i => kids[i], () => false), { state: 'dead', reason: 'input 0: boom', cancelOthers: 'input 0 of the map task failed' })
    })
  })
})
