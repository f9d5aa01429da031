/**
 * Semantic traces: spans are made with the OpenTelemetry JS SDK
 * (@opentelemetry/sdk-trace-base), so trace and span ids follow W3C trace
 * context (16- and 8-byte lowercase hex). Every span that ends goes to the
 * node's bounded `TraceStore` (for `GET /v1/traces/:id`) and, with an OTLP
 * endpoint, to an OTLP/HTTP exporter in batches.
 */
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { SpanKind, context, trace } from '@opentelemetry/api'
import { TRACE_LIMITS, WIRE_TRACE_LIMITS } from './constants.js'
import { acceptWireSpans, formatTraceparent, parseTraceparent, toWireSpans } from './trace-context.js'
import type { AcceptedSpan, WireSpan } from './trace-context.js'
import type { Attributes, Span, SpanContext, Tracer } from '@opentelemetry/api'
import type { Resource } from '@opentelemetry/resources'
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base'

/** One span as `GET /v1/traces/:traceId` shows it */
export interface TraceSpan {
  spanId: string
  parentId: string | null
  peerId: string
  name: string
  /** unix ms */
  startMs: number
  durationMs: number
  /** `ok`, `error` */
  status: string
  attributes: Record<string, string | number | boolean>
}

export interface TraceView {
  traceId: string
  spans: TraceSpan[]
}

const TRACE_ID = /^[0-9a-f]{32}$/
const SPAN_ID = /^[0-9a-f]{16}$/

/** true for a W3C trace-context trace id (32 lowercase hex digits, not all zero) */
export function isTraceId (id: string): boolean {
  return TRACE_ID.test(id) && !/^0+$/.test(id)
}

/** true for a W3C trace-context span id (16 lowercase hex digits, not all zero) */
export function isSpanId (id: string): boolean {
  return SPAN_ID.test(id) && !/^0+$/.test(id)
}

/**
 * The spans this node holds, by trace. Bounded: `maxSpans` in all,
 * `maxSpansPerTrace`, `maxTraces`; the trace touched longest ago goes first,
 * and a trace is forgotten `ttlMs` after its last span.
 */
export class TraceStore {
  private readonly traces = new Map<string, { spans: TraceSpan[], touched: number }>()
  private spanCount = 0
  private readonly now: () => number

  constructor (now: () => number = Date.now) {
    this.now = now
  }

  get size (): number {
    return this.spanCount
  }

  /** Adds a span (from this node or, once carried on the wire, from another); bad ids are dropped */
  add (traceId: string, span: TraceSpan): boolean {
    if (!isTraceId(traceId) || !isSpanId(span.spanId)) return false
    this.expire()
    let t = this.traces.get(traceId)
    if (t == null) {
      while (this.traces.size >= TRACE_LIMITS.maxTraces) this.dropOldest()
      t = { spans: [], touched: this.now() }
      this.traces.set(traceId, t)
    }
    if (t.spans.length >= TRACE_LIMITS.maxSpansPerTrace) return false
    while (this.spanCount >= TRACE_LIMITS.maxSpans && this.traces.size > 1) this.dropOldest(traceId)
    t.spans.push(span)
    t.touched = this.now()
    // most recently touched last
    this.traces.delete(traceId)
    this.traces.set(traceId, t)
    this.spanCount++
    return true
  }

  /**
   * The spans of a trace below `rootSpanId` (it included), in the order they
   * were added: what a node returns with an answer
   */
  subtree (traceId: string, rootSpanId: string): TraceSpan[] {
    const t = this.traces.get(traceId)
    if (t == null) return []
    const inside = new Set([rootSpanId])
    const out: TraceSpan[] = []
    // a parent ends after its children, so walk from the last added span back
    for (let i = t.spans.length - 1; i >= 0; i--) {
      const s = t.spans[i]
      if (inside.has(s.spanId) || (s.parentId != null && inside.has(s.parentId))) {
        inside.add(s.spanId)
        out.push(s)
      }
    }
    return out.reverse()
  }

  get (traceId: string): TraceView | undefined {
    this.expire()
    const t = this.traces.get(traceId)
    if (t == null) return undefined
    return { traceId, spans: [...t.spans].sort((a, b) => a.startMs - b.startMs) }
  }

  /** Whether the trace holds the span `spanId` recorded by `peerId`; as `get` without copying and sorting the trace */
  holds (traceId: string, spanId: string, peerId: string): boolean {
    this.expire()
    return this.traces.get(traceId)?.spans.some(s => s.spanId === spanId && s.peerId === peerId) === true
  }

  private dropOldest (keep?: string): void {
    for (const [id, t] of this.traces) {
      if (id === keep) continue
      this.traces.delete(id)
      this.spanCount -= t.spans.length
      return
    }
  }

  private expire (): void {
    const cutoff = this.now() - TRACE_LIMITS.ttlMs
    for (const [id, t] of this.traces) {
      if (t.touched >= cutoff) break
      this.traces.delete(id)
      this.spanCount -= t.spans.length
    }
  }
}

function hrToMs (t: [number, number]): number {
  return t[0] * 1000 + t[1] / 1e6
}

function cleanAttributes (attrs: Attributes): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {}
  let n = 0
  for (const [k, v] of Object.entries(attrs)) {
    if (n++ >= TRACE_LIMITS.maxAttributes) break
    if (typeof v === 'number' || typeof v === 'boolean') out[k] = v
    else if (typeof v === 'string') out[k] = v.slice(0, TRACE_LIMITS.maxAttributeLength)
  }
  return out
}

/** Copies every ended span into a TraceStore */
class StoreSpanProcessor implements SpanProcessor {
  private readonly store: TraceStore
  private readonly peerId: string

  constructor (store: TraceStore, peerId: string) {
    this.store = store
    this.peerId = peerId
  }

  onStart (): void {}

  onEnd (span: ReadableSpan): void {
    const ctx = span.spanContext()
    this.store.add(ctx.traceId, {
      spanId: ctx.spanId,
      parentId: span.parentSpanContext?.spanId ?? null,
      peerId: this.peerId,
      name: span.name,
      startMs: Math.round(hrToMs(span.startTime) * 1000) / 1000,
      durationMs: Math.round(hrToMs(span.duration) * 1000) / 1000,
      status: span.status.code === 2 ? 'error' : 'ok',
      attributes: cleanAttributes(span.attributes)
    })
  }

  async forceFlush (): Promise<void> {}
  async shutdown (): Promise<void> {}
}

export interface TracingInit {
  peerId: string
  /** `service.name` of the OTLP resource (default `aistack`) */
  serviceName?: string
  /** OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`; none: spans stay local */
  otlpEndpoint?: string
  store?: TraceStore
}

/** Attribute values a span takes */
export type SpanAttributes = Record<string, string | number | boolean>

function hrTime (ms: number): [number, number] {
  const s = Math.floor(ms / 1000)
  return [s, Math.round((ms - s * 1000) * 1e6)]
}

/**
 * A span of this node with what the protocols need around it: its
 * `traceparent` for a request, children, and the spans of another node
 * answering that request (`adopt`), or this node's spans below it for an
 * answer (`wireSpans`).
 */
export class TraceHandle {
  readonly span: Span
  readonly traceId: string
  readonly spanId: string
  private readonly tracing: Tracing
  private ended = false

  constructor (tracing: Tracing, span: Span) {
    this.tracing = tracing
    this.span = span
    const c = span.spanContext()
    this.traceId = c.traceId
    this.spanId = c.spanId
  }

  /** The W3C `traceparent` of this span: put on a request, the answering node's spans become its children */
  get traceparent (): string {
    return formatTraceparent(this.traceId, this.spanId)
  }

  setAttributes (attributes: SpanAttributes): void {
    this.span.setAttributes(attributes)
  }

  /** A child span on this node */
  child (name: string, attributes?: SpanAttributes, kind?: 'client' | 'server'): TraceHandle {
    return new TraceHandle(this.tracing, this.tracing.startSpan(name, { parent: this.span, attributes, kind }))
  }

  /** Ends the span (once), as an error when `error` is given */
  end (error?: string): void {
    if (this.ended) return
    this.ended = true
    if (error != null) {
      this.span.setStatus({ code: 2, message: error.slice(0, 256) })
      this.span.setAttribute('aistack.error', error.slice(0, 256))
    }
    this.span.end()
  }

  /**
   * Takes the spans another node returned for a request sent with this
   * span's traceparent: bounded and checked (see `acceptWireSpans`), added to
   * this trace and exported. Returns how many were taken.
   */
  adopt (spans: readonly WireSpan[]): number {
    const accepted = acceptWireSpans(spans, this.spanId)
    this.tracing.addRemote(this.traceId, accepted)
    return accepted.length
  }

  /** This node's spans below this one (it included, once ended), for an answer; at most `WIRE_TRACE_LIMITS.maxSpans` */
  wireSpans (): WireSpan[] {
    const spans = this.tracing.store.subtree(this.traceId, this.spanId)
    // the span itself first: its parent is on the asker
    const self = spans.filter(s => s.spanId === this.spanId)
    const rest = spans.filter(s => s.spanId !== this.spanId)
    return toWireSpans([...self, ...rest].slice(0, WIRE_TRACE_LIMITS.maxSpans))
  }
}

/** The node's tracer: an SDK tracer provider feeding the store and, optionally, OTLP */
export class Tracing {
  readonly store: TraceStore
  private readonly provider: BasicTracerProvider
  private readonly tracer: Tracer
  private readonly serviceName: string
  private readonly peerId: string
  private readonly exporter?: SpanProcessor
  private readonly resources = new Map<string, Resource>()

  constructor (init: TracingInit) {
    this.store = init.store ?? new TraceStore()
    this.serviceName = init.serviceName ?? 'aistack'
    this.peerId = init.peerId
    const spanProcessors: SpanProcessor[] = [new StoreSpanProcessor(this.store, init.peerId)]
    if (init.otlpEndpoint != null) {
      this.exporter = new BatchSpanProcessor(new OTLPTraceExporter({ url: init.otlpEndpoint, timeoutMillis: 10_000 }), {
        maxQueueSize: 2048,
        maxExportBatchSize: 256,
        scheduledDelayMillis: 1000
      })
      spanProcessors.push(this.exporter)
    }
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': this.serviceName, 'service.instance.id': init.peerId }),
      spanProcessors
    })
    this.tracer = this.provider.getTracer('@aistack/telemetry')
  }

  /**
   * Starts a span: a root span of a new trace, or a child of `parent`
   * (a span of this node, or a remote span context taken from the wire).
   */
  startSpan (name: string, options: { parent?: Span | SpanContext, attributes?: Attributes, kind?: 'client' | 'server' } = {}): Span {
    let ctx = context.active()
    if (options.parent != null) {
      const parent = options.parent
      ctx = 'spanContext' in parent ? trace.setSpan(ctx, parent) : trace.setSpanContext(ctx, parent)
    }
    const kind = options.kind === 'client' ? SpanKind.CLIENT : options.kind === 'server' ? SpanKind.SERVER : SpanKind.INTERNAL
    return this.tracer.startSpan(name, { attributes: options.attributes, kind }, ctx)
  }

  /** The root span of a new trace */
  root (name: string, attributes?: SpanAttributes): TraceHandle {
    return new TraceHandle(this, this.startSpan(name, { attributes }))
  }

  /**
   * A span continuing the trace of another node: a child of the span a
   * request's `traceparent` names. Undefined (the request is served
   * untraced) when the value is missing or malformed.
   */
  continue (traceparent: string | undefined, name: string, attributes?: SpanAttributes): TraceHandle | undefined {
    const parent = parseTraceparent(traceparent)
    if (parent == null) return undefined
    return new TraceHandle(this, this.startSpan(name, {
      parent: { traceId: parent.traceId, spanId: parent.spanId, traceFlags: 1, isRemote: true },
      attributes,
      kind: 'server'
    }))
  }

  /**
   * Takes the spans another node returned for work sent with `traceparent`
   * (a task): only when the span it names is one of this node's own in its
   * store (a trace this node started), checked and bounded as `TraceHandle.adopt`
   * does. Returns how many were taken.
   */
  adoptUnder (traceparent: string, spans: readonly WireSpan[]): number {
    const parent = parseTraceparent(traceparent)
    if (parent == null) return 0
    if (!this.store.holds(parent.traceId, parent.spanId, this.peerId)) return 0
    const accepted = acceptWireSpans(spans, parent.spanId)
    this.addRemote(parent.traceId, accepted)
    return accepted.length
  }

  /** Adds spans of other nodes (already checked) to a trace of this node, and to the OTLP export */
  addRemote (traceId: string, spans: readonly AcceptedSpan[]): void {
    for (const s of spans) {
      this.store.add(traceId, { ...s })
      this.exporter?.onEnd(this.readable(traceId, s))
    }
  }

  /** A span of another node as the OTLP exporter takes it, under a resource naming that node */
  private readable (traceId: string, s: AcceptedSpan): ReadableSpan {
    let resource = this.resources.get(s.peerId)
    if (resource == null) {
      if (this.resources.size >= 256) this.resources.clear()
      resource = resourceFromAttributes({ 'service.name': this.serviceName, 'service.instance.id': s.peerId })
      this.resources.set(s.peerId, resource)
    }
    const ctx: SpanContext = { traceId, spanId: s.spanId, traceFlags: 1 }
    return {
      name: s.name,
      kind: SpanKind.SERVER,
      spanContext: () => ctx,
      parentSpanContext: { traceId, spanId: s.parentId, traceFlags: 1, isRemote: true },
      startTime: hrTime(s.startMs),
      endTime: hrTime(s.startMs + s.durationMs),
      duration: hrTime(s.durationMs),
      status: { code: s.status === 'error' ? 2 : 0 },
      attributes: s.attributes,
      links: [],
      events: [],
      ended: true,
      resource,
      instrumentationScope: { name: '@aistack/telemetry' },
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0
    }
  }

  /** The W3C `traceparent` header value of a span (version 00) */
  static traceparent (span: Span): string {
    const c = span.spanContext()
    return formatTraceparent(c.traceId, c.spanId, (c.traceFlags & 1) === 1)
  }

  /** Sends what is queued to the OTLP endpoint */
  async flush (): Promise<void> {
    await this.provider.forceFlush()
  }

  async shutdown (): Promise<void> {
    await this.provider.shutdown()
  }
}
