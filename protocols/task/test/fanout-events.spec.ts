import assert from 'node:assert/strict'
import { Control } from '../src/pb/task.js'
import { TestExecutor, connect, createNode, waitFor } from './helpers.js'
import type { Node } from './helpers.js'
import type { TaskEvent } from '../src/index.js'

describe('map tasks and events', function () {
  this.timeout(60_000)
  let nodes: Node[] = []

  afterEach(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    nodes = []
  })

  it('spreads a map task over workers and returns results in input order', async () => {
    const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
    const a = new TestExecutor(['upper'], async (s: string) => { await delay(s.length); return s.toUpperCase() }, 2)
    const b = new TestExecutor(['upper'], async (s: string) => { await delay(1); return s.toUpperCase() }, 2)
    const [submitter, wa, wb] = await Promise.all([createNode(), createNode({ executor: a }), createNode({ executor: b })])
    nodes.push(submitter, wa, wb)
    await connect(submitter, wa)
    await connect(submitter, wb)
    const chunks = Array.from({ length: 20 }, (_, i) => `chunk-${i}-${'x'.repeat(20 - i)}`)
    const { id } = await submitter.services.tasks.submit({ capability: 'upper', inputs: chunks })
    await waitFor(() => submitter.services.tasks.get(id).state === 'completed')
    const info = submitter.services.tasks.get(id)
    assert.deepEqual(info.result, chunks.map(c => c.toUpperCase()))
    assert.equal(info.children, 20)
    assert.ok(a.runs > 0 && b.runs > 0, 'both workers took part')
    assert.equal(submitter.services.tasks.list({ parent: id }).length, 20)
  })

  it('dead-letters a map task when one input fails for good', async () => {
    const ex = new TestExecutor(['parse'], async (s: string) => {
      if (s === 'bad') {
        throw new Error('cannot parse')
      }
      return s.length
    })
    const [submitter, w] = await Promise.all([createNode(), createNode({ executor: ex })])
    nodes.push(submitter, w)
    await connect(submitter, w)
    const { id } = await submitter.services.tasks.submit({ capability: 'parse', inputs: ['a', 'bad', 'ccc'], maxAttempts: 2 })
    await waitFor(() => submitter.services.tasks.get(id).state === 'dead')
    assert.match(submitter.services.tasks.get(id).error ?? '', /input 1: dead after 2 attempts/)
  })

  it('emits lifecycle events locally, per task, and signed on the events topic', async () => {
    const [submitter, w, observer] = await Promise.all([createNode(), createNode({ executor: new TestExecutor(['echo'], async x => x) }), createNode()])
    nodes.push(submitter, w, observer)
    const joined: TaskEvent[] = []
    submitter.services.tasks.addEventListener('event', e => { if (e.detail.type === 'agent.joined') joined.push(e.detail) })
    await connect(submitter, w)
    await connect(observer, submitter)
    await waitFor(() => joined.some(e => e.peer === w.peerId.toString()), 5000, 'agent joined')
    const events = submitter.services.tasks.events()
    const remote: TaskEvent[] = []
    observer.services.tasks.addEventListener('event', e => { if (!e.detail.local) remote.push(e.detail) })
    // listening subscribes the observer to the events topic; events go out once the submitter knows
    await waitFor(() => submitter.services.pubsub.getSubscribers(submitter.services.tasks.eventsTopic).some(p => p.equals(observer.peerId)), 5000, 'observer subscribed to events')
    const { id } = await submitter.services.tasks.submit({ capability: 'echo', input: 'x' })
    const controller = new AbortController()
    const perTask: string[] = []
    const watch = (async () => {
      for await (const e of submitter.services.tasks.events({ taskId: id, signal: controller.signal })) {
        perTask.push(e.type)
        if (e.type === 'task.completed') {
          break
        }
      }
    })()
    // the global iterator also sees the task
    for await (const e of events) {
      if (e.taskId === id && e.type === 'task.completed') {
        assert.equal(e.result, 'x')
        break
      }
    }
    await watch
    assert.ok(perTask.includes('task.completed'))
    await waitFor(() => remote.some(e => e.taskId === id && e.type === 'task.completed'), 5000, 'remote completed event')
    const types = remote.filter(e => e.taskId === id).map(e => e.type)
    assert.deepEqual(types, ['task.created', 'task.assigned', 'task.completed'])
    // the task's events come from its submitter (the worker may publish events of its own, such as agent.joined)
    for (const e of remote.filter(e => e.taskId === id)) {
      assert.equal(e.origin, submitter.peerId.toString())
    }
  })

  it('subscribes to events only while something listens, and publishes none that nobody receives', async () => {
    const [submitter, w, observer] = await Promise.all([createNode(), createNode({ executor: new TestExecutor(['echo'], async x => x) }), createNode()])
    nodes.push(submitter, w, observer)
    await connect(submitter, w)
    await connect(observer, submitter)
    const eventsTopic = submitter.services.tasks.eventsTopic
    const subscribed = (n: typeof observer): boolean => n.services.pubsub.getTopics().includes(eventsTopic)
    assert.equal(subscribed(observer), false, 'no listener, no subscription')
    assert.equal(subscribed(w), false)

    // nobody listens anywhere: tasks complete and no event batch is signed or sent
    for (let i = 0; i < 5; i++) {
      const { id } = await submitter.services.tasks.submit({ capability: 'echo', input: i })
      await waitFor(() => submitter.services.tasks.get(id).state === 'completed')
    }
    assert.equal(submitter.services.tasks.stats().eventBatches, 0)

    // a listener subscribes the observer, and the submitter's events reach it
    const remote: TaskEvent[] = []
    const listener = (e: CustomEvent<TaskEvent>): void => { if (!e.detail.local) remote.push(e.detail) }
    observer.services.tasks.addEventListener('event', listener)
    assert.equal(subscribed(observer), true)
    await waitFor(() => submitter.services.pubsub.getSubscribers(eventsTopic).some(p => p.equals(observer.peerId)), 5000, 'observer subscribed')
    const { id } = await submitter.services.tasks.submit({ capability: 'echo', input: 'seen' })
    await waitFor(() => remote.some(e => e.taskId === id && e.type === 'task.completed'), 5000, 'remote completed event')
    assert.ok(submitter.services.tasks.stats().eventBatches > 0)

    // the last listener gone: unsubscribed again, and the submitter stops publishing
    observer.services.tasks.removeEventListener('event', listener)
    assert.equal(subscribed(observer), false)
    await waitFor(() => submitter.services.pubsub.getSubscribers(eventsTopic).length === 0, 5000, 'observer unsubscribed')
    const batches = submitter.services.tasks.stats().eventBatches
    const again = await submitter.services.tasks.submit({ capability: 'echo', input: 'unseen' })
    await waitFor(() => submitter.services.tasks.get(again.id).state === 'completed')
    assert.equal(submitter.services.tasks.stats().eventBatches, batches)
    assert.equal(remote.some(e => e.taskId === again.id), false)
  })

  it('subscribeEvents true keeps a node subscribed without listeners; false never subscribes', async () => {
    const [always, never] = await Promise.all([createNode({ init: { subscribeEvents: true } }), createNode({ init: { subscribeEvents: false } })])
    nodes.push(always, never)
    const topic = always.services.tasks.eventsTopic
    assert.equal(always.services.pubsub.getTopics().includes(topic), true)
    never.services.tasks.addEventListener('event', () => {})
    assert.equal(never.services.pubsub.getTopics().includes(topic), false)
  })

  it('announces a burst of tasks of one kind once: the worker pulls the rest with its offers', async () => {
    const ex = new TestExecutor(['echo'], async x => x, 2)
    const [submitter, w] = await Promise.all([createNode({ init: { reannounceMs: 60_000 } }), createNode({ executor: ex })])
    nodes.push(submitter, w)
    await connect(submitter, w)
    const ids: string[] = []
    for (let i = 0; i < 40; i++) {
      ids.push((await submitter.services.tasks.submit({ capability: 'echo', input: i })).id)
    }
    await waitFor(() => ids.every(id => submitter.services.tasks.get(id).state === 'completed'), 20_000, 'all tasks completed')
    assert.deepEqual(ids.map(id => submitter.services.tasks.get(id).result), Array.from({ length: 40 }, (_, i) => i))
    // the first task of the burst is announced; the others wait in the queue and go out on offers
    const announced = submitter.services.tasks.stats().announced
    assert.ok(announced < 5, `${announced} announcements for 40 tasks`)
    assert.equal(ex.runs, 40)
  })

  it('signs the results a worker finishes in the same tick as one batch', async () => {
    const gate = Promise.withResolvers<void>()
    let started = 0
    const ex = new TestExecutor(['slow'], async (x) => { started++; await gate.promise; return x }, 8)
    const [submitter, w] = await Promise.all([createNode(), createNode({ executor: ex })])
    nodes.push(submitter, w)
    await connect(submitter, w)
    const channels = (w.services.tasks as any).channels
    const send = channels.send.bind(channels)
    let resultFrames = 0
    channels.send = async (peer: any, msg: any) => {
      if (msg.type === Control.Type.RESULT) {
        resultFrames++
      }
      return send(peer, msg)
    }
    const ids: string[] = []
    for (let i = 0; i < 8; i++) {
      ids.push((await submitter.services.tasks.submit({ capability: 'slow', input: i })).id)
    }
    await waitFor(() => started === 8, 10_000, 'all eight running')
    gate.resolve()
    await waitFor(() => ids.every(id => submitter.services.tasks.get(id).state === 'completed'), 10_000, 'all completed')
    assert.deepEqual(ids.map(id => submitter.services.tasks.get(id).result), [0, 1, 2, 3, 4, 5, 6, 7])
    assert.equal(resultFrames, 1, 'eight results, one signed RESULT frame')
  })
})
