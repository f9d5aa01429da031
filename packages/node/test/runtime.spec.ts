import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { getPriority } from 'node:os'
import { readRunFile } from '../src/run-file.js'
import { childNodeFlags, execForNode, INITIAL_OLD_SPACE, INITIAL_OLD_SPACE_MIB, initialOldSpaceMiB, missingNodeFlags, noExecReason, runtimeInfo, singleThreadedGc, V8_BACKGROUND_NICE, wantedGc } from '../src/runtime.js'
import { api, BIN, removeTempDirs, runCli, startNodeProcess, tempDir } from './helpers.js'
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
    assert.throws(() => wantedGc({ AISTACK_GC: 'a\nb' }), { message: /\(got "a\\nb"\)/ })
    assert.equal(singleThreadedGc(['--single-threaded-gc']), true)
    assert.equal(singleThreadedGc(['--max-old-space-size=100']), false)
    // V8 takes the last of the two
    assert.equal(singleThreadedGc(['--single-threaded-gc', '--no-single-threaded-gc']), false)
    assert.equal(singleThreadedGc(['--no-single-threaded-gc', '--single-threaded-gc']), true)
  })

  it('adds the V8 options a node lacks, and keeps a size the user gave', () => {
    assert.deepEqual(missingNodeFlags([], {}), ['--single-threaded-gc', INITIAL_OLD_SPACE])
    assert.deepEqual(missingNodeFlags(['--single-threaded-gc'], {}), [INITIAL_OLD_SPACE])
    assert.deepEqual(missingNodeFlags(['--single-threaded-gc', INITIAL_OLD_SPACE], {}), [])
    // the user's own size, on the command line or in NODE_OPTIONS, is kept
    assert.deepEqual(missingNodeFlags(['--initial-old-space-size=64'], {}), ['--single-threaded-gc'])
    assert.deepEqual(missingNodeFlags(['--single-threaded-gc'], { NODE_OPTIONS: '--max-old-space-size=500  --initial_old_space_size=32' }), [])
    assert.deepEqual(missingNodeFlags(['--single-threaded-gc', '--initial-heap-size=40'], {}), [])
    // the command line's value wins over NODE_OPTIONS', the last one over earlier ones
    assert.equal(initialOldSpaceMiB(['--initial-old-space-size=64', '--initial-old-space-size=96'], { NODE_OPTIONS: '--initial-old-space-size=32' }), 96)
    assert.equal(initialOldSpaceMiB([], { NODE_OPTIONS: '--initial-old-space-size=32' }), 32)
    assert.equal(initialOldSpaceMiB(['--max-old-space-size=100'], {}), null)
    assert.equal(INITIAL_OLD_SPACE, `--initial-old-space-size=${INITIAL_OLD_SPACE_MIB}`)
  })

  it('re-executes only for a node in the foreground, and says why not otherwise', () => {
    // none of these may replace the test process: they return
    for (const argv of [['ask', 'x'], ['start', '--detach'], ['start', '--help'], []]) execForNode(argv)
    // this test process runs without the flag and reports it
    assert.equal(runtimeInfo().gc, singleThreadedGc() ? 'single-threaded' : 'parallel')
    // a bad AISTACK_GC stops `start --detach` too, before its child is started
    process.env.AISTACK_GC = 'fast'
    try {
      assert.throws(() => { execForNode(['start', '--detach']) }, { name: 'UsageError' })
      assert.doesNotThrow(() => { execForNode(['start', '--help']) })
    } finally {
      delete process.env.AISTACK_GC
    }
    if (process.platform !== 'win32') {
      assert.equal(noExecReason([], process.execPath), undefined)
      assert.match(noExecReason(['--inspect=0'], process.execPath) ?? '', /inspector/)
      assert.match(noExecReason(['--no-single-threaded-gc'], process.execPath) ?? '', /--no-single-threaded-gc/)
      // a program name without a path (`node` from a shebang with /proc unavailable) cannot be run again
      assert.match(noExecReason([], 'node') ?? '', /cannot be found/)
    }
    assert.deepEqual(childNodeFlags(['--max-old-space-size=200', '--inspect=9229', '--inspect-brk', '--single-threaded-gc']), ['--max-old-space-size=200', '--single-threaded-gc'])
  })

  it('`aistack start` runs with --single-threaded-gc and the old space\'s floor in the same process, its compiler threads lowered', async function () {
    const node = await startNodeProcess(await tempDir())
    nodes.push(node)
    // the pid the spawner holds is the node's (run.json is only accepted with that pid)
    assert.equal(node.run.pid, node.child.pid)
    const { status, json, text } = await api(node.run, 'GET', '/v1/status')
    assert.equal(status, 200, text)
    assert.equal(json.runtime.gc, 'single-threaded')
    assert.equal(json.runtime.initialOldSpaceMiB, INITIAL_OLD_SPACE_MIB)
    assert.match(node.output(), /V8 collects garbage on the node's own threads \(--single-threaded-gc\).*no full collection for the old generation's size below 128 MiB/)
    if (process.platform === 'linux') {
      const cmdline = (await readFile(`/proc/${node.run.pid}/cmdline`, 'utf8')).split('\0')
      assert.ok(cmdline.includes('--single-threaded-gc') && cmdline.includes(INITIAL_OLD_SPACE), cmdline.join(' '))
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
    assert.equal(json.runtime.initialOldSpaceMiB, null)
    if (process.platform === 'linux') assert.equal(json.runtime.v8ThreadsNice, getPriority(node.run.pid))
    assert.match(node.output(), /AISTACK_GC=parallel/)

    const bad = await runCli(['start', '--home', await tempDir(), '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'], { env: { AISTACK_GC: 'fast' } })
    assert.equal(bad.code, 2)
    assert.equal(bad.stderr.trim(), 'aistack: AISTACK_GC must be "single-threaded" or "parallel" (got "fast"); unset it for the default')
  })

  it('`aistack start --detach` passes Node\'s options on to the node, which adds --single-threaded-gc and keeps the user\'s old-space size', async function () {
    if (process.platform !== 'linux') this.skip()
    const home = await tempDir()
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--max-old-space-size=300', '--initial-old-space-size=64', BIN, 'start', '--detach', '--home', home, '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'], { timeout: 120_000 }, (err, stdout, stderr) => {
        if (err != null) reject(new Error(`${err.message}\n${stderr}`))
        else resolve(stdout)
      })
    })
    const run = await readRunFile(home)
    assert.ok(run != null, out)
    try {
      const cmdline = (await readFile(`/proc/${run.pid}/cmdline`, 'utf8')).split('\0')
      assert.ok(cmdline.includes('--max-old-space-size=300') && cmdline.includes('--single-threaded-gc'), cmdline.join(' '))
      assert.ok(cmdline.includes('--initial-old-space-size=64') && !cmdline.includes(INITIAL_OLD_SPACE), cmdline.join(' '))
      const { json } = await api(run, 'GET', '/v1/status')
      assert.equal(json.runtime.gc, 'single-threaded')
      assert.equal(json.runtime.initialOldSpaceMiB, 64)
    } finally {
      const stop = await runCli(['stop', '--home', home])
      assert.equal(stop.code, 0, stop.stderr)
    }
  })
})
