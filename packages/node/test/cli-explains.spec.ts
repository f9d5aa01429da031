import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { BIN, api, removeTempDirs, runCli, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'

describe('the CLI says why: waiting tasks, failed ask attempts, node events', function () {
  this.timeout(120_000)
  const running: NodeProcess[] = []

  afterEach(async () => {
    await Promise.all(running.splice(0).map(async p => p.stop()))
    await removeTempDirs()
  })

  it('a task nobody can run says "no peer serves X" in --wait, task status and the API', async () => {
    const node = await startNodeProcess(await tempDir())
    running.push(node)
    const submit = spawn(process.execPath, [BIN, 'task', 'submit', '--capability', 'no-such-cap', '--input', 'x', '--wait', '--home', node.home], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    submit.stderr.on('data', d => { stderr += String(d) })
    submit.stdout.resume()
    try {
      await waitFor(() => /no peer serves no-such-cap/.test(stderr), { timeoutMs: 30_000, what: '--wait to say why the task waits' })
    } finally {
      submit.kill('SIGTERM')
    }
    const id = /^submitted (\S+)$/m.exec(stderr)?.[1]
    assert.ok(id != null, stderr)
    const status = await runCli(['task', 'status', id, '--home', node.home])
    assert.equal(status.code, 0, status.stderr)
    assert.match(status.stdout, /^waiting {3}no peer serves no-such-cap/m)
    const task = await api(node.run, 'GET', `/v1/tasks/${id}`)
    assert.match(task.json.waiting, /^no peer serves no-such-cap/)
  })

  it('ask lists each failed attempt with its reason, and does not fall back to an unrelated capability', async () => {
    const node = await startNodeProcess(await tempDir())
    running.push(node)
    const exec = (name: string, description: string, command: string[]): unknown => ({ name, description, handler: { type: 'exec', command, timeoutMs: 10_000 } })
    const upper = [process.execPath, '-e', 'let s="";process.stdin.on("data",d=>{s+=d}).on("end",()=>{process.stdout.write(s.toUpperCase())})']
    for (const cap of [
      exec('loud-text', 'Make a text loud', ['/nonexistent/aistack-shout']),
      exec('count-words', 'Count the words in a text', upper)
    ]) {
      const added = await api(node.run, 'POST', '/v1/capabilities', { body: cap })
      assert.equal(added.status, 201, added.text)
    }
    // the only close match fails; the unrelated one (similarity 0.23 against 0.95) is not tried
    const failed = await runCli(['ask', 'make this text loud', '--input', 'hi', '--home', node.home])
    assert.equal(failed.code, 1)
    assert.match(failed.stderr, /loud-text|ENOENT|nonexistent/)
    assert.doesNotMatch(failed.stderr, /count-words/)
    assert.equal(failed.stdout, '')

    const added = await api(node.run, 'POST', '/v1/capabilities', { body: exec('shout', 'Make a text loud', upper) })
    assert.equal(added.status, 201, added.text)
    const asked = await runCli(['ask', 'make this text loud', '--input', 'hi', '--home', node.home])
    assert.equal(asked.code, 0, asked.stderr)
    assert.equal(asked.stdout, 'HI\n', 'the answer ends with a newline')
    assert.match(asked.stderr, /^attempt 1 failed: loud-text on \S+: .+$/m)
    assert.match(asked.stderr, /answered by shout /)
    const json = await api(node.run, 'POST', '/v1/ask', { body: { query: 'make this text loud', input: 'hi' } })
    assert.equal(json.status, 200, json.text)
    assert.equal(json.json.capability, 'shout')
    assert.equal(json.json.failures.length, 1)
    assert.equal(json.json.failures[0].capability, 'loud-text')
    assert.match(json.json.failures[0].error, /\S/)
    const unknown = await api(node.run, 'POST', '/v1/ask', { body: { query: 'x', input: 1, inptu: 2 } })
    assert.equal(unknown.status, 400)
    assert.match(unknown.json.error.message, /inptu is not a known field/)
  })

  it('capabilities added with POST /v1/capabilities are served again after a restart, until removed', async () => {
    const home = await tempDir()
    const first = await startNodeProcess(home)
    const spec = { name: 'shout', description: 'Make a text loud', handler: { type: 'exec', command: [process.execPath, '-e', 'process.stdin.pipe(process.stdout)'] } }
    assert.equal((await api(first.run, 'POST', '/v1/capabilities', { body: spec })).status, 201)
    assert.equal(await first.stop(), 0)
    const second = await startNodeProcess(home)
    running.push(second)
    assert.match(second.output(), /serves {4}shout/)
    const caps = await api(second.run, 'GET', '/v1/capabilities')
    assert.deepEqual(caps.json.capabilities.map((c: any) => c.name), ['shout'])
    assert.equal((await api(second.run, 'DELETE', '/v1/capabilities/shout')).status, 200)
    assert.equal(await running.pop()?.stop(), 0)
    const third = await startNodeProcess(home)
    running.push(third)
    assert.deepEqual((await api(third.run, 'GET', '/v1/capabilities')).json.capabilities, [])
  })
})
