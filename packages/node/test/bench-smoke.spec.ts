import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { getPriority } from 'node:os'
import { fileURLToPath } from 'node:url'
import { INITIAL_OLD_SPACE, INITIAL_OLD_SPACE_MIB, SINGLE_THREADED_GC } from '../src/runtime.js'

/** the repository's scripts/bench, from dist/test */
const BENCH = fileURLToPath(new URL('../../../../scripts/bench/', import.meta.url))

/** the repository's package.json, for the benchmarks' npm scripts */
const PACKAGE = fileURLToPath(new URL('../../../../package.json', import.meta.url))

/** Runs a benchmark script with small counts and `--json true` (and Node's `flags`); its one JSON object */
async function runBench (script: string, args: string[], flags: string[] = []): Promise<any> {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [...flags, BENCH + script, ...args, '--json', 'true'], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, out, errOut) => {
      if (err != null) reject(new Error(`${script} failed: ${err.message}\n${errOut}`))
      else resolve(out)
    })
  })
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '')
}

// The benchmarks measure speed, which is not checked here: this checks that the quick ones still
// run against today's APIs and report their figures, with the outcomes that do not depend on the
// machine. (The ones that start node processes or DHT networks take minutes and are run by hand.)
describe('benchmarks, small counts', function () {
  this.timeout(180_000)

  it('bench:sembatch reports every figure; embed answers come back exact as f32 tensors', async () => {
    const r = await runBench('sembatch.js', ['--messages', '500', '--unbatched', '50', '--window', '64', '--unbatched-window', '8', '--seq', '20', '--realtime', '20', '--bulk-window', '8', '--bulk-warmup-ms', '100', '--vectors', '50', '--embed', '50'], [SINGLE_THREADED_GC, INITIAL_OLD_SPACE])
    for (const field of ['smallMessageRatio', 'idleAddedLatencyP50Ms', 'realtimeP99Ms', 'realtimeP99MsSameLoop', 'realtimeLaneRatio', 'tensorBytesRatio', 'embedBatchRatio']) {
      assert.equal(typeof r[field], 'number', field)
    }
    // realtimeP99Ms was measured with bulk on the lane (the bench waits for it to open)
    assert.equal(r.bulkLane, true)
    assert.ok(r.realtime.bulkMiBps > 0 && r.realtimeSameLoop.bulkMiBps > 0)
    assert.ok(r.tensorBytesRatio < 0.25, `tensorBytesRatio ${r.tensorBytesRatio}`)
    assert.equal(r.answers.f32.exact, true)
    assert.ok(r.answers.f32.ratio < 0.5, `f32 answers ${r.answers.f32.ratio} of JSON`)
    assert.ok(r.answers.int8.ratio < r.answers.f32.ratio)
    // run as its npm script runs it, with a node's V8 flags, and it says so
    assert.equal(r.runtime.gc, 'single-threaded')
    assert.equal(r.runtime.initialOldSpaceMiB, INITIAL_OLD_SPACE_MIB)
    if (process.platform === 'linux') assert.equal(r.runtime.v8ThreadsNice, Math.min(19, getPriority() + 10))
    // the npm scripts of the sembatch benchmarks give Node the flags `aistack start` gives a node
    const scripts = JSON.parse(readFileSync(PACKAGE, 'utf8')).scripts
    for (const name of ['bench:sembatch', 'bench:sembatch-realtime']) {
      assert.ok(scripts[name].includes(`node ${SINGLE_THREADED_GC} ${INITIAL_OLD_SPACE} `), `${name}: ${scripts[name]}`)
    }
  })

  it('bench:sembatch-realtime reports every set with the plain-socket floor, and the floor under bulk on a bare stream', async () => {
    const r = await runBench('sembatch-realtime.js', ['--rounds', '1', '--realtime', '20', '--idle-ms', '100', '--bulk-window', '8'])
    assert.equal(typeof r.laneP99Ratio, 'number')
    for (const name of ['before', 'after', 'lane']) {
      const set = r.sets[name]
      assert.equal(typeof set.realtimeP99Ms, 'number', name)
      assert.equal(typeof set.plainTcpUnderBulkMs.p99, 'number', name)
      assert.equal(typeof set.clientGcUnderBulk.full, 'number', name)
      assert.ok(set.bulkMiBps > 0, `${name}: bulk ${set.bulkMiBps} MiB/s`)
    }
    assert.ok(r.rawStreamBulk.bulkMiBps > 0)
    assert.equal(typeof r.rawStreamBulk.plainTcpUnderBulkMs.p99, 'number')
  })

  it('bench:anycast-sembatch answers over both paths', async () => {
    const r = await runBench('anycast-sembatch.js', ['--seq', '10', '--asks', '40', '--many', '40', '--rounds', '1'])
    // each path's asks took that path only
    assert.ok(r.transportStats.sembatch.sembatch > 0)
    assert.equal(r.transportStats.sembatch.stream, 0)
    assert.ok(r.transportStats.stream.stream > 0)
    assert.equal(r.transportStats.stream.sembatch, 0)
    assert.ok(r.askManyRatio > 0)
  })

  it('bench:handshake sets up and carries bytes over the hybrid and /noise', async () => {
    const r = await runBench('handshake.js', ['--connections', '4', '--warmup', '1', '--mib', '4', '--rounds', '1'])
    assert.ok(r.ratios.throughput > 0, JSON.stringify(r.ratios))
    assert.ok(r.ratios.setupMedian > 0, JSON.stringify(r.ratios))
  })
})
