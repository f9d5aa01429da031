import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, removeTempDirs, startNodeProcess, takeSseMessages, tempDir, waitFor } from './helpers.js'
import type { NodeProcess, SseMessage } from './helpers.js'
import type { RunInfo } from '../src/run-file.js'

/**
 * An exec capability that holds each task until the file `release` exists (polling it, for at
 * most a minute), then echoes its input: tasks stay in flight for as long as a test needs.
 */
function gatedCapability (release: string, concurrency: number): unknown {
  const script = 'i=0; while [ ! -e "$RELEASE" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; exec cat'
  return {
    name: 'gated-echo',
    description: 'Echo the input once the gate opens',
    handler: { type: 'exec', command: ['/bin/sh', '-c', script], env: { RELEASE: release }, timeoutMs: 120_000, concurrency }
  }
}

/** An exec capability that takes a fifth of a second, then echoes its input */
const slowEcho = {
  name: 'slow-echo',
  description: 'Echo the input after a fifth of a second',
  handler: { type: 'exec', command: ['/bin/sh', '-c', 'sleep 0.2; exec cat'], timeoutMs: 30_000, concurrency: 4 }
}

/** Deterministic PRNG (mulberry32), so that a failing run of the chaos test can be replayed */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Collects a node's server-sent events in the background until closed */
async function collectEvents (run: RunInfo, path: string): Promise<{ messages: SseMessage[], close: () => void }> {
  const controller = new AbortController()
  const response = await fetch(run.api.url + path, { headers: { authorization: `Bearer ${run.api.token}` }, signal: controller.signal })
  assert.equal(response.status, 200)
  const messages: SseMessage[] = []
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  ;(async () => {
    const decoder = new TextDecoder()
    let buffer = ''
    while (true) {
      const { done, value } = await reader.read()
      if (done) return
      const taken = takeSseMessages(buffer + decoder.decode(value, { stream: true }))
      buffer = taken.rest
      messages.push(...taken.messages)
    }
  })().catch(() => {})
  return { messages, close: () => { controller.abort() } }
}

async function homeWith (capabilities: unknown[]): Promise<string> {
  const home = await tempDir()
  await writeFile(join(home, 'config.json'), JSON.stringify({ capabilities }))
  return home
}

async function killed (node: NodeProcess): Promise<void> {
  node.child.kill('SIGKILL')
  await node.stop()
}

describe('task queue across node processes killed with SIGKILL', function () {
  this.timeout(120_000)
  let nodes: NodeProcess[] = []
  let release: string

  async function start (home: string, args: string[] = []): Promise<NodeProcess> {
    const node = await startNodeProcess(home, args)
    nodes.push(node)
    return node
  }

  async function connected (node: NodeProcess, peers: NodeProcess[]): Promise<void> {
    await waitFor(async () => {
      const { json } = await api(node.run, 'GET', '/v1/peers')
      const ids = new Set((json?.peers ?? []).map((p: any) => p.peerId))
      return peers.every(p => ids.has(p.run.peerId))
    }, { what: 'the workers to be connected', timeoutMs: 30_000 })
  }

  beforeEach(async () => {
    release = join(await tempDir(), 'release')
  })

  afterEach(async () => {
    // open the gate so that handler processes of killed workers end too
    await writeFile(release, '').catch(() => {})
    await Promise.all(nodes.map(killed))
    nodes = []
    await removeTempDirs()
  })

  it('a task whose worker is killed in the middle completes on another worker', async () => {
    const workers = [
      await start(await homeWith([gatedCapability(release, 4)])),
      await start(await homeWith([gatedCapability(release, 4)]))
    ]
    const submitter = await start(await tempDir(), workers.flatMap(w => ['--bootstrap', w.run.multiaddrs[0]]))
    await connected(submitter, workers)

    const submitted = await api(submitter.run, 'POST', '/v1/tasks', { body: { capability: 'gated-echo', input: 'survives a dead worker' } })
    assert.equal(submitted.status, 202, submitted.text)
    const id = submitted.json.id
    const running = await waitFor(async () => {
      const { json } = await api(submitter.run, 'GET', `/v1/tasks/${id as string}`)
      return json.state === 'running' ? json : undefined
    }, { what: 'the task to run', timeoutMs: 30_000 })
    const victim = workers.find(w => w.run.peerId === running.worker)
    assert.ok(victim != null, 'the task runs on one of the workers')
    const survivor = workers.find(w => w !== victim) as NodeProcess

    await killed(victim)
    await writeFile(release, '')
    const done = await waitFor(async () => {
      const { json } = await api(submitter.run, 'GET', `/v1/tasks/${id as string}`)
      return json.state === 'completed' ? json : undefined
    }, { what: 'the task to complete elsewhere', timeoutMs: 45_000 })
    assert.equal(done.result, 'survives a dead worker')
    assert.equal(done.worker, survivor.run.peerId)
    assert.equal(done.attempts, 2)
    const failed = done.history.find((h: any) => h.state === 'failed')
    assert.equal(failed?.worker, victim.run.peerId)
    assert.match(failed?.reason, /worker lost/)
    assert.equal(done.history.filter((h: any) => h.state === 'completed').length, 1)
  })

  it('a submitter killed with 100 tasks in flight completes all of them once after a restart', async () => {
    const workers = [
      await start(await homeWith([gatedCapability(release, 10)])),
      await start(await homeWith([gatedCapability(release, 10)]))
    ]
    const bootstrap = workers.flatMap(w => ['--bootstrap', w.run.multiaddrs[0]])
    const home = await tempDir()
    const submitter = await start(home, bootstrap)
    await connected(submitter, workers)

    const inputs = new Map<string, string>()
    await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const res = await api(submitter.run, 'POST', '/v1/tasks', { body: { capability: 'gated-echo', input: `task ${i}`, leaseMs: 10_000 } })
      assert.equal(res.status, 202, res.text)
      inputs.set(res.json.id, `task ${i}`)
    }))
    // every slot of both workers is taken: 20 tasks running, 80 waiting, none finished
    const running: string[] = await waitFor(async () => {
      const { json } = await api(submitter.run, 'GET', '/v1/tasks?state=running&limit=10000')
      return json.total >= 20 ? json.tasks.map((t: any) => t.id) : undefined
    }, { what: '20 tasks running', timeoutMs: 30_000 })

    await killed(submitter)
    nodes = nodes.filter(n => n !== submitter)
    // the running tasks finish while the submitter is down; their workers hold the results
    await writeFile(release, '')
    const restarted = await start(home, bootstrap)
    assert.equal(restarted.run.peerId, submitter.run.peerId)

    const { json } = await waitFor(async () => {
      const res = await api(restarted.run, 'GET', '/v1/tasks?limit=10000')
      return res.json.tasks.every((t: any) => t.state === 'completed') ? res : undefined
    }, { what: 'all 100 tasks completed', timeoutMs: 60_000, intervalMs: 250 })
    assert.equal(json.tasks.length, 100)
    for (const task of json.tasks) {
      assert.equal(task.result, inputs.get(task.id), `the result of ${task.id as string}`)
      assert.equal(task.history.filter((h: any) => h.state === 'completed').length, 1, `${task.id as string} completed once`)
    }
    // the tasks that were running when the submitter died were not run again: their workers
    // delivered the results they held once the submitter was back
    for (const id of running) {
      assert.equal(json.tasks.find((t: any) => t.id === id)?.attempts, 1, `${id} ran once`)
    }
  })

  it('1,000 tasks while worker processes are killed and restarted at random: none lost, none delivered twice', async function () {
    this.timeout(240_000)
    const random = rng(0xA157AC)
    const submitter = await start(await tempDir())
    const bootstrap = ['--bootstrap', submitter.run.multiaddrs[0]]
    const homes = await Promise.all(Array.from({ length: 4 }, async () => homeWith([slowEcho])))
    const workers: NodeProcess[] = []
    for (const home of homes) workers.push(await start(home, bootstrap))
    await connected(submitter, workers)
    const completions = await collectEvents(submitter.run, '/v1/events?type=task.completed')
    const completedIds = (): Set<string> => new Set(completions.messages.filter(m => m.data.local === true).map(m => m.data.taskId))

    // submit 1,000 tasks through the API, 16 requests at a time
    const inputs = new Map<string, string>()
    let next = 0
    const submitting = Promise.all(Array.from({ length: 16 }, async () => {
      while (next < 1000) {
        const input = `task ${next++}`
        const res = await api(submitter.run, 'POST', '/v1/tasks', { body: { capability: 'slow-echo', input, maxAttempts: 50 } })
        assert.equal(res.status, 202, res.text)
        inputs.set(res.json.id, input)
      }
    }))

    // meanwhile: SIGKILL a random worker, start it again on the same home a moment later
    let kills = 0
    while (kills < 6 && completedIds().size < 1000) {
      await new Promise(resolve => setTimeout(resolve, 300 + Math.floor(random() * 500)))
      const i = Math.floor(random() * workers.length)
      const victim = workers[i]
      await killed(victim)
      nodes = nodes.filter(n => n !== victim)
      kills++
      await new Promise(resolve => setTimeout(resolve, 100 + Math.floor(random() * 300)))
      workers[i] = await start(victim.home, bootstrap)
    }
    await submitting
    assert.equal(inputs.size, 1000)
    await waitFor(() => completedIds().size === 1000, { what: 'all 1,000 tasks completed', timeoutMs: 120_000, intervalMs: 200 })

    const { json } = await api(submitter.run, 'GET', '/v1/tasks?limit=10000')
    completions.close()
    assert.equal(json.tasks.length, 1000)
    for (const task of json.tasks) {
      assert.equal(task.state, 'completed', `${task.id as string} completed`)
      assert.equal(task.result, inputs.get(task.id), `the result of ${task.id as string}`)
      assert.equal(task.history.filter((h: any) => h.state === 'completed').length, 1, `${task.id as string} completed once in its history`)
    }
    // each result was delivered once: one task.completed event per task
    const delivered = completions.messages.filter(m => m.data.local === true)
    assert.equal(delivered.length, 1000, 'one completion event per task')
    assert.ok(kills >= 3, `${kills} workers killed`)
    // the kills hit running tasks, which then ran again elsewhere
    assert.ok(json.tasks.some((t: any) => t.attempts > 1), 'some tasks needed another attempt')
  })
})
