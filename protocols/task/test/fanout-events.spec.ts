import assert from 'node:assert/strict'
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
})
