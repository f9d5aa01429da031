import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isAlive, readRunFile } from '../src/run-file.js'
import { api, removeTempDirs, runCli, tempDir, waitFor } from './helpers.js'
import type { RunInfo } from '../src/run-file.js'

describe('aistack testnet (node processes)', function () {
  this.timeout(180_000)
  let dir: string | undefined

  afterEach(async () => {
    // never leave processes behind, even when an assertion failed half-way
    if (dir != null) await runCli(['testnet', 'down', '--dir', dir, '--timeout', '20'])
    dir = undefined
    await removeTempDirs()
  })

  it('up --nodes 3 connects every node to the other two; down leaves no process behind', async () => {
    dir = await tempDir('aistack-testnet-')
    const up = await runCli(['testnet', 'up', '--nodes', '3', '--dir', dir, '--timeout', '90'], { timeoutMs: 120_000 })
    assert.equal(up.code, 0, up.stderr)
    assert.match(up.stderr, /routing tables complete on 3\/3 node\(s\)/, 'progress is shown')
    assert.match(up.stdout, /node-0 .* running/)

    const runs: RunInfo[] = []
    for (let i = 0; i < 3; i++) {
      const run = await readRunFile(join(dir, `node-${i}`))
      assert.ok(run != null, `node-${i} has a run.json`)
      runs.push(run)
    }
    for (const run of runs) {
      const { status, json } = await api(run, 'GET', '/v1/peers')
      assert.equal(status, 200)
      const others = runs.filter(r => r !== run).map(r => r.peerId).sort()
      const seen = [...new Set(json.peers.map((p: any) => p.peerId as string))].sort()
      assert.deepEqual(seen, others)
      for (const peer of json.peers) {
        assert.equal(peer.transport, 'tcp')
        assert.equal(peer.encryption, 'noise-mlkem768-hfs', 'aistack nodes use the hybrid handshake')
        assert.equal(peer.pq, true)
      }
      const metrics = await api(run, 'GET', '/metrics')
      assert.match(metrics.text, /aistack_handshakes_total\{encrypter_outcome="noise-mlkem768-hfs_success"\} [1-9]/)
      const dht = await api(run, 'GET', '/v1/dht')
      assert.deepEqual([...dht.json.routingTable].sort(), others)
    }

    const status = await runCli(['testnet', 'status', '--dir', dir, '--json'])
    assert.equal(status.code, 0, status.stderr)
    const { nodes } = JSON.parse(status.stdout)
    assert.equal(nodes.length, 3)
    assert.ok(nodes.every((n: any) => n.running && n.routingTable === 2))

    const again = await runCli(['testnet', 'up', '--nodes', '3', '--dir', dir])
    assert.equal(again.code, 1, 'a testnet that already runs is a state, not a usage error: exit 1 like start')
    assert.match(again.stderr, /still running/)

    // restart one node: same peer ID, a new process, back in the others' routing tables
    const before = JSON.parse(await readFile(join(dir, 'testnet.json'), 'utf8')).nodes[1]
    const restarted = await runCli(['testnet', 'restart', '1', '--dir', dir])
    assert.equal(restarted.code, 0, restarted.stderr)
    assert.match(restarted.stdout, new RegExp(`^restarted node-1 \\(pid \\d+, peer ID ${String(before.peerId)}\\)`))
    const after = JSON.parse(await readFile(join(dir, 'testnet.json'), 'utf8')).nodes[1]
    assert.notEqual(after.pid, before.pid)
    assert.equal(isAlive(before.pid), false)
    const testnetDir = dir
    await waitFor(async () => {
      const st = JSON.parse((await runCli(['testnet', 'status', '--dir', testnetDir, '--json'])).stdout)
      return st.nodes.every((n: any) => n.running && n.peers === 2)
    }, { timeoutMs: 60_000, what: 'node-1 connected again' })

    const testnetFile = JSON.parse(await readFile(join(dir, 'testnet.json'), 'utf8'))
    const pids: number[] = testnetFile.nodes.map((n: any) => n.pid)
    const down = await runCli(['testnet', 'down', '--dir', dir])
    assert.equal(down.code, 0, down.stderr)
    assert.match(down.stdout, /stopped 3 node\(s\)/)
    for (const pid of pids) assert.equal(isAlive(pid), false, `process ${pid} is gone`)
    for (let i = 0; i < 3; i++) assert.equal(await readRunFile(join(dir, `node-${i}`)), undefined)
    // nothing left to stop: exit 1, as `aistack stop` with no node
    const twice = await runCli(['testnet', 'down', '--dir', dir])
    assert.equal(twice.code, 1)
    assert.match(twice.stderr, /^aistack: testnet down: no testnet in .*nothing to stop\n$/)
    dir = undefined
  })
})
