import assert from 'node:assert/strict'
import { WIRE_TRACE_LIMITS, Tracing, acceptWireSpans, formatTraceparent, parseTraceparent, toWireSpans } from '../src/index.js'
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base'
import type { WireSpan } from '../src/index.js'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'
const PEER = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'

function wire (over: Partial<WireSpan> = {}): WireSpan {
  return { spanId: 'a1b2c3d4e5f60718', parentId: PARENT, peerId: PEER, name: 'anycast.serve', startMs: Date.now() - 5, durationMs: 4.5, error: false, attributes: [{ key: 'aistack.capability', value: 'echo' }], ...over }
}

describe('W3C traceparent', () => {
  it('parses a version 00 value (the example of the W3C spec)', () => {
    assert.deepEqual(parseTraceparent(`00-${TRACE}-${PARENT}-01`), { traceId: TRACE, spanId: PARENT, flags: 1 })
    assert.deepEqual(parseTraceparent(`00-${TRACE}-${PARENT}-00`), { traceId: TRACE, spanId: PARENT, flags: 0 })
    assert.equal(formatTraceparent(TRACE, PARENT), `00-${TRACE}-${PARENT}-01`)
  })

  it('takes a later version by its first four fields, suffix or not', () => {
    assert.equal(parseTraceparent(`cc-${TRACE}-${PARENT}-01`)?.traceId, TRACE)
    assert.equal(parseTraceparent(`cc-${TRACE}-${PARENT}-01-what-comes-next`)?.spanId, PARENT)
    assert.equal(parseTraceparent(`cc-${TRACE}-${PARENT}-01x`), undefined)
  })

  it('ignores malformed values', () => {
    const bad: unknown[] = [
      undefined, null, 42, '', 'garbage',
      `00-${TRACE}-${PARENT}-01-extra`, // version 00 has no suffix
      `ff-${TRACE}-${PARENT}-01`, // version ff is invalid
      `00-${TRACE.toUpperCase()}-${PARENT}-01`, // lowercase only
      `00-${'0'.repeat(32)}-${PARENT}-01`, // all-zero trace id
      `00-${TRACE}-${'0'.repeat(16)}-01`, // all-zero span id
      `00-${TRACE.slice(1)}-${PARENT}-01`,
      `00-${TRACE}-${PARENT}-1`,
      ` 00-${TRACE}-${PARENT}-01`,
      `cc-${TRACE}-${PARENT}-01-${'x'.repeat(WIRE_TRACE_LIMITS.maxTraceparentLength)}` // too long
    ]
    for (const v of bad) assert.equal(parseTraceparent(v), undefined, String(v))
  })
})

describe('spans from the wire', () => {
  it('takes spans hanging under the request span, child after parent', () => {
    const spans = [wire(), wire({ spanId: 'b1b2c3d4e5f60718', parentId: 'a1b2c3d4e5f60718', name: 'capability.run', error: true })]
    const got = acceptWireSpans(spans, PARENT)
    assert.deepEqual(got.map(s => [s.spanId, s.parentId, s.status]), [['a1b2c3d4e5f60718', PARENT, 'ok'], ['b1b2c3d4e5f60718', 'a1b2c3d4e5f60718', 'error']])
    assert.deepEqual(got[0].attributes, { 'aistack.capability': 'echo' })
  })

  it('drops spans of another parent, repeated or bad ids, bad names, peers and times, with their children', () => {
    const now = Date.now()
    const spans = [
      wire({ spanId: '1111111111111111', parentId: 'ffffffffffffffff' }), // not under the request
      wire({ spanId: '2222222222222222', parentId: '1111111111111111' }), // child of a dropped span
      wire({ spanId: 'XYZ' }),
      wire({ spanId: '0000000000000000' }),
      wire({ spanId: '3333333333333333', name: '' }),
      wire({ spanId: '4444444444444444', name: 'x'.repeat(WIRE_TRACE_LIMITS.maxNameLength + 1) }),
      wire({ spanId: '5555555555555555', name: 'bad\nname' }),
      wire({ spanId: '6666666666666666', peerId: 'not a peer id!' }),
      wire({ spanId: '7777777777777777', durationMs: -1 }),
      wire({ spanId: '8888888888888888', startMs: Number.NaN }),
      wire({ spanId: '9999999999999999', startMs: now + 2 * WIRE_TRACE_LIMITS.maxClockSkewMs }),
      wire({ spanId: 'aaaaaaaaaaaaaaaa' }),
      wire({ spanId: 'aaaaaaaaaaaaaaaa', name: 'the same id again' })
    ]
    const got = acceptWireSpans(spans, PARENT, now)
    assert.deepEqual(got.map(s => s.spanId), ['aaaaaaaaaaaaaaaa'])
    assert.equal(got[0].name, 'anycast.serve')
  })

  it('caps the count of spans, of attributes and their sizes', () => {
    const many = Array.from({ length: WIRE_TRACE_LIMITS.maxSpans + 10 }, (_, i) => wire({ spanId: (i + 1).toString(16).padStart(16, '0') }))
    assert.equal(acceptWireSpans(many, PARENT).length, WIRE_TRACE_LIMITS.maxSpans)
    const attributes = Array.from({ length: WIRE_TRACE_LIMITS.maxAttributes + 5 }, (_, i) => ({ key: `k${i}`, value: 'v'.repeat(WIRE_TRACE_LIMITS.maxAttributeValueLength * 2) }))
    attributes.unshift({ key: 'k'.repeat(WIRE_TRACE_LIMITS.maxAttributeKeyLength + 1), value: 'long key' })
    const [span] = acceptWireSpans([wire({ attributes })], PARENT)
    const keys = Object.keys(span.attributes)
    assert.equal(keys.length, WIRE_TRACE_LIMITS.maxAttributes - 1)
    assert.ok(keys.every(k => k.length <= WIRE_TRACE_LIMITS.maxAttributeKeyLength))
    assert.ok(Object.values(span.attributes).every(v => v.length === WIRE_TRACE_LIMITS.maxAttributeValueLength))
  })

  it('writes at most the wire limits', () => {
    const local = Array.from({ length: 40 }, (_, i) => ({
      spanId: (i + 1).toString(16).padStart(16, '0'),
      parentId: null,
      peerId: PEER,
      name: 'n'.repeat(100),
      startMs: 1,
      durationMs: 2,
      status: 'ok',
      attributes: Object.fromEntries(Array.from({ length: 20 }, (_, j) => [`k${j}`, j % 2 === 0 ? 'x'.repeat(1000) : j]))
    }))
    const out = toWireSpans(local)
    assert.equal(out.length, WIRE_TRACE_LIMITS.maxSpans)
    assert.equal(out[0].parentId, '')
    assert.equal(out[0].name.length, WIRE_TRACE_LIMITS.maxNameLength)
    assert.equal(out[0].attributes.length, WIRE_TRACE_LIMITS.maxAttributes)
    assert.equal(out[0].attributes[0].value.length, WIRE_TRACE_LIMITS.maxAttributeValueLength)
    assert.equal(out[0].attributes[1].value, '1')
  })
})

describe('traces across two nodes', () => {
  it('the answering node continues the asker\'s span; the asker adopts the spans it returns and exports them', async () => {
    const asker = new Tracing({ peerId: 'asker' })
    const exported: any[] = []
    // the exporter of the asker, as an OTLP endpoint would make it
    ;(asker as any).exporter = { onEnd: (s: any) => exported.push(s) } satisfies Partial<SpanProcessor>
    const answerer = new Tracing({ peerId: PEER })

    const ask = asker.root('ask')
    const attempt = ask.child('anycast.attempt', { 'aistack.peer': PEER }, 'client')
    assert.match(attempt.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)

    assert.equal(answerer.continue('00-garbage', 'anycast.serve'), undefined)
    const serve = answerer.continue(attempt.traceparent, 'anycast.serve', { 'aistack.capability': 'echo' })
    assert.ok(serve != null)
    assert.equal(serve.traceId, ask.traceId)
    const run = serve.child('capability.run')
    run.end('ERROR: handler failed')
    serve.end()
    const returned = serve.wireSpans()
    assert.deepEqual(returned.map(s => [s.name, s.parentId]), [['anycast.serve', attempt.spanId], ['capability.run', serve.spanId]])
    assert.equal(returned[1].error, true)

    assert.equal(attempt.adopt(returned), 2)
    attempt.end()
    ask.end()
    const trace = asker.store.get(ask.traceId)
    assert.ok(trace != null)
    assert.deepEqual(trace.spans.map(s => [s.name, s.peerId]).sort(), [['anycast.attempt', 'asker'], ['anycast.serve', PEER], ['ask', 'asker'], ['capability.run', PEER]])
    const byName = Object.fromEntries(trace.spans.map(s => [s.name, s]))
    assert.equal(byName['anycast.serve'].parentId, byName['anycast.attempt'].spanId)
    assert.equal(byName['anycast.attempt'].parentId, byName.ask.spanId)
    assert.equal(byName['capability.run'].status, 'error')

    // the remote spans went to the exporter under a resource naming the answering node
    assert.deepEqual(exported.map(s => s.name), ['anycast.serve', 'capability.run'])
    assert.equal(exported[0].spanContext().traceId, ask.traceId)
    assert.equal(exported[0].parentSpanContext.spanId, attempt.spanId)
    assert.equal(exported[0].resource.attributes['service.instance.id'], PEER)

    // spans returned for another request of the trace do not hang under this attempt
    const other = ask.child('anycast.attempt')
    assert.equal(other.adopt(returned), 0)
    await asker.shutdown()
    await answerer.shutdown()
  })

  it('spans of a task\'s result are taken only under a span this node holds as its own', async () => {
    const submitter = new Tracing({ peerId: 'submitter' })
    const worker = new Tracing({ peerId: PEER })
    const submit = submitter.root('task.submit')
    submit.end()
    const run = worker.continue(submit.traceparent, 'task.run')
    assert.ok(run != null)
    run.end()
    const spans = run.wireSpans()
    // a traceparent of a trace the submitter never started, or malformed: nothing is taken
    assert.equal(submitter.adoptUnder(`00-${TRACE}-${PARENT}-01`, spans), 0)
    assert.equal(submitter.adoptUnder('garbage', spans), 0)
    // a span of this trace that is not the submitter's own (the worker's, once adopted) is no parent either
    assert.equal(submitter.adoptUnder(submit.traceparent, spans), 1)
    assert.equal(submitter.adoptUnder(formatTraceparent(submit.traceId, run.spanId), [{ ...spans[0], spanId: 'c1b2c3d4e5f60718', parentId: run.spanId }]), 0)
    const trace = submitter.store.get(submit.traceId)
    assert.deepEqual(trace?.spans.map(s => [s.name, s.peerId, s.parentId]), [['task.submit', 'submitter', null], ['task.run', PEER, submit.spanId]])
    await submitter.shutdown()
    await worker.shutdown()
  })
})
