import { OverloadedError } from '@aistack/semantic-anycast'
import {
  DuplicateCapabilityError, HandlerTimeoutError, InputTooLargeError, OutputTooLargeError, UnknownCapabilityError
} from './errors.js'
import { createHandler } from './handlers.js'
import { limitsOf, validateCapabilitySpec } from './spec.js'
import type { HandlerFn } from './handlers.js'
import type { CapabilitySpec, HandlerLimits, ValidateOptions } from './spec.js'
import type { Embedder } from '@aistack/embeddings'
import type { CapabilityAttributes, CapabilityProvider, LocalCapability } from '@aistack/semantic-anycast'

/** What `serve()` takes besides the function */
export interface ServeSpec extends HandlerLimits {
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
}

interface Entry extends RegisteredCapability {
  fn: HandlerFn
}

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

  constructor (init: CapabilityRegistryInit = {}) {
    this.embedder = init.embedder
  }

  /** Add a capability from its definition (config.json or the API); returns its name */
  add (spec: unknown, path = 'capability', options: ValidateOptions = {}): string {
    const s = validateCapabilitySpec(spec, path, options)
    if (this.entries.has(s.name)) throw new DuplicateCapabilityError(`a capability named "${s.name}" exists already`)
    const limits = limitsOf(s.handler)
    const fn = createHandler(s.handler, { name: s.name, embedder: this.embedder, maxOutputBytes: limits.maxOutputBytes })
    this.put(s.name, { capability: this.describe(s, limits), type: s.handler.type, limits, running: 0, spec: s, fn })
    return s.name
  }

  /** Serve a TypeScript function as a capability */
  serve (name: string, spec: ServeSpec, fn: HandlerFn): void {
    const s = validateCapabilitySpec({ ...spec, name, handler: { type: 'builtin', name: 'echo', ...pickLimits(spec) } }, `serve(${JSON.stringify(name)})`)
    if (typeof fn !== 'function') throw new TypeError('serve() needs a function')
    if (this.entries.has(name)) throw new DuplicateCapabilityError(`a capability named "${name}" exists already`)
    const limits = limitsOf(spec)
    this.put(name, { capability: this.describe(s, limits), type: 'function', limits, running: 0, fn })
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
    const had = this.entries.delete(name)
    if (had) this.emit()
    return had
  }

  has (name: string): boolean {
    return this.entries.has(name)
  }

  /** Capabilities with their handler type and limits (for GET /v1/capabilities) */
  entriesList (): RegisteredCapability[] {
    return [...this.entries.values()].map(({ fn, ...rest }) => ({ ...rest }))
  }

  list (): LocalCapability[] {
    return [...this.entries.values()].map(e => e.capability)
  }

  /**
   * Run a capability's handler under its limits. `inputBytes` is the size of
   * `input` as JSON when the caller knows it (it arrived as JSON bytes).
   */
  async invoke (name: string, input: unknown, options: { signal?: AbortSignal, inputBytes?: number } = {}): Promise<unknown> {
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
        Promise.resolve(result).then(resolve, (err: any) => {
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

function pickLimits (s: HandlerLimits): HandlerLimits {
  const out: HandlerLimits = {}
  for (const k of ['timeoutMs', 'maxInputBytes', 'maxOutputBytes', 'concurrency'] as const) if (s[k] != null) out[k] = s[k]
  return out
}
