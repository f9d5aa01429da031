/**
 * Trace context on the wire: the W3C `traceparent` value
 * (https://www.w3.org/TR/trace-context/#traceparent-header) a request or a
 * task carries, and the spans an answering node returns with its answer.
 * Everything here reads input from other nodes: it is bounded, and what does
 * not fit is dropped rather than raised as an error.
 */
import { isSpanId, isTraceId } from './traces.js'
import { WIRE_TRACE_LIMITS } from './constants.js'

/** A parsed `traceparent` */
export interface TraceParent {
  /** 32 lowercase hex digits */
  traceId: string
  /** 16 lowercase hex digits: the span of the sender the receiver's spans are children of */
  spanId: string
  /** trace flags; bit 0 is `sampled` */
  flags: number
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/

/**
 * Parses a W3C `traceparent` value; undefined for anything malformed: not a
 * string, longer than `WIRE_TRACE_LIMITS.maxTraceparentLength`, version `ff`,
 * uppercase hex, all-zero ids, a version 00 value with a suffix, or a later
 * version whose 55 first characters are not followed by `-` (the rules of
 * the spec's "Versioning of traceparent").
 */
export function parseTraceparent (value: unknown): TraceParent | undefined {
  if (typeof value !== 'string' || value.length > WIRE_TRACE_LIMITS.maxTraceparentLength) return undefined
  const m = TRACEPARENT.exec(value)
  if (m == null) return undefined
  const [, version, traceId, spanId, flags, rest] = m
  if (version === 'ff') return undefined
  if (version === '00' && rest != null) return undefined
  if (!isTraceId(traceId) || !isSpanId(spanId)) return undefined
  return { traceId, spanId, flags: parseInt(flags, 16) }
}

/** The `traceparent` value (version 00) of a span */
export function formatTraceparent (traceId: string, spanId: string, sampled = true): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`
}

/**
 * A span as it travels with an answer (the `Span` message of the anycast
 * and task protocols): ids are W3C hex, times in ms, attributes as strings.
 */
export interface WireSpan {
  spanId: string
  /** the span it is a child of: the request's traceparent span or another span of the same answer */
  parentId: string
  /** the node that recorded it */
  peerId: string
  name: string
  /** unix ms */
  startMs: number
  durationMs: number
  error: boolean
  attributes: Array<{ key: string, value: string }>
}

/** A span accepted from the wire, in the shape of the trace store */
export interface AcceptedSpan {
  spanId: string
  parentId: string
  peerId: string
  name: string
  startMs: number
  durationMs: number
  status: 'ok' | 'error'
  attributes: Record<string, string>
}

const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{1,128}$/
const NAME = /^[\x21-\x7e][\x20-\x7e]*$/

/**
 * Checks the spans another node returned for a request sent with span
 * `parentSpanId` of this node: at most `WIRE_TRACE_LIMITS.maxSpans` are
 * taken; each needs valid, unique span ids, a parent that is `parentSpanId`
 * or a span accepted before it (so the returned spans hang under the
 * request), a peer id of base58 characters, a printable name, finite times
 * within a day of `now`; attributes beyond the count are dropped, keys and
 * values cut to their limits. A span that fails is dropped with its
 * descendants; the rest are returned.
 */
export function acceptWireSpans (spans: readonly WireSpan[], parentSpanId: string, now: number = Date.now()): AcceptedSpan[] {
  const L = WIRE_TRACE_LIMITS
  const known = new Set<string>([parentSpanId])
  const out: AcceptedSpan[] = []
  for (const s of spans.slice(0, L.maxSpans)) {
    if (typeof s?.spanId !== 'string' || !isSpanId(s.spanId) || known.has(s.spanId)) continue
    if (typeof s.parentId !== 'string' || !known.has(s.parentId)) continue
    if (typeof s.peerId !== 'string' || !PEER_ID.test(s.peerId)) continue
    if (typeof s.name !== 'string' || s.name.length > L.maxNameLength || !NAME.test(s.name)) continue
    if (!Number.isFinite(s.startMs) || !Number.isFinite(s.durationMs) || s.durationMs < 0 || s.durationMs > L.maxDurationMs) continue
    if (Math.abs(s.startMs - now) > L.maxClockSkewMs) continue
    const attributes: Record<string, string> = {}
    for (const a of (Array.isArray(s.attributes) ? s.attributes : []).slice(0, L.maxAttributes)) {
      if (typeof a?.key !== 'string' || typeof a.value !== 'string' || a.key === '' || a.key.length > L.maxAttributeKeyLength) continue
      attributes[a.key] = a.value.slice(0, L.maxAttributeValueLength)
    }
    known.add(s.spanId)
    out.push({
      spanId: s.spanId,
      parentId: s.parentId,
      peerId: s.peerId,
      name: s.name,
      startMs: s.startMs,
      durationMs: s.durationMs,
      status: s.error === true ? 'error' : 'ok',
      attributes
    })
  }
  return out
}

/**
 * The wire form of spans of this node's store (already bounded there), cut
 * to the wire limits: at most `maxSpans`, `maxAttributes` each, values as
 * strings of at most `maxAttributeValueLength`.
 */
export function toWireSpans (spans: ReadonlyArray<{ spanId: string, parentId: string | null, peerId: string, name: string, startMs: number, durationMs: number, status: string, attributes: Record<string, string | number | boolean> }>): WireSpan[] {
  const L = WIRE_TRACE_LIMITS
  return spans.slice(0, L.maxSpans).map(s => ({
    spanId: s.spanId,
    parentId: s.parentId ?? '',
    peerId: s.peerId,
    name: s.name.slice(0, L.maxNameLength),
    startMs: s.startMs,
    durationMs: s.durationMs,
    error: s.status === 'error',
    attributes: Object.entries(s.attributes)
      .filter(([k]) => k.length <= L.maxAttributeKeyLength)
      .slice(0, L.maxAttributes)
      .map(([key, v]) => ({ key, value: String(v).slice(0, L.maxAttributeValueLength) }))
  }))
}
