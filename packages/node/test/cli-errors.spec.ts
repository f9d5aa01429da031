import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { readRunFile } from '../src/run-file.js'
import { BIN, api, removeTempDirs, runCli, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { CliResult, NodeProcess } from './helpers.js'

/** At most three lines on stderr, none of them a stack frame. */
function assertShortError (result: CliResult, code: number, message: RegExp): void {
  assert.equal(result.code, code, `exit status ${code}, got ${String(result.code)}: ${result.stderr}`)
  assert.match(result.stderr, message)
  const lines = result.stderr.trim().split('\n')
  assert.ok(lines.length <= 3, `at most three lines, got:\n${result.stderr}`)
  assert.ok(!lines.some(l => /^\s+at /.test(l)), `no stack trace, got:\n${result.stderr}`)
}

/** A TCP port that nothing listens on (bound, then closed). */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise(resolve => server.close(resolve))
  return port
}

async function peerIdOf (home: string): Promise<string> {
  const init = await runCli(['init', '--home', home, '--json'])
  assert.equal(init.code, 0, init.stderr)
  return JSON.parse(init.stdout).peerId
}

const LOOPBACK = ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0']

describe('aistack start and init: failures are one line with the documented exit status', function () {
  this.timeout(120_000)
  const running: NodeProcess[] = []

  afterEach(async () => {
    await Promise.all(running.splice(0).map(async p => p.stop()))
    await removeTempDirs()
  })

  it('init --home under /proc fails at once (exit 1)', async () => {
    const started = Date.now()
    const result = await runCli(['init', '--home', '/proc/nope/aistack'], { timeoutMs: 20_000 })
    assertShortError(result, 1, /^aistack: --home \/proc\/nope\/aistack: cannot create \/proc\/nope/)
    assert.ok(Date.now() - started < 20_000)
  })

  it('a home that is a file, or under one, is named (exit 1)', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'file'), 'x')
    assertShortError(await runCli(['start', '--home', join(dir, 'file'), ...LOOPBACK]), 1, /file is a file, not a directory; pick another home/)
    assertShortError(await runCli(['init', '--home', join(dir, 'file', 'sub')]), 1, /cannot use .*file\/sub \(ENOTDIR\)/)
  })

  it('a config.json holding an array says the file must hold an object (exit 2)', async () => {
    const home = await tempDir()
    await writeFile(join(home, 'config.json'), '[]')
    assertShortError(await runCli(['start', '--home', home, ...LOOPBACK]), 2, /config\.json: must hold a JSON object/)
  })

  it('bootstrap addresses without a valid /p2p/ peer ID are refused (exit 2)', async () => {
    const home = await tempDir()
    assertShortError(await runCli(['start', '--home', home, ...LOOPBACK, '--bootstrap', '/ip4/127.0.0.1/tcp/4011/p2p/notapeerid']), 2, /--bootstrap: "notapeerid" .* is not a peer ID/)
    assertShortError(await runCli(['start', '--home', home, ...LOOPBACK, '--bootstrap', '/ip4/127.0.0.1/tcp/4011']), 2, /--bootstrap: .* has no \/p2p\/<peer id>/)
  })

  it('a listen address of no transport is refused when it is the only one (exit 2)', async () => {
    const home = await tempDir()
    assertShortError(await runCli(['start', '--home', home, '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0/ws']), 2, /none of the listen addresses can be used/)
  })

  it('a taken listen port and an address the host lacks are one line each (exit 1)', async () => {
    const server = createServer()
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    try {
      const home = await tempDir()
      assertShortError(await runCli(['start', '--home', home, '--api', '127.0.0.1:0', '--listen', `/ip4/127.0.0.1/tcp/${port}`]), 1,
        new RegExp(`listen address /ip4/127.0.0.1/tcp/${port} is in use .*port 0 for a free one`))
    } finally {
      server.close()
    }
    const home = await tempDir()
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): no host has it
    assertShortError(await runCli(['start', '--home', home, '--api', '127.0.0.1:0', '--listen', '/ip4/192.0.2.1/tcp/0']), 1, /this host has no such IP address/)
  })

  it('two starts racing on one new home: one runs, the other says the home is in use (exit 1)', async () => {
    const home = await tempDir()
    const children = [0, 1].map(() => spawn(process.execPath, [BIN, 'start', '--home', home, ...LOOPBACK], { stdio: ['ignore', 'pipe', 'pipe'] }))
    const results = children.map(child => {
      let stderr = ''
      child.stderr.on('data', d => { stderr += String(d) })
      child.stdout.resume()
      return new Promise<CliResult & { child: typeof child }>(resolve => child.once('exit', code => { resolve({ code, stdout: '', stderr, child }) }))
    })
    try {
      const failed = await Promise.race(results)
      assertShortError(failed, 1, /(in use by another process|already running)/)
      const other = children.find(c => c !== failed.child)
      await waitFor(async () => (await readRunFile(home))?.pid === other?.pid, { what: 'the other start ready' })
    } finally {
      for (const c of children) if (c.exitCode == null) c.kill('SIGTERM')
      await Promise.all(results)
    }
  })
})

describe('joining: the node says whom it joined and why not', function () {
  this.timeout(120_000)
  const running: NodeProcess[] = []

  afterEach(async () => {
    await Promise.all(running.splice(0).map(async p => p.stop()))
    await removeTempDirs()
  })

  it('an unreachable bootstrap peer is reported within seconds, retried with backoff, and joined once it runs', async () => {
    const peerHome = await tempDir()
    const peerId = await peerIdOf(peerHome)
    const port = await freePort()
    const addr = `/ip4/127.0.0.1/tcp/${port}/p2p/${peerId}`
    const node = await startNodeProcess(await tempDir(), ['--bootstrap', addr])
    running.push(node)
    assert.match(node.output(), new RegExp(`bootstrap ${addr} \\(joining`))
    const started = Date.now()
    await waitFor(() => /bootstrap peer .*: connection refused .*; retrying in \d+ s/.test(node.output()), { timeoutMs: 15_000, what: 'a refused bootstrap reported' })
    assert.ok(Date.now() - started < 15_000)
    assert.match(node.output(), /joined nobody: all 1 bootstrap peer\(s\) failed/)
    const failed = await api(node.run, 'GET', '/v1/id')
    assert.equal(failed.json.bootstrap[0].addr, addr)
    assert.equal(failed.json.bootstrap[0].state, 'failed')
    assert.match(failed.json.bootstrap[0].error, /connection refused/)
    assert.ok(failed.json.bootstrap[0].attempts >= 1)

    // the peer comes up on that address: the retries find it
    const peer = await startNodeProcess(peerHome, ['--listen', `/ip4/127.0.0.1/tcp/${port}`])
    running.push(peer)
    await waitFor(async () => (await api(node.run, 'GET', '/v1/id')).json.bootstrap[0].state === 'connected', { timeoutMs: 90_000, what: 'bootstrap connected' })
    assert.match(node.output(), /joined the network through bootstrap peer/)
    const id = await runCli(['id', '--home', node.home])
    assert.match(id.stdout, new RegExp(`${addr}  connected`))
  })

  it('--pq required against a --pq off peer reports a handshake failure', async () => {
    const peer = await startNodeProcess(await tempDir(), ['--pq', 'off'])
    running.push(peer)
    const node = await startNodeProcess(await tempDir(), ['--pq', 'required', '--bootstrap', peer.run.multiaddrs[0]])
    running.push(node)
    await waitFor(() => /bootstrap peer .*: the handshake failed \(this node runs --pq required/.test(node.output()), { timeoutMs: 15_000, what: 'a handshake failure reported' })
  })

  it('listen addresses left out are reported: /ws, a bare /udp, QUIC with --pq required', async () => {
    const node = await startNodeProcess(await tempDir(), ['--pq', 'required', '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--listen', '/ip4/127.0.0.1/udp/0', '--listen', '/ip4/127.0.0.1/udp/0/quic-v1'])
    running.push(node)
    assert.match(node.output(), /listen address \/ip4\/127\.0\.0\.1\/tcp\/0\/ws left out: no transport for it/)
    assert.match(node.output(), /listen address \/ip4\/127\.0\.0\.1\/udp\/0 left out: no transport for it/)
    assert.match(node.output(), /listen address \/ip4\/127\.0\.0\.1\/udp\/0\/quic-v1 left out: QUIC is not listened on with --pq required/)
  })
})
