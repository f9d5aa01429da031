import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BIN, api, removeTempDirs, runCli, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'

describe('the node log at info says what happens, one line each', function () {
  this.timeout(120_000)
  const running: NodeProcess[] = []

  afterEach(async () => {
    await Promise.all(running.splice(0).map(async p => p.stop()))
    await removeTempDirs()
  })

  it('peers joining and leaving, capabilities added and removed, requests served and handler failures', async () => {
    const a = await startNodeProcess(await tempDir())
    running.push(a)
    assert.match(a.output(), /serves {4}no capability/)
    const b = await startNodeProcess(await tempDir(), ['--bootstrap', a.run.multiaddrs[0]])
    await waitFor(() => a.output().includes(`peer connected: ${b.run.peerId}`), { what: 'peer connected logged' })
    await waitFor(() => b.output().includes('joined the network through bootstrap peer'), { what: 'joined logged' })

    const exec = (name: string, description: string, command: string[]): unknown => ({ name, description, handler: { type: 'exec', command, timeoutMs: 10_000 } })
    assert.equal((await api(a.run, 'POST', '/v1/capabilities', { body: exec('shout', 'Make a text loud', [process.execPath, '-e', 'process.stdin.pipe(process.stdout)']) })).status, 201)
    assert.equal((await api(a.run, 'POST', '/v1/capabilities', { body: exec('broken', 'Reverse a list of numbers', ['/nonexistent/aistack-broken']) })).status, 201)
    await waitFor(() => a.output().includes('capability added: shout (exec handler)'), { what: 'capability added logged' })
    const ok = await runCli(['ask', 'make this text loud', '--input', 'hi', '--home', b.home])
    assert.equal(ok.code, 0, ok.stderr)
    await waitFor(() => /info {2}served shout in \d+ ms/.test(a.output()), { what: 'request served logged' })
    const bad = await runCli(['ask', 'reverse a list of numbers', '--input', '[1,2]', '--home', a.home])
    assert.equal(bad.code, 1)
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr)
    await waitFor(() => /warn {2}broken failed after \d+ ms: .*ENOENT/.test(a.output()), { what: 'handler failure logged' })
    assert.equal((await api(a.run, 'DELETE', '/v1/capabilities/broken')).status, 200)
    await waitFor(() => a.output().includes('capability removed: broken'), { what: 'capability removed logged' })

    assert.equal(await b.stop(), 0)
    await waitFor(() => a.output().includes(`peer disconnected: ${b.run.peerId}`), { what: 'peer disconnected logged' })
  })

  it('an unreachable OpenAI-compatible embedder is reported at start', async () => {
    const server = createServer()
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    await new Promise(resolve => server.close(resolve))
    const home = await tempDir()
    await writeFile(join(home, 'config.json'), JSON.stringify({ embedder: { type: 'openai', baseUrl: `http://127.0.0.1:${port}/v1`, model: 'm', dim: 8 } }))
    const node = await startNodeProcess(home)
    running.push(node)
    await waitFor(() => /warn {2}the embedder \(openai\) cannot be reached: /.test(node.output()), { timeoutMs: 30_000, what: 'embedder warning' })
  })

  it('events --type agent prints one agent.left for one stopped peer', async () => {
    const a = await startNodeProcess(await tempDir())
    running.push(a)
    const events = spawn(process.execPath, [BIN, 'events', '--type', 'agent', '--home', a.home], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    events.stdout.on('data', d => { out += String(d) })
    const raw = spawn(process.execPath, [BIN, 'events', '--type', 'agent', '--json', '--home', a.home], { stdio: ['ignore', 'pipe', 'pipe'] })
    let json = ''
    raw.stdout.on('data', d => { json += String(d) })
    try {
      // the command is subscribed once it prints a peer joining
      let b: NodeProcess | undefined
      await waitFor(async () => {
        if (out.includes('agent.joined') && json.includes('agent.joined')) return true
        if (b != null) await b.stop()
        b = await startNodeProcess(await tempDir(), ['--bootstrap', a.run.multiaddrs[0]])
        return await waitFor(() => out.includes('agent.joined') && json.includes('agent.joined'), { timeoutMs: 10_000, what: 'agent.joined' }).catch(() => false)
      }, { timeoutMs: 60_000, what: 'agent.joined printed' })
      if (b == null) throw new Error('no peer started')
      assert.equal(await b.stop(), 0)
      const peer = b.run.peerId
      // the node sends two events for it (its leaving seen here, and the peer's own, which reaches
      // the node only if the peer already knew the node's events subscription when it stopped)...
      const lefts = (): number => json.split('\n').filter(l => l.includes('agent.left') && l.includes(peer)).length
      await waitFor(() => lefts() >= 1, { what: 'an agent.left event' })
      await waitFor(() => out.includes('agent.left'), { what: 'agent.left printed' })
      await waitFor(() => lefts() >= 2, { timeoutMs: 5000, what: 'the peer\'s own agent.left' }).catch(() => {})
      // ...and the text shows one line
      assert.equal(out.split('\n').filter(l => l.includes('agent.left') && l.includes(peer.slice(-6))).length, 1, out)
    } finally {
      events.kill('SIGTERM')
      raw.kill('SIGTERM')
    }
  })
})
