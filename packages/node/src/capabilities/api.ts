/**
 * Validation and response shapes for the capability routes of the HTTP API
 * and the `find`/`ask` CLI commands; the routes themselves live in the API.
 */
import type { RegisteredCapability } from './registry.js'
import type { AskResult, Candidate, CapabilityRecord } from '@aistack/semantic-anycast'

export class RequestValidationError extends Error {
  static override name = 'RequestValidationError'
  override name = 'RequestValidationError'
}

export interface SearchParams { q: string, k: number, explain: boolean }
export interface AskBody { query: string, input: unknown, timeoutMs?: number, minSimilarity?: number }

const ASK_FIELDS = new Set(['query', 'input', 'timeoutMs', 'minSimilarity', 'stream'])

/** `GET /v1/capabilities/search?q=TEXT&k=N&explain=1` */
export function parseSearchParams (params: URLSearchParams): SearchParams {
  const q = params.get('q')
  if (q == null || q.trim().length === 0) throw new RequestValidationError('q must be a non-empty string')
  if (q.length > 4096) throw new RequestValidationError('q must be at most 4096 characters')
  const kRaw = params.get('k')
  const k = kRaw == null ? 5 : Number(kRaw)
  if (!Number.isInteger(k) || k < 1 || k > 100) throw new RequestValidationError('k must be an integer in 1..100')
  const explain = params.get('explain')
  if (explain != null && !['0', '1', 'true', 'false', ''].includes(explain)) throw new RequestValidationError('explain must be 1 or 0')
  return { q, k, explain: explain === '1' || explain === 'true' || explain === '' }
}

/** `POST /v1/ask` body: `{"query", "input", "timeoutMs"?}` */
export function parseAskBody (body: unknown): AskBody {
  if (typeof body !== 'object' || body == null || Array.isArray(body)) throw new RequestValidationError('body must be a JSON object')
  const b = body as Record<string, unknown>
  const unknown = Object.keys(b).find(k => !ASK_FIELDS.has(k))
  if (unknown != null) throw new RequestValidationError(`${unknown} is not a known field (known: ${[...ASK_FIELDS].join(', ')})`)
  if (b.minSimilarity != null && (typeof b.minSimilarity !== 'number' || !(b.minSimilarity >= -1 && b.minSimilarity <= 1))) {
    throw new RequestValidationError('minSimilarity must be a number in -1..1')
  }
  if (typeof b.query !== 'string' || b.query.trim().length === 0 || b.query.length > 4096) throw new RequestValidationError('query must be a string of 1-4096 characters')
  if (b.timeoutMs != null && (!Number.isInteger(b.timeoutMs) || (b.timeoutMs as number) < 1 || (b.timeoutMs as number) > 3_600_000)) {
    throw new RequestValidationError('timeoutMs must be an integer in 1..3600000')
  }
  return { query: b.query, input: b.input ?? null, timeoutMs: b.timeoutMs as number | undefined, minSimilarity: b.minSimilarity as number | undefined }
}

/**
 * `{"results": [{peerId, name, description, similarity, score, load, latencyMs?, source, confirmedAt, liveness}], "explain"?}`,
 * best first; `source` is own, cache or dht, `confirmedAt` an ISO time, `liveness` live, unknown or failing
 */
export function searchResponse (candidates: Candidate[], explain?: unknown): { results: Array<{ peerId: string, name: string, description: string, similarity: number, score: number, load: number, latencyMs?: number, source: string, confirmedAt: string, liveness: string }>, explain?: unknown } {
  return {
    results: candidates.map(c => ({
      peerId: c.peerId,
      name: c.name,
      description: c.description,
      similarity: round(c.similarity),
      score: round(c.score),
      load: round(c.load),
      ...(c.latencyMs != null ? { latencyMs: round(c.latencyMs) } : {}),
      source: c.source,
      confirmedAt: new Date(c.confirmedAt).toISOString(),
      liveness: c.liveness
    })),
    ...(explain != null ? { explain } : {})
  }
}

export function askResponse (r: AskResult): { output: unknown, peerId: string, capability: string, similarity: number, attempts: number, latencyMs: number, failures: AskResult['failures'] } {
  return { output: r.output, peerId: r.peerId, capability: r.capability, similarity: round(r.similarity), attempts: r.attempts, latencyMs: round(r.latencyMs), failures: r.failures ?? [] }
}

/**
 * `GET /v1/capabilities/network`: `{"capabilities": [{peerId, name, description, tags, examples,
 * model, expiresAt, liveness}]}`, by name then owner; liveness is `live`, `unknown` or `failing`.
 */
export function networkCapabilitiesResponse (known: Array<{ record: CapabilityRecord, liveness: string }>): { capabilities: Array<{ peerId: string, name: string, description: string, tags: string[], examples: string[], model: string, expiresAt: number, liveness: string }> } {
  return {
    capabilities: known
      .map(({ record: r, liveness }) => ({ peerId: r.owner, name: r.name, description: r.description, tags: r.tags, examples: r.examples, model: r.model, expiresAt: r.expiresAt, liveness }))
      .sort((a, b) => a.name.localeCompare(b.name) || a.peerId.localeCompare(b.peerId))
  }
}

/** `GET /v1/capabilities` */
export function capabilitiesResponse (list: RegisteredCapability[]): { capabilities: unknown[] } {
  return {
    capabilities: list.map(e => ({
      ...e.capability,
      handler: e.type,
      limits: e.limits,
      running: e.running
    }))
  }
}

/** HTTP status and error code for errors of capabilities, anycast and handlers */
export function errorStatus (err: unknown): { status: number, code: string } {
  const name = (err as Error)?.name
  switch (name) {
    case 'RequestValidationError':
    case 'CapabilitySpecError':
    case 'BadRequestError':
    case 'HandlerInputError':
      return { status: 400, code: 'bad_request' }
    case 'NoCandidatesError':
      return { status: 404, code: 'no_capable_peer' }
    case 'UnknownCapabilityError':
      return { status: 404, code: 'not_found' }
    case 'DuplicateCapabilityError':
      return { status: 409, code: 'conflict' }
    case 'InputTooLargeError':
    case 'TooLargeError':
      return { status: 413, code: 'too_large' }
    case 'OverloadedError':
      return { status: 503, code: 'overloaded' }
    case 'LookupQueueFullError':
      return { status: 503, code: 'busy' }
    case 'HandlerTimeoutError':
    case 'TimeoutError':
      return { status: 504, code: 'timeout' }
    case 'AllCandidatesFailedError':
    case 'HandlerError':
    case 'OutputTooLargeError':
      return { status: 502, code: 'upstream_failed' }
    default:
      return { status: 500, code: 'internal' }
  }
}

function round (x: number): number {
  return Math.round(x * 10000) / 10000
}
