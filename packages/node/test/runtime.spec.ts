import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { getPriority } from 'node:os'
import { execForNode, runtimeInfo, singleThreadedGc, V8_BACKGROUND_NICE, wantedGc } from '../src/runtime.js'
import { api, removeTempDirs, runCli, startNodeProcess, tempDir } from './helpers.js'
import type { NodeProcess } from './helpers.js'

describe('node runtime: V8 garbage collection and background threads', function () {
  this.timeout(180_000)
  const nodes: NodeProcess[] = []

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    await removeTempDirs()
  })

  it('reads AISTACK_GC: single-threaded by default, parallel on request, anything else refused', () => {
    assert.equal(wantedGc({}), 'single-threaded')
    assert.equal(wantedGc({ AISTACK_GC: '' }), 'single-threaded')
    assert.equal(wantedGc({ AISTACK_GC: 'parallel' }), 'parallel')
    assert.equal(wantedGc({ AISTACK_GC: 'single-threaded' }), 'single-threaded')
    assert.throws(() => wantedGc({ AISTACK_GC: 'fast' }), { name: 'UsageError', message: /AISTACK_GC must be "single-threaded" or "parallel" \(got "fast"\)/ })
    assert.equal(singleThreadedGc(['--single-threaded-gc']), true)
    assert.equal(singleThreadedGc(['--max-old-space-size=100']), false)
  })

  it('re-executes only for a node in the foreground', () => {
    // none of these may replace the test process: they return
    for (const argv of [['ask', 'x'], ['start', '--detach'], ['start', '--help'], []]) execForNode(argv)
    // this test process runs without the flag and reports it
    assert.equal(runtimeInfo().gc, singleThreadedGc() ? 'single-threaded' : 'parallel')
  })

  it('`aistack start` runs with --single-threaded-gc in the same process, its compiler threads lowered', async function () {
    const node = await startNodeProcess(await tempDir())
    nodes.push(node)
    // the pid the spawner holds is the node's (run.json is only accepted with that pid)
    assert.equal(node.run.pid, node.child.pid)
    const { status, json, text } = await api(node.run, 'GET', '/v1/status')
    assert.equal(status, 200, text)
    assert.equal(json.runtime.gc, 'single-threaded')
    assert.match(node.output(), /V8 collects garbage on the node's own threads \(--single-threaded-gc\)/)
    if (process.platform === 'linux') {
      const cmdline = (await readFile(`/proc/${node.run.pid}/cmdline`, 'utf8')).split('\0')
      assert.ok(cmdline.includes('--single-threaded-gc'), cmdline.join(' '))
      assert.ok(json.runtime.v8Threads > 0, text)
      assert.equal(json.runtime.v8ThreadsNice, Math.min(19, getPriority(node.run.pid) + V8_BACKGROUND_NICE))
      // the event loop's own thread keeps the priority it was started with
      assert.equal(getPriority(node.run.pid), getPriority(process.pid))
    }
  })

  it('AISTACK_GC=parallel keeps V8 as it is; a bad value stops `aistack start` with one line', async function () {
    const node = await startNodeProcess(await tempDir(), [], { env: { AISTACK_GC: 'parallel' } })
    nodes.push(node)
    const { json } = await api(node.run, 'GET', '/v1/status')
    assert.equal(json.runtime.gc, 'parallel')
    if (process.platform === 'linux') assert.equal(json.runtime.v8ThreadsNice, getPriority(node.run.pid))
    assert.match(node.output(), /AISTACK_GC=parallel/)

    const bad = await runCli(['start', '--home', await tempDir(), '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'], { env: { AISTACK_GC: 'fast' } })
    assert.equal(bad.code, 1)
    assert.equal(bad.stderr.trim(), 'aistack: AISTACK_GC must be "single-threaded" or "parallel" (got "fast"); unset it for the default')
  })
})
