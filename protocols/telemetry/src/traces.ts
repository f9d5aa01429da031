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
import { context, trace } from '@opentelemetry/api'
import { TRACE_LIMITS } from './constants.js'
import type { Attributes, Span, SpanContext, Tracer } from '@opentelemetry/api'
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

  get (traceId: string): TraceView | undefined {
    this.expire()
    const t = this.traces.get(traceId)
    if (t == null) return undefined
    return { traceId, spans: [...t.spans].sort((a, b) => a.startMs - b.startMs) }
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

/** The node's tracer: an SDK tracer provider feeding the store and, optionally, OTLP */
export class Tracing {
  readonly store: TraceStore
  private readonly provider: BasicTracerProvider
  private readonly tracer: Tracer

  constructor (init: TracingInit) {
    this.store = init.store ?? new TraceStore()
    const spanProcessors: SpanProcessor[] = [new StoreSpanProcessor(this.store, init.peerId)]
    if (init.otlpEndpoint != null) {
      spanProcessors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: init.otlpEndpoint, timeoutMillis: 10_000 }), {
        maxQueueSize: 2048,
        maxExportBatchSize: 256,
        scheduledDelayMillis: 1000
      }))
    }
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': init.serviceName ?? 'aistack', 'service.instance.id': init.peerId }),
      spanProcessors
    })
    this.tracer = this.provider.getTracer('@aistack/telemetry')
  }

  /**
   * Starts a span: a root span of a new trace, or a child of `parent`
   * (a span of this node, or a remote span context taken from the wire).
   */
  startSpan (name: string, options: { parent?: Span | SpanContext, attributes?: Attributes } = {}): Span {
    let ctx = context.active()
    if (options.parent != null) {
      const parent = options.parent
      ctx = 'spanContext' in parent ? trace.setSpan(ctx, parent) : trace.setSpanContext(ctx, parent)
    }
    return this.tracer.startSpan(name, { attributes: options.attributes }, ctx)
  }

  /** The W3C `traceparent` header value of a span (version 00) */
  static traceparent (span: Span): string {
    const c = span.spanContext()
    return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & 1) === 1 ? '01' : '00'}`
  }

  /** Sends what is queued to the OTLP endpoint */
  async flush (): Promise<void> {
    await this.provider.forceFlush()
  }

  async shutdown (): Promise<void> {
    await this.provider.shutdown()
  }
}
