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
})
