import { CAPABILITY_NAME, LIMITS } from '@aistack/semantic-anycast'
import { CapabilitySpecError } from './errors.js'
import type { CapabilityAttributes } from '@aistack/semantic-anycast'

export const BUILTINS = ['echo', 'chunk', 'embed'] as const
export type BuiltinName = typeof BUILTINS[number]

/** Limits every handler has */
export interface HandlerLimits {
  /** default 30,000 */
  timeoutMs?: number
  /** JSON-encoded input, default 1 MiB */
  maxInputBytes?: number
  /** JSON-encoded output, default 1 MiB */
  maxOutputBytes?: number
  /** requests run at once; more are refused with OverloadedError; default 4 */
  concurrency?: number
}

export type HandlerSpec =
  | ({ type: 'builtin', name: BuiltinName } & HandlerLimits)
  | ({ type: 'exec', command: string[], cwd?: string, env?: Record<string, string>, batch?: boolean } & HandlerLimits)
  | ({ type: 'http', url: string, headers?: Record<string, string> } & HandlerLimits)
  | ({ type: 'openai', baseUrl: string, model: string, endpoint?: 'chat' | 'embeddings', system?: string, apiKey?: string, maxTokens?: number, temperature?: number } & HandlerLimits)
  /** one tool of an MCP server, started as a command (stdio) or reached at a Streamable HTTP URL */
  | ({ type: 'mcp', tool: string, command?: string[], cwd?: string, env?: Record<string, string>, url?: string, headers?: Record<string, string> } & HandlerLimits)
  /** a remote A2A agent (JSON-RPC binding), optionally one of its skills */
  | ({ type: 'a2a', url: string, skill?: string, headers?: Record<string, string> } & HandlerLimits)

export interface CapabilitySpec {
  name: string
  description: string
  tags?: string[]
  examples?: string[]
  attributes?: CapabilityAttributes
  handler: HandlerSpec
}

export const DEFAULT_LIMITS: Required<HandlerLimits> = {
  timeoutMs: 30_000,
  maxInputBytes: 1024 * 1024,
  maxOutputBytes: 1024 * 1024,
  concurrency: 4
}

const MAX_LIMITS: Required<HandlerLimits> = {
  timeoutMs: 3_600_000,
  maxInputBytes: 64 * 1024 * 1024,
  maxOutputBytes: 64 * 1024 * 1024,
  concurrency: 10_000
}

function isObject (x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x != null && !Array.isArray(x)
}

function str (v: unknown, field: string, opts: { max?: number, optional?: boolean, min?: number } = {}): void {
  if (v == null && opts.optional === true) return
  if (typeof v !== 'string' || v.length < (opts.min ?? 1) || v.length > (opts.max ?? 4096)) {
    throw new CapabilitySpecError(field, `must be a string of ${opts.min ?? 1}-${opts.max ?? 4096} characters`)
  }
}

function httpUrl (v: unknown, field: string): void {
  str(v, field, { max: 2048 })
  let u: URL
  try {
    u = new URL(v as string)
  } catch {
    throw new CapabilitySpecError(field, 'must be a valid URL')
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CapabilitySpecError(field, 'must be an http(s) URL')
}

function stringMap (v: unknown, field: string): void {
  if (v == null) return
  if (!isObject(v)) throw new CapabilitySpecError(field, 'must be an object of strings')
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw new CapabilitySpecError(`${field}.${k}`, 'must be a string')
  }
}

export interface ValidateOptions {
  /** handler types accepted, default all */
  allowedTypes?: Array<HandlerSpec['type']>
}

/**
 * Check one capability definition; throws CapabilitySpecError naming the
 * field, e.g. `capabilities[2].handler.command`. Returns it typed.
 */
export function validateCapabilitySpec (spec: unknown, path = 'capability', options: ValidateOptions = {}): CapabilitySpec {
  if (!isObject(spec)) throw new CapabilitySpecError(path, 'must be an object')
  if (typeof spec.name !== 'string' || !CAPABILITY_NAME.test(spec.name)) {
    throw new CapabilitySpecError(`${path}.name`, 'must be 1-64 letters, digits, ".", "_", ":" or "-", starting with a letter or digit')
  }
  // a capability served over MCP or A2A may take its description from the tool or agent card
  const remote = isObject(spec.handler) && (spec.handler.type === 'mcp' || spec.handler.type === 'a2a')
  str(spec.description, `${path}.description`, { max: LIMITS.maxDescriptionLength, optional: remote })
  for (const [f, max, maxLen] of [['tags', LIMITS.maxTags, LIMITS.maxTagLength], ['examples', LIMITS.maxExamples, LIMITS.maxExampleLength]] as const) {
    const v = spec[f]
    if (v == null) continue
    if (!Array.isArray(v) || v.length > max) throw new CapabilitySpecError(`${path}.${f}`, `must be an array of at most ${max} strings`)
    v.forEach((x, i) => { str(x, `${path}.${f}[${i}]`, { max: maxLen }) })
  }
  if (spec.attributes != null) {
    const a = spec.attributes
    const p = `${path}.attributes`
    if (!isObject(a)) throw new CapabilitySpecError(p, 'must be an object')
    for (const k of Object.keys(a)) {
      if (!['cost', 'maxConcurrency', 'region', 'privacy'].includes(k)) throw new CapabilitySpecError(`${p}.${k}`, 'is not a known attribute (cost, maxConcurrency, region, privacy)')
    }
    if (a.cost != null && (typeof a.cost !== 'number' || !Number.isFinite(a.cost) || a.cost < 0)) throw new CapabilitySpecError(`${p}.cost`, 'must be a finite number >= 0')
    if (a.maxConcurrency != null && (!Number.isInteger(a.maxConcurrency) || (a.maxConcurrency as number) < 1)) throw new CapabilitySpecError(`${p}.maxConcurrency`, 'must be a positive integer')
    str(a.region, `${p}.region`, { optional: true, max: LIMITS.maxAttributeLength })
    str(a.privacy, `${p}.privacy`, { optional: true, max: LIMITS.maxAttributeLength })
  }
  validateHandlerSpec(spec.handler, `${path}.handler`, options)
  return spec as unknown as CapabilitySpec
}

export function validateHandlerSpec (h: unknown, path: string, options: ValidateOptions = {}): HandlerSpec {
  if (!isObject(h)) throw new CapabilitySpecError(path, 'must be an object with a "type"')
  const types = ['builtin', 'exec', 'http', 'openai', 'mcp', 'a2a']
  if (typeof h.type !== 'string' || !types.includes(h.type)) throw new CapabilitySpecError(`${path}.type`, `must be one of ${types.join(', ')}`)
  if (options.allowedTypes != null && !options.allowedTypes.includes(h.type as HandlerSpec['type'])) {
    throw new CapabilitySpecError(`${path}.type`, `must be one of ${options.allowedTypes.join(', ')} here`)
  }
  for (const k of Object.keys(DEFAULT_LIMITS) as Array<keyof HandlerLimits>) {
    const v = h[k]
    if (v != null && (!Number.isInteger(v) || (v as number) < 1 || (v as number) > MAX_LIMITS[k])) {
      throw new CapabilitySpecError(`${path}.${k}`, `must be an integer in 1..${MAX_LIMITS[k]}`)
    }
  }
  switch (h.type) {
    case 'builtin':
      if (typeof h.name !== 'string' || !(BUILTINS as readonly string[]).includes(h.name)) throw new CapabilitySpecError(`${path}.name`, `must be one of ${BUILTINS.join(', ')}`)
      break
    case 'exec':
      if (!Array.isArray(h.command) || h.command.length === 0 || h.command.length > 256) throw new CapabilitySpecError(`${path}.command`, 'must be a non-empty array of strings (argv, no shell)')
      h.command.forEach((a, i) => { if (typeof a !== 'string' || (i === 0 && a.length === 0) || a.includes('\0')) throw new CapabilitySpecError(`${path}.command[${i}]`, 'must be a string without NUL') })
      str(h.cwd, `${path}.cwd`, { optional: true })
      stringMap(h.env, `${path}.env`)
      if (h.batch != null && typeof h.batch !== 'boolean') throw new CapabilitySpecError(`${path}.batch`, 'must be true or false (true: one JSON line per input in, one per output out)')
      break
    case 'http':
      httpUrl(h.url, `${path}.url`)
      stringMap(h.headers, `${path}.headers`)
      break
    case 'openai':
      httpUrl(h.baseUrl, `${path}.baseUrl`)
      str(h.model, `${path}.model`, { max: 256 })
      if (h.endpoint != null && h.endpoint !== 'chat' && h.endpoint !== 'embeddings') throw new CapabilitySpecError(`${path}.endpoint`, 'must be "chat" (chat completions, the default) or "embeddings"')
      str(h.system, `${path}.system`, { optional: true, max: 16384 })
      str(h.apiKey, `${path}.apiKey`, { optional: true })
      if (h.maxTokens != null && (!Number.isInteger(h.maxTokens) || (h.maxTokens as number) < 1)) throw new CapabilitySpecError(`${path}.maxTokens`, 'must be a positive integer')
      if (h.temperature != null && (typeof h.temperature !== 'number' || h.temperature < 0 || h.temperature > 2)) throw new CapabilitySpecError(`${path}.temperature`, 'must be a number in 0..2')
      break
    case 'mcp':
      str(h.tool, `${path}.tool`, { max: 128 })
      if ((h.command == null) === (h.url == null)) throw new CapabilitySpecError(path, 'must have exactly one of "command" (an MCP server started over stdio) or "url" (Streamable HTTP)')
      if (h.command != null) {
        if (!Array.isArray(h.command) || h.command.length === 0 || h.command.length > 256) throw new CapabilitySpecError(`${path}.command`, 'must be a non-empty array of strings (argv, no shell)')
        h.command.forEach((a, i) => { if (typeof a !== 'string' || (i === 0 && a.length === 0) || a.includes('\0')) throw new CapabilitySpecError(`${path}.command[${i}]`, 'must be a string without NUL') })
        str(h.cwd, `${path}.cwd`, { optional: true })
        stringMap(h.env, `${path}.env`)
      } else {
        httpUrl(h.url, `${path}.url`)
      }
      stringMap(h.headers, `${path}.headers`)
      break
    case 'a2a':
      httpUrl(h.url, `${path}.url`)
      str(h.skill, `${path}.skill`, { optional: true, max: 256 })
      stringMap(h.headers, `${path}.headers`)
      break
  }
  return h as unknown as HandlerSpec
}

/** Check the `capabilities` array of config.json; names must be unique */
export function validateCapabilitySpecs (list: unknown, path = 'capabilities'): CapabilitySpec[] {
  if (list == null) return []
  if (!Array.isArray(list)) throw new CapabilitySpecError(path, 'must be an array')
  const seen = new Set<string>()
  return list.map((spec, i) => {
    const s = validateCapabilitySpec(spec, `${path}[${i}]`)
    if (seen.has(s.name)) throw new CapabilitySpecError(`${path}[${i}].name`, `duplicates the capability "${s.name}"`)
    seen.add(s.name)
    return s
  })
}

export function limitsOf (h: HandlerLimits): Required<HandlerLimits> {
  return {
    timeoutMs: h.timeoutMs ?? DEFAULT_LIMITS.timeoutMs,
    maxInputBytes: h.maxInputBytes ?? DEFAULT_LIMITS.maxInputBytes,
    maxOutputBytes: h.maxOutputBytes ?? DEFAULT_LIMITS.maxOutputBytes,
    concurrency: h.concurrency ?? DEFAULT_LIMITS.concurrency
  }
}
