import assert from 'node:assert/strict'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  AlertEvaluator, CapabilityStatsRecorder, LIMITS, NetworkTable, TraceStore, applyDelta, changedEnough, decodeRecord, deltaRecord,
  encodeRecord, fullRecord, loadFromTelemetry, neighbourTag, parseNvidiaSmi, pickNeighbours, queryGpus, telemetryOf, telemetryTopic
} from '../src/index.js'
import type { NodeTelemetry, TelemetryRecord } from '../src/index.js'

function sample (over: Partial<NodeTelemetry> = {}): NodeTelemetry {
  return {
    timeMs: 1_700_000_000_000,
    intervalMs: 5000,
    version: '0.1.0',
    cpuPercent: 3.2,
    rssBytes: 120_000_000,
    heapUsedBytes: 40_000_000,
    memUsedPercent: 41.5,
    eventLoopP99Ms: 12.5,
    connections: 4,
    bytesInPerSec: 300,
    bytesOutPerSec: 200,
    capabilities: [{ name: 'echo', inFlight: 1, capacity: 8, queueDepth: 0, requests: 10, errors: 1, p50Ms: 1.5, p95Ms: 4, p99Ms: 9.25, ratePerMin: 12 }],
    alerts: [],
    ...over
  }
}

describe('telemetry records', () => {
  it('names its topic and signature domain after the network', () => {
    assert.equal(telemetryTopic('aistack'), 'aistack/2/telemetry')
    assert.equal(telemetryTopic('aistack-testnet'), 'aistack-testnet/2/telemetry')
    assert.throws(() => telemetryTopic('Bad Net'), RangeError)
  })

  it('round-trips a full record through the wire form', () => {
    const t = sample({ gpus: [{ index: 0, name: 'A100', utilization: 50, memoryUsedMiB: 100, memoryTotalMiB: 40960 }] })
    const back = telemetryOf(decodeRecord(encodeRecord(fullRecord(t, 1n))))
    assert.deepEqual(back, t)
  })

  it('a delta carries only what changed against the full record, and applies back to the same state', () => {
    const base = fullRecord(sample(), 1n)
    const next = fullRecord(sample({ timeMs: 1_700_000_005_000, connections: 5, cpuPercent: 3.2 }), 2n)
    const delta = deltaRecord(base, next)
    assert.equal(delta.full, false)
    assert.equal(delta.baseSeq, 1n)
    assert.equal(delta.connections, 5)
    assert.equal(delta.cpuPermille, undefined)
    assert.equal(delta.capabilitiesSet, false)
    assert.deepEqual(delta.capabilities, [])
    assert.ok(encodeRecord(delta).byteLength < encodeRecord(next).byteLength / 3, 'a quiet delta is much smaller than a full record')
    assert.deepEqual(telemetryOf(applyDelta(base, decodeRecord(encodeRecord(delta)))), telemetryOf(next))

    const busier = fullRecord(sample({ capabilities: [{ ...sample().capabilities[0], inFlight: 7 }], alerts: ['latency-p95:echo'] }), 3n)
    const d2 = deltaRecord(base, busier)
    assert.equal(d2.capabilitiesSet, true)
    assert.equal(d2.alertsSet, true)
    assert.deepEqual(telemetryOf(applyDelta(base, d2)), telemetryOf(busier))
  })

  it('finds a change worth a delta only beyond the thresholds, or in the capabilities or alerts', () => {
    const sent = fullRecord(sample(), 1n)
    const next = (over: Partial<NodeTelemetry>): TelemetryRecord => fullRecord(sample(over), 2n)
    assert.equal(changedEnough(sent, next({ timeMs: 1_700_000_005_000 })), false)
    assert.equal(changedEnough(sent, next({ cpuPercent: 12, rssBytes: 170_000_000, heapUsedBytes: 55_000_000, memUsedPercent: 50, eventLoopP99Ms: 200, connections: 6, bytesInPerSec: 9000 })), false)
    // the host's memory (other processes move it) waits for the heartbeat; so does a loop delay under 1 s
    assert.equal(changedEnough(sent, next({ memUsedPercent: 95, eventLoopP99Ms: 900 })), false)
    assert.equal(changedEnough(sent, next({ cpuPercent: 13.2 })), true)
    assert.equal(changedEnough(sent, next({ rssBytes: 181_000_000 })), true)
    assert.equal(changedEnough(sent, next({ eventLoopP99Ms: 1100 })), true)
    assert.equal(changedEnough(sent, next({ connections: 8 })), true)
    assert.equal(changedEnough(sent, next({ bytesOutPerSec: 20_000 })), true)
    assert.equal(changedEnough(sent, next({ alerts: ['error-rate:echo'] })), true)
    assert.equal(changedEnough(sent, next({ capabilities: [{ ...sample().capabilities[0], inFlight: 2 }] })), true)
    assert.equal(changedEnough(sent, next({ gpus: [{ index: 0, name: 'T4', utilization: 50, memoryUsedMiB: 100, memoryTotalMiB: 16000 }] })), true)
  })

  it('refuses records out of its limits', () => {
    const good = fullRecord(sample(), 1n)
    const bad = (r: Partial<TelemetryRecord>): Uint8Array => encodeRecord({ ...good, ...r })
    assert.throws(() => decodeRecord(bad({ seq: 0n, baseSeq: 0n })), /seq/)
    assert.throws(() => decodeRecord(bad({ intervalMs: 10 })), /interval/)
    assert.throws(() => decodeRecord(bad({ format: 1 })), /format 1/)
    assert.throws(() => decodeRecord(bad({ heartbeatMs: 1000 })), /heartbeat/)
    assert.equal(decodeRecord(bad({ heartbeatMs: 60_000 })).heartbeatMs, 60_000)
    assert.throws(() => decodeRecord(bad({ full: false, baseSeq: 5n })), /base_seq/)
    const many = Array.from({ length: LIMITS.maxCapabilities + 1 }, (_, i) => ({ ...good.capabilities[0], name: `c${i}` }))
    assert.throws(() => decodeRecord(bad({ capabilities: many })), /not a telemetry record/)
    assert.throws(() => decodeRecord(new Uint8Array([0xff, 0xff, 0xff])), /not a telemetry record/)
  })
})

describe('the network table', () => {
  it('marks a node down after three of its intervals of silence and forgets it later', () => {
    let now = 1000
    const table = new NetworkTable({ forgetAfterMs: 60_000, now: () => now })
    assert.equal(table.accept('peerA', fullRecord(sample({ intervalMs: 1000 }), 1n)), 'applied')
    assert.equal(table.get('peerA')?.status, 'up')
    now += 2999
    assert.equal(table.get('peerA')?.status, 'up')
    now += 2
    assert.equal(table.get('peerA')?.status, 'down')
    assert.equal(table.get('peerA')?.lastSeenMs, 3001)
    now += 60_000
    assert.equal(table.sweep(), 1)
    assert.equal(table.get('peerA'), undefined)
  })

  it('keeps a quiet node with a heartbeat up until it misses the heartbeat by three intervals, or sooner once its connection closed', () => {
    let now = 0
    const table = new NetworkTable({ forgetAfterMs: 3_600_000, now: () => now })
    table.accept('quiet', fullRecord(sample({ intervalMs: 1000, heartbeatMs: 12_000 }), 1n))
    table.accept('gone', fullRecord(sample({ intervalMs: 1000, heartbeatMs: 12_000 }), 1n))
    now += 5000
    table.disconnected('gone')
    assert.equal(table.get('quiet')?.status, 'up')
    assert.equal(table.get('gone')?.status, 'down')
    now += 10_000
    assert.equal(table.get('quiet')?.status, 'up')
    now += 1
    assert.equal(table.get('quiet')?.status, 'down')
    // a record after the disconnection counts again by the heartbeat; so does a new connection
    table.accept('gone', fullRecord(sample({ intervalMs: 1000, heartbeatMs: 12_000 }), 2n))
    now += 5000
    assert.equal(table.get('gone')?.status, 'up')
    table.disconnected('gone')
    assert.equal(table.get('gone')?.status, 'down')
    table.connected('gone')
    assert.equal(table.get('gone')?.status, 'up')
  })

  it('ignores repeated sequence numbers and applies deltas to their full record', () => {
    const table = new NetworkTable({ forgetAfterMs: 60_000 })
    const base = fullRecord(sample(), 4n)
    assert.equal(table.accept('p', base), 'applied')
    assert.equal(table.accept('p', base), 'stale')
    assert.equal(table.accept('p', deltaRecord(base, fullRecord(sample({ connections: 9 }), 5n))), 'applied')
    const row = table.get('p')
    assert.equal(row?.telemetry.connections, 9)
    assert.equal(row?.complete, true)
    // a node started again counts from 1: its full record, written later, is taken; an old one is not
    const later = fullRecord(sample({ timeMs: 1_700_000_100_000, connections: 3 }), 1n)
    assert.equal(table.accept('p', fullRecord(sample({ timeMs: 1_600_000_000_000 }), 2n)), 'stale')
    assert.equal(table.accept('p', later), 'applied')
    assert.equal(table.get('p')?.telemetry.connections, 3)
    assert.equal(table.accept('p', later), 'stale')
    // a delta whose full record never came leaves the row incomplete
    assert.equal(table.accept('q', deltaRecord(fullRecord(sample(), 1n), fullRecord(sample({ connections: 2 }), 2n))), 'applied')
    assert.equal(table.get('q')?.complete, false)
  })

  it('is bounded: a newcomer only takes the row of a node that is down', () => {
    let now = 0
    const table = new NetworkTable({ forgetAfterMs: 3_600_000, now: () => now })
    for (let i = 0; i < LIMITS.maxNodes; i++) table.accept(`p${i}`, fullRecord(sample({ intervalMs: 1000 }), 1n))
    assert.equal(table.accept('late', fullRecord(sample(), 1n)), 'full')
    now += 10_000
    for (let i = 1; i < LIMITS.maxNodes; i++) table.accept(`p${i}`, fullRecord(sample({ intervalMs: 1000 }), 2n))
    assert.equal(table.accept('late', fullRecord(sample(), 1n)), 'applied')
    assert.equal(table.get('p0'), undefined)
    assert.equal(table.size, LIMITS.maxNodes)
  })

  it('names the links of a node from its full record, as far as it knows the peers, and keeps them across deltas', () => {
    const table = new NetworkTable({ forgetAfterMs: 60_000, selfId: 'self' })
    const a = fullRecord(sample({ links: ['peerB', 'self', 'stranger'] }), 1n)
    assert.equal(decodeRecord(encodeRecord(a)).neighbours.byteLength, 12, 'three 4-byte tags')
    table.accept('peerA', a)
    table.accept('peerB', fullRecord(sample({ links: ['peerA'] }), 1n))
    // the stranger sent nothing: its tag does not resolve
    assert.deepEqual(table.get('peerA')?.telemetry.links, pickNeighbours(['peerB', 'self']))
    assert.deepEqual(table.get('peerB')?.telemetry.links, ['peerA'])
    const delta = deltaRecord(a, fullRecord(sample({ connections: 9, links: [] }), 2n))
    assert.equal(delta.neighbours.byteLength, 0)
    table.accept('peerA', decodeRecord(encodeRecord(delta)))
    assert.deepEqual(table.get('peerA')?.telemetry.links, pickNeighbours(['peerB', 'self']))
    table.delete('peerB')
    assert.deepEqual(table.get('peerA')?.telemetry.links, ['self'])
  })

  it('bounds the neighbours of a record to 32 tags of 4 bytes, in full records only', () => {
    const many = Array.from({ length: 100 }, (_, i) => `peer${i}`)
    const picked = pickNeighbours([...many, ...many])
    assert.equal(picked.length, LIMITS.maxNeighbours)
    assert.deepEqual(picked.map(neighbourTag), [...picked.map(neighbourTag)].sort())
    const good = fullRecord(sample({ links: many }), 1n)
    assert.equal(good.neighbours.byteLength, 4 * LIMITS.maxNeighbours)
    assert.throws(() => decodeRecord(encodeRecord({ ...good, neighbours: new Uint8Array(5) })), /neighbours/)
    assert.throws(() => decodeRecord(encodeRecord({ ...good, neighbours: new Uint8Array(4 * 33) })), /neighbours/)
    assert.throws(() => decodeRecord(encodeRecord({ ...good, full: false, baseSeq: 0n, seq: 2n })), /no neighbours/)
  })

  it('gives anycast a load summary of a node', () => {
    const load = loadFromTelemetry({ status: 'up', lastSeenMs: 10, telemetry: sample() })
    assert.equal(load.up, true)
    assert.equal(load.load, 1 / 8)
    assert.equal(load.p95Ms, 4)
    assert.equal(load.errorRate, 0.1)
    assert.deepEqual(load.capabilities.echo, { load: 1 / 8, p95Ms: 4 })
  })
})

describe('capability statistics and alerts', () => {
  it('keeps percentiles, rates and counters per capability over the window', () => {
    const rec = new CapabilityStatsRecorder(2)
    for (let i = 1; i <= 100; i++) rec.record('echo', i, i !== 50)
    const first = rec.sample([{ name: 'echo', inFlight: 0, capacity: 4 }], 60_000)
    const echo = first.capabilities[0]
    assert.equal(echo.requests, 100)
    assert.equal(echo.errors, 1)
    assert.ok(Math.abs(echo.p50Ms - 50) <= 1, `p50 ${echo.p50Ms}`)
    assert.ok(Math.abs(echo.p95Ms - 95) <= 1, `p95 ${echo.p95Ms}`)
    assert.equal(echo.ratePerMin, 100)
    // the window is two intervals: the old requests drop out after the next two samples
    rec.sample([{ name: 'echo', inFlight: 0, capacity: 4 }], 60_000)
    const third = rec.sample([{ name: 'echo', inFlight: 0, capacity: 4 }], 60_000)
    assert.equal(third.capabilities[0].p95Ms, 0)
    assert.equal(third.capabilities[0].requests, 100)
    assert.deepEqual(rec.sample([], 60_000).capabilities, [])
  })

  it('raises an alert once and clears it once', () => {
    const alerts = new AlertEvaluator({ minRatePerMin: { echo: 10 } })
    const w = (over = {}): Map<string, any> => new Map([['echo', { requests: 100, errors: 0, p95Ms: 10, spanMs: 60_000, ...over }]])
    assert.deepEqual(alerts.evaluate(w(), undefined, 1), [])
    const raised = alerts.evaluate(w({ p95Ms: 6000, errors: 2 }), undefined, 2)
    assert.deepEqual(raised.map(a => [a.name, a.active]).sort(), [['error-rate:echo', true], ['latency-p95:echo', true]])
    assert.deepEqual(alerts.evaluate(w({ p95Ms: 7000, errors: 2 }), undefined, 3), [])
    assert.deepEqual(alerts.activeNames().sort(), ['error-rate:echo', 'latency-p95:echo'])
    const cleared = alerts.evaluate(w(), undefined, 4)
    assert.deepEqual(cleared.map(a => [a.name, a.active]).sort(), [['error-rate:echo', false], ['latency-p95:echo', false]])
    const slow = alerts.evaluate(w({ requests: 5 }), undefined, 5)
    assert.deepEqual(slow.map(a => a.name), ['throughput:echo'])
    const gpu = alerts.evaluate(w(), [{ index: 0, name: 'T4', utilization: 99, memoryUsedMiB: 1, memoryTotalMiB: 2 }], 6)
    assert.deepEqual(gpu.map(a => [a.name, a.active]), [['throughput:echo', false], ['gpu-overloaded:gpu0', true]])
    assert.deepEqual(alerts.evaluate(new Map(), undefined, 7).map(a => [a.name, a.active]), [['gpu-overloaded:gpu0', false]])
  })
})

describe('GPU sampling', () => {
  it('parses nvidia-smi CSV and skips lines it cannot read', () => {
    assert.deepEqual(parseNvidiaSmi('0, NVIDIA A100-SXM4-40GB, 87, 30000, 40960\n1, Tesla T4, [N/A], 1, 2\ngarbage\n'), [
      { index: 0, name: 'NVIDIA A100-SXM4-40GB', utilization: 87, memoryUsedMiB: 30000, memoryTotalMiB: 40960 }
    ])
  })

  it('runs an nvidia-smi and reports nothing when it fails', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistack-gpu-'))
    try {
      const ok = join(dir, 'nvidia-smi')
      await writeFile(ok, '#!/bin/sh\necho "0, Stand-in GPU, 12, 100, 1000"\n')
      await chmod(ok, 0o755)
      assert.deepEqual(await queryGpus(ok), [{ index: 0, name: 'Stand-in GPU', utilization: 12, memoryUsedMiB: 100, memoryTotalMiB: 1000 }])
      const failing = join(dir, 'failing')
      await writeFile(failing, '#!/bin/sh\nexit 9\n')
      await chmod(failing, 0o755)
      assert.equal(await queryGpus(failing), undefined)
      assert.equal(await queryGpus(join(dir, 'absent')), undefined)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('the trace store', () => {
  const span = (spanId: string, startMs: number): any => ({ spanId, parentId: null, peerId: 'p', name: 'ask', startMs, durationMs: 1, status: 'ok', attributes: {} })
  const traceId = (i: number): string => i.toString(16).padStart(32, '0')

  it('keeps spans by trace, sorted by start, and drops bad ids', () => {
    const store = new TraceStore()
    assert.equal(store.add(traceId(1), span('00000000000000b2', 20)), true)
    assert.equal(store.add(traceId(1), span('00000000000000b1', 10)), true)
    assert.equal(store.add('xyz', span('00000000000000b1', 10)), false)
    assert.equal(store.add(traceId(0), span('00000000000000b1', 10)), false)
    assert.deepEqual(store.get(traceId(1))?.spans.map(s => s.spanId), ['00000000000000b1', '00000000000000b2'])
    assert.equal(store.get(traceId(2)), undefined)
  })

  it('is bounded in traces and forgets old ones', () => {
    let now = 0
    const store = new TraceStore(() => now)
    for (let i = 1; i <= 2100; i++) store.add(traceId(i), span('00000000000000a1', i))
    assert.equal(store.get(traceId(1)), undefined)
    assert.ok(store.get(traceId(2100)) != null)
    assert.ok(store.size <= 2000)
    now += 16 * 60_000
    assert.equal(store.get(traceId(2100)), undefined)
    assert.equal(store.size, 0)
  })
})
