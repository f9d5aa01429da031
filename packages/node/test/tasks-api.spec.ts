import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BIN, api, removeTempDirs, runCli, startNodeProcess, takeSseMessages, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'
import type { RunInfo } from '../src/run-file.js'

/** Reads server-sent events from a node's API until `until` returns true; returns them all. */
async function sse (run: RunInfo, path: string, until: (messages: Array<{ event: string, data: any }>) => boolean, { timeoutMs = 20_000, onOpen }: { timeoutMs?: number, onOpen?: () => Promise<void> } = {}): Promise<Array<{ event: string, data: any }>> {
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort() }, timeoutMs)
  const messages: Array<{ event: string, data: any }> = []
  try {
    const response = await fetch(run.api.url + path, { headers: { authorization: `Bearer ${run.api.token}` }, signal: controller.signal })
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/)
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder()
    let buffer = ''
    const opened = onOpen?.()
    while (true) {
      const { done, value } = await reader.read()
      if (done) break
      const taken = takeSseMessages(buffer + decoder.decode(value, { stream: true }))
      buffer = taken.rest
      messages.push(...taken.messages)
      if (until(messages)) {
        await reader.cancel()
        break
      }
    }
    await opened
    return messages
  } finally {
    clearTimeout(timer)
  }
}

describe('task queue API and CLI', function () {
  this.timeout(90_000)
  let node: NodeProcess
  let home: string

  before(async () => {
    home = await tempDir()
    await writeFile(join(home, 'config.json'), JSON.stringify({
      capabilities: [
        { name: 'echo', description: 'Echo the input back unchanged', handler: { type: 'builtin', name: 'echo' } }
      ]
    }))
    node = await startNodeProcess(home)
  })

  after(async () => {
    // killed: this suite checks the API, not a clean stop
    node?.child.kill('SIGKILL')
    await node?.stop()
    await removeTempDirs()
  })

  async function completed (id: string): Promise<any> {
    return waitFor(async () => {
      const { json } = await api(node.run, 'GET', `/v1/tasks/${id}`)
      return json.state === 'completed' ? json : undefined
    }, { what: `task ${id} completed` })
  }

  it('submits a task, reports it and lists it', async () => {
    const submitted = await api(node.run, 'POST', '/v1/tasks', { body: { capability: 'echo', input: { hello: 'world' } } })
    assert.equal(submitted.status, 202, submitted.text)
    assert.equal(typeof submitted.json.id, 'string')
    assert.ok(['submitted', 'assigned', 'running'].includes(submitted.json.state))
    const task = await completed(submitted.json.id)
    assert.deepEqual(task.result, { hello: 'world' })
    assert.equal(task.attempts, 1)
    assert.equal(task.worker, node.run.peerId)
    assert.equal(task.error, null)
    assert.deepEqual(task.history.map((h: any) => h.state), ['submitted', 'assigned', 'running', 'completed'])

    const listed = await api(node.run, 'GET', '/v1/tasks?state=completed')
    assert.equal(listed.status, 200)
    assert.ok(listed.json.tasks.some((t: any) => t.id === submitted.json.id))
    assert.ok(listed.json.tasks.every((t: any) => t.state === 'completed'))
  })

  it('resolves a query to the capability nearest in meaning', async () => {
    const submitted = await api(node.run, 'POST', '/v1/tasks', { body: { query: 'echo the input back', input: 'by meaning' } })
    assert.equal(submitted.status, 202, submitted.text)
    const task = await completed(submitted.json.id)
    assert.equal(task.capability, 'echo')
    assert.equal(task.query, 'echo the input back')
    assert.equal(task.result, 'by meaning')
    const nothing = await api(node.run, 'POST', '/v1/tasks', { body: { query: 'zzzz qqqq xylophone', input: 1 } })
    assert.equal(nothing.status, 404)
    assert.equal(nothing.json.error.code, 'no_capable_peer')
  })

  it('runs a map task and lists its children', async () => {
    const submitted = await api(node.run, 'POST', '/v1/tasks', { body: { capability: 'echo', inputs: ['a', 'b', 'c'] } })
    assert.equal(submitted.status, 202)
    const task = await completed(submitted.json.id)
    assert.deepEqual(task.result, ['a', 'b', 'c'])
    const children = await api(node.run, 'GET', `/v1/tasks?parent=${submitted.json.id}`)
    assert.deepEqual(children.json.tasks.map((t: any) => t.result), ['a', 'b', 'c'])
    const top = await api(node.run, 'GET', '/v1/tasks?limit=10000')
    assert.ok(top.json.tasks.every((t: any) => t.parent == null), 'children are not listed with the top-level tasks')
  })

  it('streams a task\'s events until it ends, and every event on /v1/events', async () => {
    // a task nobody can run stays submitted until it is canceled
    const waiting = await api(node.run, 'POST', '/v1/tasks', { body: { capability: 'nobody-serves-this', input: 1 } })
    assert.equal(waiting.status, 202)
    const id = waiting.json.id
    let messages: Array<{ event: string, data: any }> = []
    const seen = await sse(node.run, '/v1/events', ms => ms.some(m => m.event === 'task.canceled' && m.data.taskId === id), {
      onOpen: async () => {
        messages = await sse(node.run, `/v1/tasks/${id as string}/events`, () => false, {
          onOpen: async () => {
            const canceled = await api(node.run, 'DELETE', `/v1/tasks/${id as string}`)
            assert.equal(canceled.status, 200)
            assert.equal(canceled.json.state, 'canceled')
          }
        })
      }
    })
    // the stream starts with the task as it was and ends by itself after its last event
    assert.equal(messages[0].event, 'task')
    assert.equal(messages[0].data.id, id)
    assert.equal(messages[0].data.state, 'submitted')
    assert.equal(messages.at(-1)?.event, 'task.canceled')
    assert.equal(messages.at(-1)?.data.reason, 'canceled through the API')
    assert.ok(seen.every(m => typeof m.data.type === 'string' && typeof m.data.at === 'number'))

    // a task that has ended: the snapshot, then the end of the stream
    const ended = await sse(node.run, `/v1/tasks/${id}/events`, () => false)
    assert.deepEqual(ended.map(m => m.event), ['task'])
    assert.equal(ended[0].data.state, 'canceled')
  })

  it('aistack task submit --wait prints the result; status, list, cancel and watch', async () => {
    const waited = await runCli(['task', 'submit', '--capability', 'echo', '--input', 'good morning', '--wait', '--home', home])
    assert.equal(waited.code, 0, waited.stderr)
    assert.equal(waited.stdout, 'good morning\n')

    const inputs = join(home, 'inputs.json')
    await writeFile(inputs, JSON.stringify([1, { two: 2 }, 'three']))
    const map = await runCli(['task', 'submit', '--capability', 'echo', '--inputs-file', inputs, '--wait', '--json', '--home', home])
    assert.equal(map.code, 0, map.stderr)
    const mapTask = JSON.parse(map.stdout)
    assert.equal(mapTask.state, 'completed')
    assert.deepEqual(mapTask.result, [1, { two: 2 }, 'three'])

    const plain = await runCli(['task', 'submit', '--capability', 'echo', '--input', '{"n": 7}', '--json-input', '--max-attempts', '2', '--lease-ms', '5000', '--deadline-ms', '60000', '--home', home])
    assert.equal(plain.code, 0, plain.stderr)
    const id = plain.stdout.trim()
    assert.match(id, /^[0-9a-f-]{36}$/)
    const task = await completed(id)
    assert.deepEqual(task.result, { n: 7 })
    assert.equal(task.maxAttempts, 2)
    assert.equal(typeof task.deadline, 'number')

    const status = await runCli(['task', 'status', id, '--home', home])
    assert.equal(status.code, 0, status.stderr)
    assert.match(status.stdout, /state\s+completed/)
    assert.match(status.stdout, /attempts\s+1 of 2/)
    const statusJson = JSON.parse((await runCli(['task', 'status', id, '--json', '--home', home])).stdout)
    assert.equal(statusJson.id, id)

    const list = await runCli(['task', 'list', '--state', 'completed', '--home', home])
    assert.equal(list.code, 0, list.stderr)
    assert.match(list.stdout, new RegExp(id))

    // a task that cannot run: watch follows it until it is canceled, and exits 1
    const stuck = (await runCli(['task', 'submit', '--capability', 'nobody-serves-this', '--input', 'x', '--home', home])).stdout.trim()
    const watch = spawn(process.execPath, [BIN, 'task', 'watch', stuck, '--home', home], { stdio: ['ignore', 'pipe', 'pipe'] })
    let watched = ''
    watch.stdout.on('data', d => { watched += String(d) })
    const watchExit = new Promise<number | null>(resolve => watch.once('exit', resolve))
    try {
      await waitFor(() => watched.includes('submitted'), { what: 'watch to show the task' })
      const cancel = await runCli(['task', 'cancel', stuck, '--home', home])
      assert.equal(cancel.code, 0, cancel.stderr)
      assert.equal(cancel.stdout, `canceled ${stuck}\n`)
      assert.equal(await watchExit, 1)
      assert.match(watched, /task\.canceled/)
    } finally {
      watch.kill('SIGKILL')
    }
    const again = await runCli(['task', 'watch', id, '--json', '--home', home])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(JSON.parse(again.stdout.trim().split('\n')[0]).task.state, 'completed')
  })

  it('aistack events prints events live', async () => {
    const child = spawn(process.execPath, [BIN, 'events', '--json', '--home', home], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', d => { out += String(d) })
    const exit = new Promise<number | null>(resolve => child.once('exit', resolve))
    try {
      // the stream is open once a submitted task shows up in it (the first ones may have run
      // before it opened, or half before: their early events are not replayed)
      await waitFor(async () => {
        const probe = (await api(node.run, 'POST', '/v1/tasks', { body: { capability: 'echo', input: 'e' } })).json.id
        await completed(probe)
        return out.includes(probe)
      }, { what: 'events to show a task', intervalMs: 200 })
      // a task submitted with the stream open: every event of it, in order
      const id: string = (await api(node.run, 'POST', '/v1/tasks', { body: { capability: 'echo', input: 'f' } })).json.id
      await completed(id)
      await waitFor(() => out.split('\n').some(l => l.includes(id as string) && l.includes('"task.completed"')), { what: 'the task.completed event' })
      const events = out.trim().split('\n').map(l => JSON.parse(l)).filter(e => e.taskId === id)
      assert.deepEqual(events.map(e => e.type), ['task.created', 'task.assigned', 'task.running', 'task.completed'])
      child.kill('SIGINT')
      assert.equal(await exit, 0)
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('answers bad requests with 400 naming the field, 404 for unknown ids, 413 when too large', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [[1, 2], /body must be a JSON object/],
      [{ capability: 'echo', input: 1, colour: 'red' }, /body\.colour is not a known field/],
      [{ input: 1 }, /body\.capability or body\.query/],
      [{ capability: 'echo' }, /body\.input or body\.inputs/],
      [{ capability: 'echo', input: 1, inputs: [1] }, /body\.input or body\.inputs/],
      [{ capability: 'echo', inputs: 'abc' }, /body\.inputs must be an array/],
      [{ capability: 7, input: 1 }, /body\.capability must be a non-empty string/],
      [{ capability: 'echo', input: 1, maxAttempts: '3' }, /body\.maxAttempts must be an integer/],
      [{ capability: 'echo', input: 1, maxAttempts: 0 }, /maxAttempts must be an integer between 1 and 100/],
      [{ capability: 'echo', input: 1, leaseMs: 10 }, /leaseMs must be an integer between/],
      [{ capability: 'echo', input: 1, to: 'not-a-peer' }, /to must be a peer id/],
      [{ capability: 'echo', input: 1, requirements: { gpu: 1 } }, /body\.requirements\.gpu must be a string/]
    ]
    for (const [body, message] of cases) {
      const res = await api(node.run, 'POST', '/v1/tasks', { body })
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`)
      assert.equal(res.json.error.code, 'bad_request')
      assert.match(res.json.error.message, message)
    }
    const badJson = await api(node.run, 'POST', '/v1/tasks', { raw: '{"capability": "echo", ' })
    assert.equal(badJson.status, 400)
    assert.equal(badJson.json.error.code, 'bad_json')
    // over the queue's 4 MiB input limit but within api.maxBodyBytes (5 MiB): the queue's own 413
    const big = await api(node.run, 'POST', '/v1/tasks', { body: { capability: 'echo', input: 'x'.repeat(4.5 * 1024 * 1024) } })
    assert.equal(big.status, 413)
    assert.equal(big.json.error.code, 'too_large')
    const huge = await api(node.run, 'POST', '/v1/tasks', { body: { capability: 'echo', input: 'x'.repeat(6 * 1024 * 1024) } })
    assert.equal(huge.status, 413)
    assert.equal(huge.json.error.code, 'body_too_large')
    assert.match(huge.json.error.message, /api\.maxBodyBytes/)

    for (const [method, path] of [['GET', '/v1/tasks/no-such-task'], ['DELETE', '/v1/tasks/no-such-task'], ['GET', '/v1/tasks/no-such-task/events']]) {
      const res = await api(node.run, method, path)
      assert.equal(res.status, 404, `${method} ${path}`)
      assert.equal(res.json.error.code, 'not_found')
    }
    const badState = await api(node.run, 'GET', '/v1/tasks?state=sleeping')
    assert.equal(badState.status, 400)
    assert.match(badState.json.error.message, /^state must be one of/)
    const badLimit = await api(node.run, 'GET', '/v1/tasks?limit=0')
    assert.equal(badLimit.status, 400)
    assert.match(badLimit.json.error.message, /^limit/)
    const noToken = await api(node.run, 'GET', '/v1/events', { token: null })
    assert.equal(noToken.status, 401)

    const done = (await api(node.run, 'GET', '/v1/tasks?state=completed')).json.tasks[0]
    const late = await api(node.run, 'DELETE', `/v1/tasks/${done.id as string}`)
    assert.equal(late.status, 409)
    assert.equal(late.json.error.code, 'conflict')
  })

  it('the CLI refuses bad flags with exit status 2 and one line', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['task', 'submit', '--input', 'x'], /--capability NAME or --query TEXT/],
      [['task', 'submit', '--capability', 'echo'], /one of --input TEXT, --input-file F or --inputs-file F/],
      [['task', 'submit', '--capability', 'echo', '--input', 'x', '--max-attempts', 'many'], /--max-attempts: "many" is not a whole number/],
      [['task', 'submit', '--capability', 'echo', '--input', 'x', '--lease-ms', '1'], /--lease-ms: 1 is out of range/],
      [['task', 'submit', '--capability', 'echo', '--input', 'x', '--to', 'bob'], /--to: "bob" is not a peer ID/],
      [['task', 'submit', '--capability', 'echo', '--input', 'x', '--colour', 'red'], /Unknown option '--colour'/],
      [['task', 'submit', '--capability', 'echo', '--input-file', join(home, 'missing.txt')], /--input-file: cannot read/],
      [['task', 'submit', '--capability', 'echo', '--input', '{', '--json-input'], /--json-input: the input is not valid JSON/],
      [['task', 'status'], /task status: the task id is missing/],
      [['task', 'list', '--state', 'sleeping'], /--state: "sleeping" is not a state/],
      [['task', 'frobnicate'], /task: unknown command "frobnicate"/],
      [['events', '--type', 'nonsense'], /--type: "nonsense" is not an event type/]
    ]
    for (const [args, message] of cases) {
      const res = await runCli([...args, '--home', home])
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`)
      assert.match(res.stderr, message)
      assert.equal(res.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line`)
    }
    const unknown = await runCli(['task', 'status', 'no-such-task', '--home', home])
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /no task no-such-task/)
    for (const sub of ['submit', 'watch']) {
      const help = await runCli(['task', sub, '--help'])
      assert.equal(help.code, 0)
      assert.match(help.stdout, new RegExp(`^Usage: aistack task ${sub}`))
      assert.match(help.stdout, /--home DIR/)
    }
    assert.match((await runCli(['task', '--help'])).stdout, /submit\|status\|list\|cancel\|watch/)
    assert.match((await runCli(['events', '--help'])).stdout, /^Usage: aistack events/)
  })
})
