import { OverloadedError } from '@aistack/semantic-anycast'
import {
  DuplicateCapabilityError, HandlerTimeoutError, InputTooLargeError, OutputTooLargeError, UnknownCapabilityError
} from './errors.js'
import { createBatchHandler, createHandler } from './handlers.js'
import { limitsOf, validateCapabilitySpec } from './spec.js'
import type { HandlerFn } from './handlers.js'
import type { RemoteHandlerFn } from './remote.js'
import type { CapabilitySpec, HandlerLimits, ValidateOptions } from './spec.js'
import type { Embedder } from '@aistack/embeddings'
import type { CapabilityAttributes, CapabilityProvider, LocalCapability } from '@aistack/semantic-anycast'

/** What `serve()` takes besides the function */
export interface ServeSpec extends HandlerLimits {
  /**
   * true: the function takes an array of inputs and answers with an array of
   * outputs in the same order (an `Error` in the array fails that input alone);
   * requests arriving together over sembatch reach it as one call
   */
  batch?: boolean
  description: string
  tags?: string[]
  examples?: string[]
  attributes?: CapabilityAttributes
}

export interface RegisteredCapability {
  capability: LocalCapability
  /** 'builtin' | 'exec' | 'http' | 'openai' | 'function' */
  type: string
  limits: Required<HandlerLimits>
  running: number
  /** the spec as given (absent for functions) */
  spec?: CapabilitySpec
  /** takes batches of inputs in one call */
  batch?: boolean
}

/** Takes many inputs at once: one output (or Error) per input, in order */
export type BatchHandlerFn = (inputs: unknown[], options: { signal: AbortSignal }) => Promise<unknown[]>

interface Entry extends RegisteredCapability {
  fn: HandlerFn
  batchFn?: BatchHandlerFn
}

/** One result of `invokeBatch` */
export type BatchResult = { output: unknown } | { error: Error }
/** Told of every invocation that ran: capability name, duration in ms, and whether it answered */
export type InvokeObserver = (name: string, durationMs: number, ok: boolean) => void

export interface CapabilityRegistryInit {
  /** used by the builtin `embed` handler */
  embedder?: Embedder
}

function jsonBytes (value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value ?? null) ?? 'null')
}

/**
 * The capabilities this node serves and their handlers; the
 * CapabilityProvider of semantic anycast. Enforces per-handler timeout,
 * input and output size limits and concurrency limit.
 */
export class CapabilityRegistry implements CapabilityProvider {
  private readonly entries = new Map<string, Entry>()
  private readonly listeners = new Set<() => void>()
  private readonly observers = new Set<InvokeObserver>()
  private readonly embedder?: Embedder
  /** Told of every request a handler served: its capability, time taken, and the error if it failed (for the node's log) */
  onServed?: (event: { name: string, ms: number, error?: unknown }) => void

  constructor (init: CapabilityRegistryInit = {}) {
    this.embedder = init.embedder
  }

  /** Add a capability from its definition (config.json or the API); returns its name */
  add (spec: unknown, path = 'capability', options: ValidateOptions = {}): string {
    const s = validateCapabilitySpec(spec, path, options)
    if (this.entries.has(s.name)) throw new DuplicateCapabilityError(`a capability named "${s.name}" exists already`)
    const limits = limitsOf(s.handler)
    const ctx = { name: s.name, embedder: this.embedder, maxOutputBytes: limits.maxOutputBytes }
    const fn = createHandler(s.handler, ctx)
    this.put(s.name, { capability: this.describe(s, limits), type: s.handler.type, limits, running: 0, spec: s, fn, batchFn: createBatchHandler(s.handler, ctx) })
    return s.name
  }

  /** Serve a TypeScript function as a capability */
  serve (name: string, spec: ServeSpec & { batch: true }, fn: BatchHandlerFn): void
  serve (name: string, spec: ServeSpec, fn: HandlerFn): void
  serve (name: string, spec: ServeSpec, fn: HandlerFn | BatchHandlerFn): void {
    const s = validateCapabilitySpec({ ...spec, name, handler: { type: 'builtin', name: 'echo', ...pickLimits(spec) } }, `serve(${JSON.stringify(name)})`)
    if (typeof fn !== 'function') throw new TypeError('serve() needs a function')
    if (this.entries.has(name)) throw new DuplicateCapabilityError(`a capability named "${name}" exists already`)
    const limits = limitsOf(spec)
    if (spec.batch === true) {
      const batchFn = fn as BatchHandlerFn
      const one: HandlerFn = async (input, options) => {
        const [output] = await batchFn([input], options)
        if (output instanceof Error) throw output
        return output
      }
      this.put(name, { capability: this.describe(s, limits), type: 'function', limits, running: 0, fn: one, batchFn })
      return
    }
    this.put(name, { capability: this.describe(s, limits), type: 'function', limits, running: 0, fn: fn as HandlerFn })
  }

  /** True when the capability takes batches (`invokeBatch` makes one call for many inputs) */
  takesBatches (name: string): boolean {
    return this.entries.get(name)?.batchFn != null
  }

  /**
   * Runs many inputs at once: one call of a batch handler (inputs over the
   * size limit fail alone, the timeout covers the call), or one call per input
   * for other handlers, as many at once as the concurrency limit allows. Never
   * throws for one input: each result is an output or an error.
   */
  async invokeBatch (name: string, inputs: unknown[], options: { signal?: AbortSignal } = {}): Promise<BatchResult[]> {
    const e = this.entries.get(name)
    if (e == null) throw new UnknownCapabilityError(`no capability named "${name}"`)
    const batchFn = e.batchFn
    if (batchFn == null) {
      return Promise.all(inputs.map(async input => this.invoke(name, input, options).then(output => ({ output }), (error: Error) => ({ error }))))
    }
    const results: BatchResult[] = new Array(inputs.length)
    const fits: number[] = []
    inputs.forEach((input, i) => {
      const bytes = jsonBytes(input)
      if (bytes > e.limits.maxInputBytes) results[i] = { error: new InputTooLargeError(`input is ${bytes} bytes, ${name} accepts at most ${e.limits.maxInputBytes}`) }
      else fits.push(i)
    })
    if (fits.length === 0) return results
    const signal = options.signal != null ? AbortSignal.any([options.signal, AbortSignal.timeout(e.limits.timeoutMs)]) : AbortSignal.timeout(e.limits.timeoutMs)
    e.running++
    try {
      const outputs = await batchFn(fits.map(i => inputs[i]), { signal })
      if (!Array.isArray(outputs) || outputs.length !== fits.length) throw new TypeError(`the batch handler of ${name} must answer with ${fits.length} outputs`)
      fits.forEach((i, k) => {
        const out = outputs[k]
        if (out instanceof Error) results[i] = { error: out }
        else if (jsonBytes(out) > e.limits.maxOutputBytes) results[i] = { error: new OutputTooLargeError(`output is over ${e.limits.maxOutputBytes} bytes`) }
        else results[i] = { output: out }
      })
    } catch (err: any) {
      const error = signal.aborted && !(options.signal?.aborted ?? false) ? new HandlerTimeoutError(`${name} did not answer within ${e.limits.timeoutMs} ms`) : err
      for (const i of fits) results[i] = { error }
    } finally {
      e.running--
    }
    return results
  }

  private describe (s: { name: string, description: string, tags?: string[], examples?: string[], attributes?: CapabilityAttributes }, limits: Required<HandlerLimits>): LocalCapability {
    return {
      name: s.name,
      description: s.description,
      tags: s.tags ?? [],
      examples: s.examples ?? [],
      attributes: { ...s.attributes, maxConcurrency: s.attributes?.maxConcurrency ?? limits.concurrency }
    }
  }

  private put (name: string, entry: Entry): void {
    this.entries.set(name, entry)
    this.emit()
  }

  /** Remove a capability; returns false when there was none of that name */
  remove (name: string): boolean {
    const entry = this.entries.get(name)
    const had = this.entries.delete(name)
    if (had) this.emit()
    closeHandler(entry?.fn)
    return had
  }

  /** Closes the connections of handlers that keep one (MCP servers, A2A agents) */
  async close (): Promise<void> {
    await Promise.all([...this.entries.values()].map(async e => { await (e.fn as Partial<RemoteHandlerFn>).close?.().catch(() => {}) }))
  }

  has (name: string): boolean {
    return this.entries.has(name)
  }

  /** Capabilities with their handler type and limits (for GET /v1/capabilities) */
  entriesList (): RegisteredCapability[] {
    return [...this.entries.values()].map(({ fn, batchFn, ...rest }) => ({ ...rest, batch: batchFn != null }))
  }

  list (): LocalCapability[] {
    return [...this.entries.values()].map(e => e.capability)
  }

  /**
   * Run a capability's handler under its limits. `inputBytes` is the size of
   * `input` as JSON when the caller knows it (it arrived as JSON bytes).
   */
  async invoke (name: string, input: unknown, options: { signal?: AbortSignal, inputBytes?: number } = {}): Promise<unknown> {
    if (this.onServed == null) return this.run(name, input, options)
    const started = performance.now()
    try {
      const output = await this.run(name, input, options)
      this.onServed({ name, ms: performance.now() - started })
      return output
    } catch (error) {
      this.onServed({ name, ms: performance.now() - started, error })
      throw error
    }
  }

  private async run (name: string, input: unknown, options: { signal?: AbortSignal, inputBytes?: number }): Promise<unknown> {
    const e = this.entries.get(name)
    if (e == null) throw new UnknownCapabilityError(`no capability named "${name}"`)
    if (e.running >= e.limits.concurrency) throw new OverloadedError(`${name} is at its concurrency limit (${e.limits.concurrency})`)
    const inBytes = options.inputBytes ?? jsonBytes(input)
    if (inBytes > e.limits.maxInputBytes) throw new InputTooLargeError(`input is ${inBytes} bytes, ${name} accepts at most ${e.limits.maxInputBytes}`)
    const timeoutError = (): HandlerTimeoutError => new HandlerTimeoutError(`${name} did not answer within ${e.limits.timeoutMs} ms`)
    // one controller for the caller's signal and the timeout: cheaper than AbortSignal.any + AbortSignal.timeout
    const controller = new AbortController()
    const signal = controller.signal
    const outer = options.signal
    let timedOut = false
    const onOuterAbort = (): void => { controller.abort(outer?.reason) }
    if (outer?.aborted === true) {
      controller.abort(outer.reason)
    } else {
      outer?.addEventListener('abort', onOuterAbort, { once: true })
    }
    const timer = setTimeout(() => {
      timedOut = true
      controller.abort(timeoutError())
    }, e.limits.timeoutMs)
    e.running++
    const started = performance.now()
    let ok = false
    try {
      const output = await new Promise<unknown>((resolve, reject) => {
        if (signal.aborted) {
          reject(signal.reason)
          return
        }
        signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
        let result: unknown
        try {
          result = e.fn(input, { signal })
        } catch (err) {
          reject(err)
          return
        }
        Promise.resolve(result).then(async value => isAsyncIterable(value) ? joinPieces(value) : value).then(resolve, (err: any) => {
          reject(timedOut && err?.name !== 'OutputTooLargeError' ? timeoutError() : err)
        })
      })
      const outBytes = jsonBytes(output)
      if (outBytes > e.limits.maxOutputBytes) throw new OutputTooLargeError(`output is ${outBytes} bytes, limit ${e.limits.maxOutputBytes}`)
      ok = true
      return output
    } finally {
      clearTimeout(timer)
      outer?.removeEventListener('abort', onOuterAbort)
      e.running--
      const ms = performance.now() - started
      for (const o of this.observers) {
        try { o(name, ms, ok) } catch {}
      }
    }
  }

  /**
   * Like `invoke`, but yields the output in pieces as the handler produces
   * them (a handler that answers whole yields one piece). The limits hold for
   * the whole: the timeout for the last piece, the output size for the sum.
   */
  async * invokeStream (name: string, input: unknown, options: { signal?: AbortSignal, inputBytes?: number } = {}): AsyncGenerator<unknown> {
    const e = this.entries.get(name)
    if (e == null) throw new UnknownCapabilityError(`no capability named "${name}"`)
    if (e.running >= e.limits.concurrency) throw new OverloadedError(`${name} is at its concurrency limit (${e.limits.concurrency})`)
    const inBytes = options.inputBytes ?? jsonBytes(input)
    if (inBytes > e.limits.maxInputBytes) throw new InputTooLargeError(`input is ${inBytes} bytes, ${name} accepts at most ${e.limits.maxInputBytes}`)
    const controller = new AbortController()
    const outer = options.signal
    const onOuterAbort = (): void => { controller.abort(outer?.reason) }
    if (outer?.aborted === true) controller.abort(outer.reason)
    else outer?.addEventListener('abort', onOuterAbort, { once: true })
    const timer = setTimeout(() => { controller.abort(new HandlerTimeoutError(`${name} did not answer within ${e.limits.timeoutMs} ms`)) }, e.limits.timeoutMs)
    const signal = controller.signal
    const aborted = new Promise<never>((_resolve, reject) => {
      signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
    })
    aborted.catch(() => {})
    e.running++
    try {
      signal.throwIfAborted()
      const result = await Promise.race([Promise.resolve(e.fn(input, { signal, stream: true })), aborted])
      if (!isAsyncIterable(result)) {
        const outBytes = jsonBytes(result)
        if (outBytes > e.limits.maxOutputBytes) throw new OutputTooLargeError(`output is ${outBytes} bytes, limit ${e.limits.maxOutputBytes}`)
        yield result
        return
      }
      const it = result[Symbol.asyncIterator]()
      let total = 0
      try {
        for (;;) {
          const next = await Promise.race([it.next(), aborted])
          if (next.done === true) return
          total += jsonBytes(next.value)
          if (total > e.limits.maxOutputBytes) throw new OutputTooLargeError(`output is over ${e.limits.maxOutputBytes} bytes`)
          yield next.value
        }
      } finally {
        await it.return?.()
      }
    } finally {
      clearTimeout(timer)
      outer?.removeEventListener('abort', onOuterAbort)
      e.running--
    }
  }

  /** Calls `observer` after every invocation that ran (telemetry); returns a function that removes it */
  observe (observer: InvokeObserver): () => void {
    this.observers.add(observer)
    return () => { this.observers.delete(observer) }
  }

  onChange (listener: () => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  private emit (): void {
    for (const l of this.listeners) {
      try { l() } catch {}
    }
  }
}

function closeHandler (fn?: HandlerFn): void {
  (fn as Partial<RemoteHandlerFn> | undefined)?.close?.().catch(() => {})
}

function isAsyncIterable (x: unknown): x is AsyncIterable<unknown> {
  return x != null && typeof (x as any)[Symbol.asyncIterator] === 'function'
}

/** A streamed output as a whole: string pieces joined, other pieces as an array */
async function joinPieces (pieces: AsyncIterable<unknown>): Promise<unknown> {
  const all: unknown[] = []
  for await (const p of pieces) all.push(p)
  return all.every(p => typeof p === 'string') ? all.join('') : all
}

function pickLimits (s: HandlerLimits): HandlerLimits {
  const out: HandlerLimits = {}
  for (const k of ['timeoutMs', 'maxInputBytes', 'maxOutputBytes', 'concurrency'] as const) if (s[k] != null) out[k] = s[k]
  return out
}
