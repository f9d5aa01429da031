/**
 * The semantic path in a trace: the attributes of the asker's span per
 * attempt (which node, which capability, how similar, where it was found
 * and why it was tried), and the answering node's spans around running a
 * capability for a traced request.
 */
import { LIMITS } from './constants.js'
import { Response } from './pb/anycast.js'
import type { LocalResult } from './invoke.js'
import type { AnycastSpan, AnycastTracer, Candidate, WireSpan } from './types.js'

const round4 = (x: number): number => Math.round(x * 10_000) / 10_000

/** Why an attempt went to its candidate */
export interface AttemptWhy {
  /** 1-based, over the whole ask */
  attempt: number
  /** 0: the first lookup; 1: the fresh network lookup after every candidate failed */
  round: number
  /** the candidate tried just before this one, and how it failed */
  after?: { peerId: string, capability: string, error: string }
}

/**
 * The span attributes of one attempt: `aistack.peer`, `aistack.capability`,
 * `aistack.similarity`, `aistack.score`, `aistack.source` (`own`, `cache`,
 * `dht`: where the record was found), `aistack.liveness`, `aistack.attempt`,
 * `aistack.round` and `aistack.reason`: `best match` / `exact match` for a
 * first try, `retry after <peer>/<capability> failed: <error>`, or `fresh
 * lookup after every candidate failed`.
 */
export function attemptAttributes (c: Candidate, why: AttemptWhy): Record<string, string | number | boolean> {
  let reason: string
  if (why.after != null) reason = `retry after ${why.after.peerId}/${why.after.capability} failed: ${why.after.error}`.slice(0, 256)
  else if (why.round > 0) reason = 'fresh lookup after every candidate failed'
  else reason = c.exact ? 'exact match' : 'best match'
  return {
    'aistack.attempt': why.attempt,
    'aistack.round': why.round,
    'aistack.peer': c.peerId,
    'aistack.capability': c.name,
    'aistack.similarity': round4(c.similarity),
    'aistack.score': round4(c.score),
    'aistack.source': c.source,
    'aistack.liveness': c.liveness,
    'aistack.reason': reason
  }
}

/** A request's traceparent if it is short enough to be looked at; the tracer checks its format */
export function wireTraceparent (value: string | undefined): string | undefined {
  return value != null && value !== '' && value.length <= LIMITS.maxTraceparentLength ? value : undefined
}

/**
 * Runs a capability for a request, inside spans when the request is traced:
 * `anycast.serve` (a child of the asker's span) and under it
 * `capability.run`. Returns the outcome and the spans to put in the response
 * (none when untraced, or when the traceparent is malformed).
 */
export async function tracedServe (tracer: AnycastTracer | undefined, traceparent: string | undefined, info: { capability: string, from: string, inputBytes: number }, run: () => Promise<LocalResult>): Promise<LocalResult & { spans: WireSpan[] }> {
  const tp = wireTraceparent(traceparent)
  const serve: AnycastSpan | undefined = tp == null
    ? undefined
    : tracer?.continue(tp, 'anycast.serve', {
      'aistack.capability': info.capability.slice(0, 64),
      'aistack.from': info.from,
      'aistack.input_bytes': info.inputBytes
    })
  if (serve == null) return { ...await run(), spans: [] }
  const span = serve.child('capability.run', { 'aistack.capability': info.capability.slice(0, 64) })
  const out = await run()
  const status = Response.Status[out.status] ?? String(out.status)
  const failed = out.status === Response.Status.OK ? undefined : `${status}: ${out.error}`
  span.setAttributes({ 'aistack.status': status, 'aistack.output_bytes': out.output.byteLength })
  span.end(failed)
  serve.setAttributes({ 'aistack.status': status, 'aistack.inflight': out.inflight, 'aistack.capacity': out.capacity })
  serve.end(failed)
  return { ...out, spans: serve.wireSpans() }
}
