import { fromString as u8FromString } from 'uint8arrays/from-string'
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_INPUT_BYTES, DEFAULT_TIMEOUT_MS } from './constants.js'
import { BadRequestError, NoCandidatesError } from './errors.js'
import type { Candidate, FindOptions } from './types.js'

/** Most inputs in one `askMany` call */
export const MAX_ASK_MANY_INPUTS = 10_000
/** Inputs of one `askMany` call in flight at once, by default */
export const DEFAULT_ASK_MANY_CONCURRENCY = 256

export interface AskManyOptions {
  /** for the whole call, milliseconds (default the service's ask timeout) */
  timeoutMs?: number
  /** candidates one input tries at most (default the service's) */
  maxAttempts?: number
  minSimilarity?: number
  /** inputs in flight at once (default 256) */
  concurrency?: number
  /** largest JSON input, bytes (default the service's) */
  maxInputBytes?: number
  signal?: AbortSignal
}

/** One input's outcome: its output and who answered, or why it failed */
export type AskManyOutput =
  | { output: unknown, peerId: string, capability: string }
  | { error: { code: string, message: string } }

export interface AskManyResult {
  /** in input order */
  outputs: AskManyOutput[]
  /** the best match's owner and capability */
  peerId: string
  capability: string
  similarity: number
  latencyMs: number
}

export interface AskManyDeps {
  find(query: string, options: FindOptions): Promise<Candidate[]>
  invoke(c: Candidate, input: Uint8Array, timeoutMs: number, signal: AbortSignal): Promise<unknown>
}

/**
 * Asks many inputs of the capability that best matches `query`: one lookup,
 * then every input to the best candidate, an input whose candidate fails
 * trying the next ones (up to `maxAttempts`); an owner that failed at the
 * transport is skipped by the inputs after it. At most `concurrency` inputs
 * are in flight (and no more than the best match's `maxConcurrency`), so
 * that requests to one peer share sembatch frames.
 *
 * @throws BadRequestError (too many inputs), NoCandidatesError
 */
export async function askMany (deps: AskManyDeps, query: string, inputs: unknown[], options: AskManyOptions = {}): Promise<AskManyResult> {
  const started = performance.now()
  if (!Array.isArray(inputs) || inputs.length > MAX_ASK_MANY_INPUTS) throw new BadRequestError(`inputs is an array of at most ${MAX_ASK_MANY_INPUTS} values`)
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const maxAttempts = Math.max(1, options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS)
  const maxInput = options.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES
  const deadline = started + timeoutMs
  const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(options.signal != null ? [options.signal] : [])])
  const candidates = await deps.find(query, { k: Math.max(maxAttempts * 2, 5), signal, minSimilarity: options.minSimilarity })
  const best = candidates[0]
  if (best == null) throw new NoCandidatesError(`no peer offers a capability matching "${query.slice(0, 80)}"`)
  const down = new Set<string>()
  const outputs: AskManyOutput[] = new Array(inputs.length)
  const one = async (input: unknown): Promise<AskManyOutput> => {
    const bytes = u8FromString(JSON.stringify(input ?? null))
    if (bytes.byteLength > maxInput) return { error: { code: 'TooLargeError', message: `input is ${bytes.byteLength} bytes, limit ${maxInput}` } }
    let last: any
    let attempts = 0
    for (const c of candidates) {
      if (attempts >= maxAttempts || signal.aborted) break
      if (down.has(c.peerId)) continue
      attempts++
      try {
        const output = await deps.invoke(c, bytes, Math.max(1, Math.floor(deadline - performance.now())), signal)
        return { output, peerId: c.peerId, capability: c.name }
      } catch (err: any) {
        last = err
        // a remote status says the peer is up; anything else (reset, refused, timeout) may not
        if (err?.name !== 'RemoteError') down.add(c.peerId)
      }
    }
    if (last == null) return { error: { code: signal.aborted ? 'TimeoutError' : 'AllCandidatesFailedError', message: signal.aborted ? 'no time left for this input' : 'every candidate failed on earlier inputs' } }
    return { error: { code: String(last?.name ?? 'Error'), message: String(last?.message ?? last) } }
  }
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < inputs.length) {
      const i = next++
      outputs[i] = await one(inputs[i])
    }
  }
  // no more in flight than the best match takes at once (an input over its limit would come back OVERLOADED)
  const limit = best.attributes?.maxConcurrency != null && best.attributes.maxConcurrency > 0 ? best.attributes.maxConcurrency : Infinity
  const concurrency = Math.max(1, Math.min(options.concurrency ?? DEFAULT_ASK_MANY_CONCURRENCY, limit, inputs.length))
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { outputs, peerId: best.peerId, capability: best.name, similarity: best.similarity, latencyMs: performance.now() - started }
}
