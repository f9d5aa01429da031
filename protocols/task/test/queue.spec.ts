import assert from 'node:assert/strict'
import { MemoryDatastore } from 'datastore-core'
import { JOURNAL_PREFIX, MIN_LEASE_MS } from '../src/constants.js'
import { Journal, decodeRecord } from '../src/journal.js'
import { TestExecutor, connect, createNode, echo, hang, nextEvent, waitFor } from './helpers.js'
import type { Node } from './helpers.js'
import type { TaskEvent } from '../src/index.js'

describe('task queue over real nodes', function () {
  this.timeout(60_000)
  let nodes: Node[] = []

  afterEach(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    nodes = []
  })

  async function start (...opts: Array<Parameters<typeof createNode>[0]>): Promise<Node[]> {
    const created = await Promise.all(opts.map(async o => createNode(o)))
    nodes.push(...created)
    return created
  }

  it('runs a task on a worker and delivers the result', async () => {
    const worker = new TestExecutor(['echo'], echo)
    const datastore = new MemoryDatastore()
    const [submitter, w] = await start({ datastore }, { executor: worker })
    await connect(submitter, w)
    const events: TaskEvent[] = []
    submitter.services.tasks.addEventListener('event', e => { events.push(e.detail) })
    const done = nextEvent(submitter.services.tasks, e => e.type === 'task.completed')
    const { id, state } = await submitter.services.tasks.submit({ capability: 'echo', input: { hello: 'world' } })
    assert.equal(state, 'submitted')
    await done
    const info = submitter.services.tasks.get(id)
    assert.equal(info.state, 'completed')
    assert.deepEqual(info.result, { hello: 'world' })
    assert.equal(info.worker, w.peerId.toString())
    assert.equal(info.attempts, 1)
    assert.deepEqual(info.history.map(h => h.state), ['submitted', 'assigned', 'running', 'completed'])
    assert.deepEqual(events.filter(e => e.taskId === id).map(e => e.type), ['task.created', 'task.assigned', 'task.running', 'task.completed'])
    assert.equal(submitter.services.tasks.list({ state: 'completed' }).length, 1)
    // the journal keeps the result of a completed task, not its input any more (once written:
    // with the result staged, the task's own entry follows in the background)
    await (submitter.services.tasks as any).journal.flush()
    const stored = decodeRecord(await datastore.get(new Journal(datastore, JOURNAL_PREFIX).key(id)))
    assert.equal(stored.state, 'completed')
    assert.deepEqual(stored.result, { hello: 'world' })
    assert.equal(stored.payload, undefined)
  })

  it('forgets finished tasks retainMs after they end, and beyond maxRetained the oldest first', async () => {
    const datastore = new MemoryDatastore()
    const [submitter, w] = await start({ datastore, init: { maxRetained: 2 } }, { executor: new TestExecutor(['echo'], echo) })
    await connect(submitter, w)
    const tasks = submitter.services.tasks
    const journal = new Journal(datastore, JOURNAL_PREFIX)
    const ids: string[] = []
    for (let i = 0; i < 4; i++) {
      const done = nextEvent(tasks, e => e.type === 'task.completed')
      ids.push((await tasks.submit({ capability: 'echo', input: i })).id)
      await done
    }
    // the two oldest go at the next sweep, from memory and from the journal
    await waitFor(() => tasks.list({ state: 'completed' }).length === 2, 5000, 'two tasks kept')
    assert.throws(() => tasks.get(ids[0]), { name: 'TaskNotFoundError' })
    assert.equal(tasks.get(ids[3]).result, 3)
    await (tasks as any).journal.flush()
    assert.deepEqual((await journal.load()).records.map(r => r.id).sort(), [ids[2], ids[3]].sort())

    // and any finished task once retainMs has passed
    const [short, w2] = await start({ init: { retainMs: 200 } }, { executor: new TestExecutor(['echo'], echo) })
    await connect(short, w2)
    const done = nextEvent(short.services.tasks, e => e.type === 'task.completed')
    const { id } = await short.services.tasks.submit({ capability: 'echo', input: 'brief' })
    await done
    assert.equal(short.services.tasks.get(id).state, 'completed')
    await waitFor(() => short.services.tasks.list().length === 0, 5000, 'the task forgotten')
  })

  it('gives a task at a time to the worker that delivered the last result, and tasks submitted together to several', async () => {
    const [submitter, a, b] = await start({}, { executor: new TestExecutor(['echo'], echo) }, { executor: new TestExecutor(['echo'], echo) })
    await connect(submitter, a)
    await connect(submitter, b)
    const tasks = submitter.services.tasks
    const workers: string[] = []
    for (let i = 0; i < 12; i++) {
      const done = nextEvent(tasks, e => e.type === 'task.completed')
      const { id } = await tasks.submit({ capability: 'echo', input: i })
      await done
      workers.push(tasks.get(id).worker ?? '')
    }
    // each worker's open offer is for 4 slots: runs of tasks on one worker, where taking
    // turns would switch at (nearly) every task
    const switches = workers.filter((w, i) => i > 0 && w !== workers[i - 1]).length
    assert.ok(switches <= 5, `the worker changed ${switches} times in 12 tasks: ${workers.map(w => w.slice(-4)).join(' ')}`)
    const ids = await Promise.all(Array.from({ length: 8 }, async (_, i) => (await tasks.submit({ capability: 'echo', input: i })).id))
    await waitFor(() => ids.every(id => tasks.get(id).state === 'completed'), 10_000, 'eight tasks completed')
    assert.equal(new Set(ids.map(id => tasks.get(id).worker)).size, 2)
  })

  it('fetches inputs larger than 64 KiB over the task protocol', async () => {
    const worker = new TestExecutor(['len'], async (input: string) => input.length)
    const [submitter, w] = await start({}, { executor: worker })
    await connect(submitter, w)
    const big = 'x'.repeat(200 * 1024)
    const { id } = await submitter.services.tasks.submit({ capability: 'len', input: big })
    await waitFor(() => submitter.services.tasks.get(id).state === 'completed')
    assert.equal(submitter.services.tasks.get(id).result, big.length)
  })

  it('re-runs a task on another worker when its worker stops mid-task', async () => {
    const slow = new TestExecutor(['job'], hang)
    const [submitter, a] = await start({}, { executor: slow })
    await connect(submitter, a)
    const running = nextEvent(submitter.services.tasks, e => e.type === 'task.running')
    const { id } = await submitter.services.tasks.submit({ capability: 'job', input: 7 })
    assert.equal((await running).worker, a.peerId.toString())
    const [b] = await start({ executor: new TestExecutor(['job'], async (n: number) => n * 2) })
    await connect(submitter, b)
    await a.stop()
    await waitFor(() => submitter.services.tasks.get(id).state === 'completed')
    const info = submitter.services.tasks.get(id)
    assert.equal(info.result, 14)
    assert.equal(info.worker, b.peerId.toString())
    assert.equal(info.attempts, 2)
    assert.match(info.history.find(h => h.state === 'failed')?.reason ?? '', /worker lost/)
  })

  it('retries elsewhere when a handler fails, hangs past its timeout or returns too much', async () => {
    const bad = new TestExecutor(['fail', 'hang', 'big'], async (input: { kind: string }) => {
      if (input.kind === 'fail') {
        throw new Error('boom')
      }
      if (input.kind === 'hang') {
        return new Promise(() => {})
      }
      return 'y'.repeat(4096)
    })
    const [submitter, badNode] = await start({}, { executor: bad, init: { maxOutputBytes: 1024 } })
    await connect(submitter, badNode)
    const fail = await submitter.services.tasks.submit({ capability: 'fail', input: { kind: 'fail' } })
    const hung = await submitter.services.tasks.submit({ capability: 'hang', input: { kind: 'hang' }, timeoutMs: 200 })
    const big = await submitter.services.tasks.submit({ capability: 'big', input: { kind: 'big' } })
    const ids = [fail.id, hung.id, big.id]
    // all three fail once on the bad worker
    await waitFor(() => ids.every(id => submitter.services.tasks.get(id).history.some(h => h.state === 'failed')))
    const good = new TestExecutor(['fail', 'hang', 'big'], async () => 'ok', 8)
    const [goodNode] = await start({ executor: good })
    await connect(submitter, goodNode)
    // the bad worker has no free slot for the hung task any more, and is passed over for a while
    await waitFor(() => ids.every(id => submitter.services.tasks.get(id).state === 'completed'), 30_000, 'retries')
    for (const id of ids) {
      assert.equal(submitter.services.tasks.get(id).worker, goodNode.peerId.toString())
    }
    const reason = (id: string): string => submitter.services.tasks.get(id).history.find(h => h.state === 'failed')?.reason ?? ''
    assert.match(reason(fail.id), /handler-error: boom/)
    assert.match(reason(hung.id), /timeout/)
    assert.match(reason(big.id), /output-too-large/)
  })

  it('dead-letters a task after maxAttempts with the reason of each attempt', async () => {
    const failing = new TestExecutor(['fail'], async () => { throw new Error('always') })
    const [submitter, w] = await start({ init: { backoffMs: 100 } }, { executor: failing })
    await connect(submitter, w)
    const dead = nextEvent(submitter.services.tasks, e => e.type === 'task.dead')
    const { id } = await submitter.services.tasks.submit({ capability: 'fail', input: 1, maxAttempts: 3 })
    await dead
    const info = submitter.services.tasks.get(id)
    assert.equal(info.state, 'dead')
    assert.equal(info.attempts, 3)
    assert.equal(info.history.filter(h => h.state === 'failed').length, 3)
    assert.match(info.error ?? '', /#1: handler-error: always; #2: handler-error: always; #3/)
    // backoff: the gaps between attempts grow
    const assigned = info.history.filter(h => h.state === 'assigned').map(h => h.at)
    assert.equal(assigned.length, 3)
    assert.ok(assigned[1] - assigned[0] >= 100, 'first backoff')
    assert.ok(assigned[2] - assigned[1] >= 200, 'second backoff doubles')
  })

  it('cancels a running task and stops the worker', async () => {
    let aborted = false
    const ex = new TestExecutor(['job'], async (_input, ctx) => new Promise((_resolve, reject) => {
      ctx.signal.addEventListener('abort', () => { aborted = true; reject(new Error('aborted')) })
    }))
    const [submitter, w] = await start({}, { executor: ex })
    await connect(submitter, w)
    const running = nextEvent(submitter.services.tasks, e => e.type === 'task.running')
    const { id } = await submitter.services.tasks.submit({ capability: 'job', input: 1 })
    await running
    const info = await submitter.services.tasks.cancel(id)
    assert.equal(info.state, 'canceled')
    await waitFor(() => aborted, 5000, 'worker abort')
    await assert.rejects(submitter.services.tasks.cancel('nope'), { name: 'TaskNotFoundError' })
  })

  it('sends a task to one named peer', async () => {
    const [submitter, a, b] = await start({}, { executor: new TestExecutor(['echo'], echo) }, { executor: new TestExecutor(['echo'], echo) })
    await connect(submitter, a)
    await connect(submitter, b)
    const ids: string[] = []
    for (let i = 0; i < 6; i++) {
      ids.push((await submitter.services.tasks.submit({ capability: 'echo', input: i, to: b.peerId.toString() })).id)
    }
    await waitFor(() => ids.every(id => submitter.services.tasks.get(id).state === 'completed'))
    for (const id of ids) {
      assert.equal(submitter.services.tasks.get(id).worker, b.peerId.toString())
    }
  })

  it('expires the lease of a silent worker and re-assigns', async () => {
    const [submitter, mute] = await start({}, { executor: new TestExecutor(['job'], hang, 1) })
    await connect(submitter, mute)
    const running = nextEvent(submitter.services.tasks, e => e.type === 'task.running')
    const { id } = await submitter.services.tasks.submit({ capability: 'job', input: 3, leaseMs: MIN_LEASE_MS })
    await running
    // from now on the worker's heartbeats never arrive
    ;(mute.services.tasks as any).channels.send = async () => {}
    const [helper] = await start({ executor: new TestExecutor(['job'], echo) })
    await connect(submitter, helper)
    await waitFor(() => submitter.services.tasks.get(id).state === 'completed')
    const info = submitter.services.tasks.get(id)
    assert.equal(info.worker, helper.peerId.toString())
    assert.match(info.history.find(h => h.state === 'failed')?.reason ?? '', /lease expired/)
  })
})
