import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isAlive, readRunFile } from '../src/run-file.js'
import { removeTempDirs, runCli, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'

describe('commands people expect: caps, connect, disconnect, dht, start --detach, logs', function () {
  this.timeout(120_000)
  const running: NodeProcess[] = []

  afterEach(async () => {
    await Promise.all(running.splice(0).map(async p => p.stop()))
    await removeTempDirs()
  })

  it('caps add, list and rm; connect, dht and disconnect', async () => {
    const a = await startNodeProcess(await tempDir())
    const b = await startNodeProcess(await tempDir())
    running.push(a, b)
    const file = join(a.home, 'cap.json')
    await writeFile(file, JSON.stringify({ name: 'shout', description: 'Make a text loud', handler: { type: 'exec', command: [process.execPath, '-e', 'process.stdin.pipe(process.stdout)'] } }))
    const added = await runCli(['caps', 'add', file, '--home', a.home])
    assert.equal(added.code, 0, added.stderr)
    assert.match(added.stdout, /^added shout \(exec handler\)/)
    const list = await runCli(['caps', '--home', a.home])
    assert.match(list.stdout, /^shout +exec +0\/4 +Make a text loud$/m)
    const removed = await runCli(['caps', 'rm', 'shout', '--home', a.home])
    assert.equal(removed.code, 0, removed.stderr)
    assert.deepEqual(JSON.parse((await runCli(['caps', 'list', '--json', '--home', a.home])).stdout).capabilities, [])
    const gone = await runCli(['caps', 'rm', 'shout', '--home', a.home])
    assert.equal(gone.code, 1)
    assert.match(gone.stderr, /^aistack: no capability named "shout"\n$/)

    const connected = await runCli(['connect', a.run.multiaddrs[0], '--home', b.home])
    assert.equal(connected.code, 0, connected.stderr)
    assert.match(connected.stdout, new RegExp(`^connected to ${a.run.peerId}`))

    await waitFor(async () => (await runCli(['dht', '--home', b.home])).stdout.includes(`  ${a.run.peerId}`), { what: 'a in b\'s routing table' })
    const disconnected = await runCli(['disconnect', a.run.peerId, '--home', b.home])
    assert.equal(disconnected.code, 0, disconnected.stderr)
    assert.match(disconnected.stdout, new RegExp(`^disconnected from ${a.run.peerId}`))
    // the connection is closed (b logs it); a DHT node may dial its closest peers again at once,
    // so what `peers` shows right after is not asserted
    await waitFor(() => b.output().includes(`peer disconnected: ${a.run.peerId}`), { what: 'b to log the disconnection' })
    // a peer nobody runs, at an address where nothing listens
    const nobody = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const bad = await runCli(['connect', '/ip4/127.0.0.1/tcp/1/p2p/' + nobody, '--home', b.home])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /^aistack: cannot connect to \/ip4\/127\.0\.0\.1\/tcp\/1\/p2p\/\S+: .+\n$/)
    // caps --network: what b knows of the network, a's capability with its owner
    await runCli(['caps', 'add', file, '--home', a.home])
    await runCli(['connect', a.run.multiaddrs[0], '--home', b.home])
    const known = await waitFor(async () => {
      await runCli(['find', 'make a text loud', '--home', b.home])
      const r = await runCli(['caps', '--network', '--json', '--home', b.home])
      return JSON.parse(r.stdout).capabilities.find((c: any) => c.name === 'shout')
    }, { timeoutMs: 60_000, intervalMs: 500, what: 'shout in b\'s caps --network' })
    assert.equal(known.peerId, a.run.peerId)
    const table = await runCli(['caps', '--network', '--home', b.home])
    assert.match(table.stdout, new RegExp(`^shout +${a.run.peerId} `, 'm'))
  })

  it('task watch of a map task shows "N/M done" rather than a line per child', async () => {
    const home = await tempDir()
    const slow = 'let s=\'\';process.stdin.on(\'data\',d=>s+=d).on(\'end\',()=>setTimeout(()=>process.stdout.write(s),200))'
    await writeFile(join(home, 'config.json'), JSON.stringify({ capabilities: [{ name: 'slow-echo', description: 'Echo slowly', handler: { type: 'exec', command: [process.execPath, '-e', slow], concurrency: 2 } }] }))
    const node = await startNodeProcess(home)
    running.push(node)
    const inputs = join(home, 'inputs.json')
    await writeFile(inputs, JSON.stringify(Array.from({ length: 10 }, (_, i) => `item-${i}`)))
    const submitted = await runCli(['task', 'submit', '--capability', 'slow-echo', '--inputs-file', inputs, '--json', '--home', home])
    assert.equal(submitted.code, 0, submitted.stderr)
    const { id } = JSON.parse(submitted.stdout)
    const watched = await runCli(['task', 'watch', id, '--home', home])
    assert.equal(watched.code, 0, watched.stderr)
    const progress = watched.stdout.split('\n').filter(l => / \d+\/10 done$/.test(l))
    assert.ok(progress.length >= 1 && progress.length <= 11, watched.stdout)
    assert.ok(!watched.stdout.includes(`${String(id)}.3 `), 'no line per child')
    assert.match(watched.stdout, /item-9/)
  })

  it('start --detach returns once ready, logs to <home>/node.log, and aistack logs prints it', async () => {
    const home = await tempDir()
    const started = await runCli(['start', '--detach', '--home', home, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
    assert.equal(started.code, 0, started.stderr)
    const run = await readRunFile(home)
    assert.ok(run != null && isAlive(run.pid))
    try {
      assert.match(started.stdout, new RegExp(`started in the background \\(pid ${run.pid}`))
      const logs = await runCli(['logs', '--home', home, '-n', '100'])
      assert.equal(logs.code, 0, logs.stderr)
      assert.match(logs.stdout, /aistack node ready/)
      const again = await runCli(['start', '--detach', '--home', home, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
      assert.equal(again.code, 1)
      assert.match(again.stderr, /^aistack: the node did not start: a node is already running/)
    } finally {
      const stopped = await runCli(['stop', '--home', home])
      assert.equal(stopped.code, 0, stopped.stderr)
    }
    assert.equal(isAlive(run.pid), false)
  })

  it('task ids by unique prefix; a junk run.json is named as such', async () => {
    const home = await tempDir()
    await writeFile(join(home, 'config.json'), JSON.stringify({ capabilities: [{ name: 'echo', description: 'Echo the input', handler: { type: 'builtin', name: 'echo' } }] }))
    const node = await startNodeProcess(home)
    running.push(node)
    const submitted = await runCli(['task', 'submit', '--capability', 'echo', '--input', 'hello', '--wait', '--home', home])
    assert.equal(submitted.code, 0, submitted.stderr)
    assert.equal(submitted.stdout, 'hello\n')
    assert.match(submitted.stderr, /^task \S+ completed in \d+\.\d s after 1 attempt\(s\)/m)
    const id = /^submitted (\S+)$/m.exec(submitted.stderr)?.[1] as string
    const status = await runCli(['task', 'status', id.slice(0, 8), '--home', home])
    assert.equal(status.code, 0, status.stderr)
    assert.match(status.stdout, new RegExp(`^task {6}${id}$`, 'm'))
    assert.match(status.stdout, /^result {4}hello\nhistory$/m, 'no blank line after the result')

    const junk = await tempDir()
    await writeFile(join(junk, 'run.json'), 'junk')
    const id2 = await runCli(['id', '--home', junk])
    assert.equal(id2.code, 1)
    assert.match(id2.stderr, /run\.json is not a valid run file/)
  })
})
