import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { loadavg } from 'node:os'
import { MIN_LEASE_MS } from '../src/constants.js'
import { Control } from '../src/pb/task.js'
import { TestExecutor, connect, createNode, waitFor } from './helpers.js'
import type { Node } from './helpers.js'
import type { TaskEvent } from '../src/index.js'
import type { ChildProcess } from 'node:child_process'

/** CPU-bound processes, each spinning for at most `ms` */
function cpuHogs (count: number, ms: number): ChildProcess[] {
  return Array.from({ length: count }, () => spawn(process.execPath, ['-e', `const end = Date.now() + ${ms}; while (Date.now() < end) {}`], { stdio: 'ignore' }))
}

/** Busy for `ms` in slices of 20 ms of blocked event loop: a handler that keeps its worker's thread busy */
async function busy (ms: number): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    const slice = Date.now() + 20
    while (Date.now() < slice) {
      // spin
    }
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

describe('leases under CPU load', function () {
  this.timeout(120_000)
  let nodes: Node[] = []
  let hogs: ChildProcess[] = []

  afterEach(async () => {
    for (const hog of hogs) {
      if (hog.exitCode == null) {
        hog.kill('SIGKILL')
      }
    }
    hogs = []
    await Promise.all(nodes.map(async n => n.stop()))
    nodes = []
  })

  it('tasks with the minimum lease complete on their first attempt, without dead letters, beside CPU-bound processes', async () => {
    const ex = new TestExecutor(['work'], async (n: number) => { await busy(3 * MIN_LEASE_MS); return n * 2 }, 4)
    const [submitter, worker] = await Promise.all([createNode({ init: { defaultMaxAttempts: 1 } }), createNode({ executor: ex })])
    nodes.push(submitter, worker)
    await connect(submitter, worker)
    // when the worker renews its leases
    const renewals = new Map<string, number[]>()
    const channels = (worker.services.tasks as any).channels
    const send = channels.send.bind(channels)
    channels.send = async (peer: any, msg: Control) => {
      if (msg.type === Control.Type.PROGRESS) {
        renewals.set(msg.taskId, [...(renewals.get(msg.taskId) ?? []), Date.now()])
      }
      return send(peer, msg)
    }
    const events: TaskEvent[] = []
    submitter.services.tasks.addEventListener('event', e => { events.push(e.detail) })
    // three processes spinning beside the test's own on two cores, for at most 40 s
    hogs = cpuHogs(3, 40_000)
    await new Promise(resolve => setTimeout(resolve, 1000))
    const load = loadavg()[0]
    const tasks = submitter.services.tasks
    const ids = await Promise.all(Array.from({ length: 8 }, async (_, i) => (await tasks.submit({ capability: 'work', input: i, leaseMs: MIN_LEASE_MS })).id))
    await waitFor(() => ids.every(id => ['completed', 'dead'].includes(tasks.get(id).state)), 90_000, 'the tasks to end')
    const gaps = [...renewals.values()].flatMap(times => times.slice(1).map((t, i) => t - times[i]))
    const rtt = (tasks as any).submitter.roundTrips.srtt(worker.peerId.toString())
    console.log(`      load average ${load.toFixed(1)}: ${gaps.length} renewals, the longest gap ${Math.max(...gaps)} ms (lease ${MIN_LEASE_MS} ms), ` +
      `round trip to the worker ${Math.round(rtt)} ms, grace ${(tasks as any).submitter.roundTrips.grace(worker.peerId.toString())} ms`)
    for (const [i, id] of ids.entries()) {
      const info = tasks.get(id)
      assert.equal(info.state, 'completed', `task ${i}: ${info.error ?? ''}`)
      assert.equal(info.result, i * 2)
      assert.equal(info.attempts, 1)
    }
    assert.equal(events.filter(e => e.type === 'task.failed' || e.type === 'task.dead').length, 0)
    assert.equal(tasks.stats().dead, 0)
    assert.equal(ex.runs, 8)
  })
})
