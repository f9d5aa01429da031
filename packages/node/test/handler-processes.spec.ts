import assert from 'node:assert/strict'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CapabilityRegistry, killAllProcessGroups, liveProcessGroups } from '../src/capabilities/index.js'
import { isAlive } from '../src/run-file.js'
import { api, removeTempDirs, runCli, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'

/** Pids of the processes whose process group is `pgid`, read from /proc/<pid>/stat */
async function groupMembers (pgid: number): Promise<number[]> {
  const members: number[] = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    let stat: string
    try {
      stat = await readFile(`/proc/${name}/stat`, 'utf8')
    } catch {
      continue // gone meanwhile
    }
    // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (fields[0] !== 'Z' && Number(fields[2]) === pgid) members.push(Number(name))
  }
  return members
}

/** Whether a process has ended (gone, or a zombie not yet reaped) */
async function ended (pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true
  }
}

/**
 * A shell that sleeps in a child process, writes "<its pid> <the sleep's pid>" to `pidFile`,
 * waits for the sleep, then echoes stdin: the shell's pid is its process group when it leads one
 */
function sleeper (pidFile: string, seconds: number, prelude = ''): string[] {
  return ['sh', '-c', `${prelude}sleep ${seconds} & echo "$$ $!" >> '${pidFile}'; wait $!; cat`]
}

interface Run { pgid: number, sleep: number }

/** The runs written to `pidFile`, once it has `count` of them */
async function runs (pidFile: string, count = 1): Promise<Run[]> {
  return waitFor(async () => {
    const lines = (await readFile(pidFile, 'utf8').catch(() => '')).split('\n').filter(l => /^\d+ \d+$/.test(l))
    return lines.length >= count ? lines.map(l => { const [pgid, sleep] = l.split(' ').map(Number); return { pgid, sleep } }) : undefined
  }, { timeoutMs: 30_000, what: `${count} run(s) in ${pidFile}` })
}

/** Waits until neither the shell's group nor its sleep (which a kill of the shell alone would leave) runs */
async function runGone ({ pgid, sleep }: Run): Promise<void> {
  await waitFor(async () => (await groupMembers(pgid)).length === 0 && await ended(sleep), { timeoutMs: 15_000, what: `no process left of group ${pgid} (sleep ${sleep})` })
}

describe('handler process groups', function () {
  this.timeout(60_000)
  after(removeTempDirs)

  it('a handler timeout ends the whole group, not only the shell', async () => {
    const dir = await tempDir()
    const pidFile = join(dir, 'pids')
    const r = new CapabilityRegistry()
    r.add({ name: 'slow', description: 'sleeps', handler: { type: 'exec', command: sleeper(pidFile, 40), timeoutMs: 1000 } })
    await assert.rejects(r.invoke('slow', 'x'), { name: 'HandlerTimeoutError' })
    const [run] = await runs(pidFile)
    await runGone(run)
    await waitFor(() => liveProcessGroups() === 0, { what: 'the group forgotten' })
  })

  it('a cancelled handler ends its group', async () => {
    const dir = await tempDir()
    const pidFile = join(dir, 'pids')
    const r = new CapabilityRegistry()
    r.add({ name: 'slow', description: 'sleeps', handler: { type: 'exec', command: sleeper(pidFile, 40), timeoutMs: 60_000 } })
    const controller = new AbortController()
    const running = r.invoke('slow', 'x', { signal: controller.signal })
    const [run] = await runs(pidFile)
    assert.deepEqual((await groupMembers(run.pgid)).sort(), [run.pgid, run.sleep].sort(), 'the shell and its sleep run in the group')
    controller.abort(new Error('canceled'))
    await assert.rejects(running, /canceled/)
    await runGone(run)
  })

  it('killAllProcessGroups ends every running handler, a process that ignores SIGTERM too', async () => {
    const dir = await tempDir()
    const pidFile = join(dir, 'pids')
    const r = new CapabilityRegistry()
    r.add({ name: 'slow', description: 'sleeps', handler: { type: 'exec', command: sleeper(pidFile, 40), timeoutMs: 60_000, concurrency: 4 } })
    r.add({
      name: 'stubborn',
      description: 'ignores SIGTERM',
      handler: { type: 'exec', command: sleeper(pidFile, 40, "trap '' TERM; "), timeoutMs: 60_000 }
    })
    const running = [r.invoke('slow', 'a'), r.invoke('slow', 'b'), r.invoke('stubborn', 'c')].map(async p => p.then(() => 'ok', (err: Error) => err.name))
    const started = await runs(pidFile, 3)
    assert.equal(liveProcessGroups(), 3)
    const t0 = Date.now()
    await killAllProcessGroups(500)
    assert.ok(Date.now() - t0 < 10_000)
    for (const run of started) await runGone(run)
    assert.deepEqual(await Promise.all(running), ['HandlerError', 'HandlerError', 'HandlerError'])
  })
})

describe('handler processes of a running node', function () {
  this.timeout(120_000)
  let node: NodeProcess | undefined
  let home: string
  let dir: string

  before(async () => {
    home = await tempDir()
    dir = await tempDir()
    await writeFile(join(home, 'config.json'), JSON.stringify({
      capabilities: [
        { name: 'slow-ask', description: 'A slow shell that times out', handler: { type: 'exec', command: sleeper(join(dir, 'ask'), 40), timeoutMs: 1000 } },
        { name: 'slow-task', description: 'A slow shell for a task', handler: { type: 'exec', command: sleeper(join(dir, 'task'), 40), timeoutMs: 1000 } },
        { name: 'long-task', description: 'A long shell the node is stopped under', handler: { type: 'exec', command: sleeper(join(dir, 'long'), 60), timeoutMs: 120_000 } }
      ]
    }))
    node = await startNodeProcess(home)
  })

  after(async () => {
    if (node != null && isAlive(node.child.pid as number)) {
      node.child.kill('SIGKILL')
      await node.stop()
    }
    await removeTempDirs()
  })

  it('an ask whose exec handler times out fails as a timeout and leaves no process', async () => {
    const run = (node as NodeProcess).run
    const res = await api(run, 'POST', '/v1/ask', { body: { query: 'A slow shell that times out', input: 'x', timeoutMs: 30_000 } })
    assert.equal(res.status, 504, res.text)
    assert.equal(res.json.error.code, 'timeout')
    assert.match(res.json.error.message, /handler timed out/)
    const [started] = await runs(join(dir, 'ask'))
    await runGone(started)
  })

  it('a task whose exec handler times out is recorded as timeout and leaves no process', async () => {
    const run = (node as NodeProcess).run
    const submitted = await api(run, 'POST', '/v1/tasks', { body: { capability: 'slow-task', input: 'x', maxAttempts: 1 } })
    assert.equal(submitted.status, 202, submitted.text)
    const task = await waitFor(async () => {
      const { json } = await api(run, 'GET', `/v1/tasks/${submitted.json.id as string}`)
      return ['dead', 'failed'].includes(json.state) ? json : undefined
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'the task to fail' })
    assert.match(task.error, /timeout: slow-task did not answer within 1000 ms/)
    assert.doesNotMatch(task.error, /handler-error/)
    const [started] = await runs(join(dir, 'task'))
    await runGone(started)
  })

  it('aistack stop ends a node running a handler within 10 s and leaves nothing behind', async () => {
    const n = node as NodeProcess
    const submitted = await api(n.run, 'POST', '/v1/tasks', { body: { capability: 'long-task', input: 'x' } })
    assert.equal(submitted.status, 202, submitted.text)
    const [started] = await runs(join(dir, 'long'))
    assert.equal(await ended(started.sleep), false, 'the handler\'s sleep runs')
    const t0 = Date.now()
    const stopped = await runCli(['stop', '--home', home], { timeoutMs: 30_000 })
    const took = Date.now() - t0
    assert.equal(stopped.code, 0, stopped.stderr)
    assert.ok(took < 10_000, `stopped in ${took} ms`)
    assert.equal(await n.stop(), 0)
    node = undefined
    assert.deepEqual(await groupMembers(started.pgid), [], 'no process of the handler\'s group is left')
    assert.equal(await ended(started.sleep), true, 'the handler\'s sleep is gone')
  })
})
