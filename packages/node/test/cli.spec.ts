import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { readRunFile } from '../src/run-file.js'
import { removeTempDirs, runCli, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'

describe('aistack CLI', function () {
  this.timeout(120_000)
  const running: NodeProcess[] = []

  afterEach(async () => {
    await Promise.all(running.splice(0).map(async p => p.stop()))
    await removeTempDirs()
  })

  describe('bad flags and values exit with status 2 and one clear line', () => {
    const cases: Array<[string[], RegExp]> = [
      [['start', '--listen', 'not-a-multiaddr'], /--listen: "not-a-multiaddr" is not a valid multiaddr/],
      [['start', '--bootstrap', '/ip4/1.2.3'], /--bootstrap: .* is not a valid multiaddr/],
      [['start', '--api', '127.0.0.1:70000'], /--api: port 70000 is out of range/],
      [['start', '--api', 'localhost'], /--api: "localhost" is not HOST:PORT/],
      [['start', '--network', 'mainnet'], /--network: unknown network "mainnet"/],
      [['start', '--log-level', 'loud'], /--log-level: unknown log level "loud"/],
      [['start', '--dht-mode', 'sideways'], /--dht-mode: unknown mode "sideways"/],
      [['start', '--pq', 'maybe'], /--pq: unknown mode "maybe"/],
      [['start', '--no-such-flag'], /start: Unknown option '--no-such-flag'/],
      [['testnet', 'up', '--nodes', 'many'], /--nodes: "many" is not a whole number/],
      [['testnet', 'up', '--nodes', '0'], /--nodes: 0 is out of range/],
      [['testnet', 'sideways'], /testnet: unknown action "sideways"/],
      [['fly'], /unknown command "fly"/]
    ]
    for (const [args, message] of cases) {
      it(`aistack ${args.join(' ')}`, async () => {
        const home = await tempDir()
        const { code, stderr, stdout } = await runCli([...args, args[0] === 'testnet' ? '--dir' : '--home', home])
        assert.equal(code, 2, stderr)
        assert.match(stderr, message)
        assert.equal(stderr.trim().split('\n').length, 1, `one line, got: ${stderr}`)
        assert.equal(stdout, '')
      })
    }
  })

  it('--help explains every command', async () => {
    const top = await runCli(['--help'])
    assert.equal(top.code, 0)
    for (const command of ['init', 'start', 'id', 'peers', 'stop', 'testnet']) assert.match(top.stdout, new RegExp(`\\b${command}\\b`))
    const start = await runCli(['start', '--help'])
    assert.equal(start.code, 0)
    for (const flag of ['--home', '--config', '--listen', '--bootstrap', '--network', '--api', '--log-level', '--json']) assert.ok(start.stdout.includes(flag), flag)
  })

  it('init creates a private identity and a config, and refuses to replace the identity without --force', async () => {
    const home = await tempDir()
    const first = await runCli(['init', '--home', home, '--json'])
    assert.equal(first.code, 0, first.stderr)
    const { peerId } = JSON.parse(first.stdout)
    assert.equal((await stat(join(home, 'identity.key'))).mode & 0o777, 0o600)
    const config = JSON.parse(await readFile(join(home, 'config.json'), 'utf8'))
    assert.equal(config.network, 'local')
    assert.deepEqual(config.api, { host: '127.0.0.1', port: 5454, maxBodyBytes: 5242880 })

    const again = await runCli(['init', '--home', home])
    assert.equal(again.code, 2)
    assert.match(again.stderr, /identity\.key already exists; use --force/)

    const forced = await runCli(['init', '--home', home, '--force', '--json'])
    assert.equal(forced.code, 0, forced.stderr)
    assert.notEqual(JSON.parse(forced.stdout).peerId, peerId)
  })

  it('a corrupt identity.key or config.json gives an error that names the file', async () => {
    const home = await tempDir()
    assert.equal((await runCli(['init', '--home', home])).code, 0)
    await writeFile(join(home, 'config.json'), '{"network": "local",')
    let result = await runCli(['start', '--home', home, '--api', '127.0.0.1:0'])
    assert.equal(result.code, 2)
    assert.match(result.stderr, new RegExp(`${join(home, 'config.json')}: not valid JSON`))

    await writeFile(join(home, 'config.json'), JSON.stringify({ api: { port: 'eighty' } }))
    result = await runCli(['start', '--home', home])
    assert.equal(result.code, 2)
    assert.match(result.stderr, /config\.json: api\.port must be a port number/)

    await writeFile(join(home, 'config.json'), JSON.stringify({ listen: ['/ip4/127.0.0.1/tcp/0'], colour: 'blue' }))
    result = await runCli(['start', '--home', home])
    assert.equal(result.code, 2)
    assert.match(result.stderr, /config\.json: colour is not a known field/)

    await writeFile(join(home, 'config.json'), '{}')
    await writeFile(join(home, 'identity.key'), 'garbage, not a key')
    result = await runCli(['start', '--home', home, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
    assert.equal(result.code, 1)
    assert.match(result.stderr, new RegExp(`${join(home, 'identity.key')}: not a valid identity key`))
  })

  it('start writes run.json, serves id and peers, refuses a second start, and stops cleanly on SIGTERM', async () => {
    const home = await tempDir()
    const node = await startNodeProcess(home)
    running.push(node)
    assert.equal((await stat(join(home, 'run.json'))).mode & 0o777, 0o600)
    assert.equal(node.run.pid, node.child.pid)
    assert.match(node.run.peerId, /^12D3KooW/)
    assert.ok(node.run.multiaddrs.every(a => a.startsWith('/ip4/127.0.0.1/tcp/')))

    const id = await runCli(['id', '--home', home, '--json'])
    assert.equal(id.code, 0, id.stderr)
    assert.equal(JSON.parse(id.stdout).peerId, node.run.peerId)
    assert.ok(JSON.parse(id.stdout).protocols.includes('/aistack/kad/1.0.0'))

    const peers = await runCli(['peers', '--home', home])
    assert.equal(peers.code, 0, peers.stderr)
    assert.match(peers.stdout, /no connected peers/)

    const second = await runCli(['start', '--home', home, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
    assert.equal(second.code, 1)
    assert.match(second.stderr, new RegExp(`a node is already running on ${home} \\(pid ${node.run.pid}`))

    assert.equal(await node.stop(), 0)
    running.pop()
    assert.equal(await readRunFile(home), undefined, 'run.json is removed on a clean stop')

    const idAfter = await runCli(['id', '--home', home])
    assert.equal(idAfter.code, 1)
    assert.match(idAfter.stderr, /no node is running/)
  })

  it('a stale run.json is replaced, and a restart keeps the peer ID', async () => {
    const home = await tempDir()
    const first = await startNodeProcess(home)
    const peerId = first.run.peerId
    await first.stop()
    // a run.json left by a process that is gone (as after a crash)
    const dead = spawn(process.execPath, ['-e', '0'])
    await new Promise(resolve => dead.once('exit', resolve))
    await writeFile(join(home, 'run.json'), JSON.stringify({ ...first.run, pid: dead.pid }))
    const second = await startNodeProcess(home)
    running.push(second)
    assert.equal(second.run.peerId, peerId)
    assert.notEqual(second.run.pid, dead.pid)
  })

  it('aistack stop stops the node through the API', async () => {
    const home = await tempDir()
    const node = await startNodeProcess(home)
    const exit = new Promise(resolve => node.child.once('exit', resolve))
    const result = await runCli(['stop', '--home', home])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(await exit, 0)
    assert.equal(await readRunFile(home), undefined)
  })

  it('--json start prints a machine-readable ready line', async () => {
    const home = await tempDir()
    const node = await startNodeProcess(home, ['--json'])
    running.push(node)
    const line = await waitFor(() => node.output().split('\n').find(l => l.startsWith('{"event":"ready"')), { what: 'ready line' })
    const ready = JSON.parse(line)
    assert.equal(ready.peerId, node.run.peerId)
    assert.equal(ready.api.url, node.run.api.url)
    assert.equal(ready.api.token, undefined, 'the token stays in run.json')
  })
})
