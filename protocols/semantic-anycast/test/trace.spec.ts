import assert from 'node:assert/strict'
import { HashEmbedder } from '@aistack/embeddings'
import { multiaddr } from '@multiformats/multiaddr'
import { LIMITS, attemptAttributes, tracedServe, wireTraceparent } from '../src/index.js'
import { Response } from '../src/pb/anycast.js'
import { createNode, waitFor } from './helpers.js'
import type { AnycastSpan, AnycastTracer, Candidate, WireSpan } from '../src/index.js'
import type { TestNode } from './helpers.js'

type Attrs = Record<string, string | number | boolean>

/** A tracer that records what the service does with spans: ids count up, spans end into `ended` */
class RecordingTracer implements AnycastTracer {
  readonly ended: RecordedSpan[] = []
  readonly continued: string[] = []
  private next = 1
  readonly peerId: string

  constructor (peerId: string) {
    this.peerId = peerId
  }

  id (): string {
    return (this.next++).toString(16).padStart(16, '0')
  }

  root (name: string): RecordedSpan {
    return new RecordedSpan(this, name, '', {})
  }

  continue (traceparent: string, name: string, attributes: Attrs = {}): AnycastSpan | undefined {
    this.continued.push(traceparent)
    const m = /^00-[0-9a-f]{32}-([0-9a-f]{16})-01$/.exec(traceparent)
    return m == null ? undefined : new RecordedSpan(this, name, m[1], attributes)
  }
}

class RecordedSpan implements AnycastSpan {
  readonly spanId: string
  readonly adopted: WireSpan[] = []
  readonly children: RecordedSpan[] = []
  attributes: Attrs
  error?: string
  private readonly tracer: RecordingTracer

  constructor (tracer: RecordingTracer, readonly name: string, readonly parentId: string, attributes: Attrs) {
    this.tracer = tracer
    this.spanId = tracer.id()
    this.attributes = { ...attributes }
  }

  get traceparent (): string {
    return `00-${'ab'.repeat(16)}-${this.spanId}-01`
  }

  setAttributes (attributes: Attrs): void { Object.assign(this.attributes, attributes) }
  child (name: string, attributes: Attrs = {}): RecordedSpan {
    const c = new RecordedSpan(this.tracer, name, this.spanId, attributes)
    this.children.push(c)
    return c
  }

  end (error?: string): void {
    this.error = error
    this.tracer.ended.push(this)
  }

  adopt (spans: readonly WireSpan[]): number {
    this.adopted.push(...spans)
    return spans.length
  }

  wireSpans (): WireSpan[] {
    return this.tracer.ended.filter(s => s === this || this.children.includes(s)).map(s => ({
      spanId: s.spanId,
      parentId: s.parentId,
      peerId: this.tracer.peerId,
      name: s.name,
      startMs: 1,
      durationMs: 1,
      error: s.error != null,
      attributes: Object.entries(s.attributes).map(([key, value]) => ({ key, value: String(value) }))
    }))
  }
}

describe('anycast traces', function () {
  this.timeout(120_000)
  const embedder = new HashEmbedder()
  const nodes: TestNode[] = []

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
  })

  it('attempt attributes name the node, capability, similarity, source and why', () => {
    const c = { peerId: 'P', name: 'echo', similarity: 0.812345, score: 0.7, source: 'dht', liveness: 'live', exact: false } as unknown as Candidate
    assert.deepEqual(attemptAttributes(c, { attempt: 1, round: 0 }), {
      'aistack.attempt': 1,
      'aistack.round': 0,
      'aistack.peer': 'P',
      'aistack.capability': 'echo',
      'aistack.similarity': 0.8123,
      'aistack.score': 0.7,
      'aistack.source': 'dht',
      'aistack.liveness': 'live',
      'aistack.reason': 'best match'
    })
    assert.equal(attemptAttributes({ ...c, exact: true }, { attempt: 1, round: 0 })['aistack.reason'], 'exact match')
    assert.equal(attemptAttributes(c, { attempt: 2, round: 0, after: { peerId: 'Q', capability: 'x', error: 'RemoteError: OVERLOADED' } })['aistack.reason'], 'retry after Q/x failed: RemoteError: OVERLOADED')
    assert.equal(attemptAttributes(c, { attempt: 4, round: 1 })['aistack.reason'], 'fresh lookup after every candidate failed')
    assert.equal(String(attemptAttributes(c, { attempt: 2, round: 0, after: { peerId: 'Q', capability: 'x', error: 'e'.repeat(1000) } })['aistack.reason']).length, 256)
  })

  it('a traceparent over its length limit is not looked at; an untraced request returns no spans', async () => {
    assert.equal(wireTraceparent('x'.repeat(LIMITS.maxTraceparentLength + 1)), undefined)
    assert.equal(wireTraceparent(''), undefined)
    const tracer = new RecordingTracer('R')
    const run = async (): Promise<any> => ({ status: Response.Status.OK, output: new Uint8Array(2), error: '', inflight: 0, capacity: 1 })
    const info = { capability: 'echo', from: 'F', inputBytes: 2 }
    assert.deepEqual((await tracedServe(tracer, 'x'.repeat(LIMITS.maxTraceparentLength + 1), info, run)).spans, [])
    assert.deepEqual((await tracedServe(tracer, 'not-a-traceparent', info, run)).spans, [])
    assert.deepEqual((await tracedServe(undefined, `00-${'ab'.repeat(16)}-${'1'.repeat(16)}-01`, info, run)).spans, [])
    assert.deepEqual(tracer.continued, ['not-a-traceparent'])
  })

  it('each attempt is a span with the semantic path; the request carries its traceparent and the answer the remote spans', async () => {
    const tracers = [new RecordingTracer('asker'), new RecordingTracer('a'), new RecordingTracer('b')]
    for (const tracer of tracers) nodes.push(await createNode(embedder, { tracer }))
    const [asker, a, b] = nodes
    // the better match is at its concurrency limit: it answers OVERLOADED and the next one answers
    a.provider.add({ name: 'haiku', description: 'Write a haiku poem about a topic', tags: ['poem', 'haiku', 'poetry'] }, async () => 'a', 0)
    b.provider.add({ name: 'poem', description: 'Write a short poem about a topic', tags: ['poem', 'poetry'] }, async () => 'b')
    await a.dial(multiaddr(asker.addr))
    await b.dial(multiaddr(asker.addr))
    await waitFor(() => asker.services.anycast.cache.get(a.peerId.toString(), 'haiku') != null && asker.services.anycast.cache.get(b.peerId.toString(), 'poem') != null, 60_000, 'poem records')

    const root = tracers[0].root('ask')
    const r = await asker.services.anycast.ask('write a haiku poem about autumn', 'autumn', { trace: root })
    assert.equal(r.output, 'b')
    assert.equal(r.attempts, 2)
    const [first, second] = root.children
    assert.equal(root.children.length, 2)
    assert.equal(first.attributes['aistack.peer'], a.peerId.toString())
    assert.equal(first.attributes['aistack.capability'], 'haiku')
    assert.ok(['cache', 'dht'].includes(String(first.attributes['aistack.source'])))
    assert.equal(first.attributes['aistack.reason'], 'best match')
    assert.equal(first.attributes['aistack.status'], 'OVERLOADED')
    assert.match(first.error ?? '', /concurrency limit/)
    assert.equal(second.attributes['aistack.peer'], b.peerId.toString())
    assert.match(String(second.attributes['aistack.reason']), new RegExp(`^retry after ${a.peerId.toString()}/haiku failed: RemoteError`))
    assert.equal(second.attributes['aistack.status'], 'OK')
    assert.equal(second.error, undefined)
    assert.ok(Number(second.attributes['aistack.similarity']) > 0)

    // each answering node continued the attempt's span and sent its spans back
    assert.deepEqual(tracers[1].continued, [first.traceparent])
    assert.deepEqual(tracers[2].continued, [second.traceparent])
    assert.deepEqual(second.adopted.map(s => [s.name, s.peerId]), [['capability.run', 'b'], ['anycast.serve', 'b']])
    const serve = second.adopted.find(s => s.name === 'anycast.serve') as WireSpan
    assert.equal(serve.parentId, second.spanId)
    assert.equal(second.adopted.find(s => s.name === 'capability.run')?.parentId, serve.spanId)
    assert.deepEqual(Object.fromEntries(serve.attributes.map(x => [x.key, x.value]))['aistack.from'], asker.peerId.toString())
    assert.deepEqual(first.adopted.map(s => [s.name, s.error]), [['capability.run', true], ['anycast.serve', true]])

    // an ask without a trace sends no traceparent
    await asker.services.anycast.ask('write a short poem about a topic', 'x')
    assert.equal(tracers[2].continued.length, 1)
  })
})
