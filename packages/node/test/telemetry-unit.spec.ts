import assert from 'node:assert/strict'
import { traceTree, topTable } from '../src/cli/telemetry.js'
import { validateConfig } from '../src/config.js'

describe('telemetry config and views', () => {
  it('checks the telemetry section of config.json and names the field at fault', () => {
    const c = validateConfig({ telemetry: { intervalMs: 1000, otlp: { endpoint: 'http://127.0.0.1:4318/v1/traces' }, alerts: { p95Ms: 100, minRatePerMin: { echo: 5 } } } })
    assert.deepEqual(c.telemetry, { intervalMs: 1000, otlp: { endpoint: 'http://127.0.0.1:4318/v1/traces' }, alerts: { p95Ms: 100, minRatePerMin: { echo: 5 } } })
    assert.throws(() => validateConfig({ telemetry: { intervalMs: 10 } }), /telemetry\.intervalMs must be an integer from 250 to 600000/)
    assert.throws(() => validateConfig({ telemetry: { otlp: { endpoint: 'ftp://x' } } }), /telemetry\.otlp\.endpoint must be an http\(s\) URL/)
    assert.throws(() => validateConfig({ telemetry: { alerts: { errorRate: 2 } } }), /telemetry\.alerts\.errorRate must be a number from 0 to 1/)
    assert.throws(() => validateConfig({ telemetry: { colour: 'red' } }), /telemetry\.colour is not a known field/)
  })

  it('prints a trace as a tree with offsets and durations', () => {
    const text = traceTree({
      traceId: 'ab'.repeat(16),
      spans: [
        { spanId: '2'.repeat(16), parentId: '1'.repeat(16), peerId: 'peerB', name: 'serve', startMs: 1005, durationMs: 3, status: 'ok', attributes: { 'aistack.capability': 'echo' } },
        { spanId: '1'.repeat(16), parentId: null, peerId: 'peerA', name: 'ask', startMs: 1000, durationMs: 10.25, status: 'error', attributes: {} }
      ]
    })
    assert.equal(text, [
      `trace ${'ab'.repeat(16)}  (2 spans)`,
      '└─ ask  +0.0 ms  10.3 ms  on peerA  ERROR',
      '   └─ serve  +5.0 ms  3.0 ms  on peerB  capability=echo'
    ].join('\n'))
  })

  it('sorts the top table by the key asked for', () => {
    const row = (peerId: string, cpuPercent: number): any => ({ peerId, status: 'up', lastSeenMs: 100, self: false, cpuPercent, capabilities: [], alerts: [] })
    const lines = topTable([row('aaa', 1), row('bbb', 9)], 'c').split('\n')
    assert.match(lines[0], /^PEER +STATUS +SEEN +CPU%/)
    assert.match(lines[1], /^bbb/)
    assert.match(topTable([row('aaa', 1), row('bbb', 9)], 'c', true).split('\n')[1], /^aaa/)
  })
})
