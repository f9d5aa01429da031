import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { MemoryDatastore } from 'datastore-core'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { DOMAIN_RESULT, JOURNAL_PREFIX } from '../src/constants.js'
import { Journal } from '../src/journal.js'
import { ResultBatch } from '../src/pb/task.js'
import { sealRecord } from '../src/signing.js'
import { TestExecutor, connect, createNode, rng, waitFor } from './helpers.js'
import type { Node } from './helpers.js'
import type { TaskService } from '../src/index.js'

function countCompletions (service: TaskService, counts: Map<string, number>): void {
  service.addEventListener('event', (evt) => {
    if (evt.detail.type === 'task.completed' && evt.detail.local && evt.detail.taskId != null) {
      counts.set(evt.detail.taskId, (counts.get(evt.detail.taskId) ?? 0) + 1)
    }
  })
}

describe('resilience', function () {
  this.timeout(120_000)
  let nodes: Node[] = []

  afterEach(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    nodes = []
  })

  it('a restarted submitter completes tasks from results it had staged but not yet applied', async () => {
    // the journal as a crash leaves it between staging a result and writing its task's record
    const submitterKey = await generateKeyPair('Ed25519')
    const workerKey = await generateKeyPair('Ed25519')
    const worker = peerIdFromPrivateKey(workerKey)
    const self = peerIdFromPrivateKey(submitterKey).toMultihash().bytes
    const datastore = new MemoryDatastore()
    const journal = new Journal(datastore, JOURNAL_PREFIX)
    const assigned = (id: string): any => ({
      id,
      state: 'assigned',
      capability: 'work',
      payload: uint8ArrayFromString('1'),
      maxAttempts: 5,
      leaseMs: 30_000,
      timeoutMs: 0,
      deadline: 0,
      createdAt: 1,
      updatedAt: 1,
      attempts: 1,
      worker: worker.toString(),
      round: 1,
      history: [{ at: 1, state: 'submitted', attempt: 0 }, { at: 2, state: 'assigned', attempt: 1, worker: worker.toString() }]
    })
    const sealed = async (id: string, output: string): Promise<Uint8Array> =>
      sealRecord(workerKey, DOMAIN_RESULT, ResultBatch.encode({ results: [{ taskId: id, attempt: 1, submitter: self, spans: [], ok: true, output: uint8ArrayFromString(JSON.stringify(output)) }] }))
    await journal.save(assigned('good'))
    await journal.save(assigned('forged'))
    await journal.stageResult('good', 1, await sealed('good', 'done'))
    const forged = await sealed('forged', 'evil')
    forged[forged.byteLength - 1] ^= 1
    await journal.stageResult('forged', 1, forged)

    const node = await createNode({ privateKey: submitterKey, datastore })
    nodes.push(node)
    const tasks = node.services.tasks
    const good = tasks.get('good')
    assert.equal(good.state, 'completed')
    assert.equal(good.result, 'done')
    assert.deepEqual(good.history.map(h => h.state), ['submitted', 'assigned', 'completed'])
    // a staged record whose signature fails completes nothing: that task is resumed as any other
    assert.equal(tasks.get('forged').state, 'assigned')
    await (tasks as any).journal.flush()
    assert.deepEqual(await journal.stagedResults(), [])
    assert.equal((await journal.load()).records.find(r => r.id === 'good')?.state, 'completed')
  })

  it('a submitter stopped with 100 tasks in flight resumes them from its journal', async () => {
    const random = rng(42)
    const delays = Array.from({ length: 100 }, () => 20 + Math.floor(random() * 80))
    const workers = await Promise.all([0, 1].map(async () => createNode({
      executor: new TestExecutor(['work'], async (i: number) => {
        await new Promise(resolve => setTimeout(resolve, delays[i]))
        return i * i
      }, 4)
    })))
    nodes.push(...workers)
    const datastore = new MemoryDatastore()
    const privateKey = await generateKeyPair('Ed25519')
    const first = await createNode({ datastore, privateKey })
    nodes.push(first)
    for (const w of workers) {
      await connect(first, w)
    }
    const counts = new Map<string, number>()
    countCompletions(first.services.tasks, counts)
    const ids: string[] = []
    for (let i = 0; i < 100; i++) {
      ids.push((await first.services.tasks.submit({ capability: 'work', input: i, leaseMs: 1500 })).id)
    }
    await waitFor(() => counts.size >= 10, 20_000, 'some completions')
    await first.stop()
    nodes = nodes.filter(n => n !== first)
    const inFlight = ids.length - counts.size
    assert.ok(inFlight > 0, 'tasks still in flight when the submitter stopped')

    const second = await createNode({ datastore, privateKey })
    nodes.push(second)
    countCompletions(second.services.tasks, counts)
    for (const w of workers) {
      await connect(second, w)
    }
    await waitFor(() => ids.every(id => second.services.tasks.get(id).state === 'completed'), 60_000, 'all tasks to complete')
    for (const [i, id] of ids.entries()) {
      assert.equal(second.services.tasks.get(id).result, i * i)
      assert.equal(counts.get(id), 1, `task ${i} delivered once`)
    }
    assert.equal(second.services.tasks.stats().dropped.malformed, 0)
  })

  it('1,000 tasks survive workers being stopped and restarted at random', async () => {
    const random = rng(7)
    const makeWorker = async (): Promise<Node> => createNode({
      executor: new TestExecutor(['work'], async (i: number) => {
        await new Promise(resolve => setTimeout(resolve, 1 + (i % 7)))
        return `r${i}`
      }, 8)
    })
    const submitter = await createNode({ init: { defaultMaxAttempts: 50 } })
    nodes.push(submitter)
    let workers = await Promise.all([0, 1, 2, 3].map(makeWorker))
    nodes.push(...workers)
    for (const w of workers) {
      await connect(submitter, w)
    }
    const counts = new Map<string, number>()
    countCompletions(submitter.services.tasks, counts)
    const ids: string[] = []
    for (let i = 0; i < 1000; i++) {
      ids.push((await submitter.services.tasks.submit({ capability: 'work', input: i, leaseMs: 1000 })).id)
    }
    let restarts = 0
    while (counts.size < ids.length && restarts < 12) {
      await new Promise(resolve => setTimeout(resolve, 50 + Math.floor(random() * 200)))
      const victim = Math.floor(random() * workers.length)
      const old = workers[victim]
      await old.stop()
      nodes = nodes.filter(n => n !== old)
      const fresh = await makeWorker()
      nodes.push(fresh)
      workers = workers.map((w, i) => i === victim ? fresh : w)
      await connect(submitter, fresh)
      restarts++
    }
    await waitFor(() => counts.size === ids.length, 60_000, 'all tasks to complete')
    for (const [i, id] of ids.entries()) {
      const info = submitter.services.tasks.get(id)
      assert.equal(info.state, 'completed')
      assert.equal(info.result, `r${i}`)
      assert.equal(counts.get(id), 1)
    }
    assert.ok(restarts > 0)
  })
})
