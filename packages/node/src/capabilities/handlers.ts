import { StringDecoder } from 'node:string_decoder'
import { HandlerError, HandlerInputError, HandlerTimeoutError, OutputTooLargeError } from './errors.js'
import { ProcessGroup } from './process-group.js'
import { a2aHandler, mcpHandler } from './remote.js'
import type { HandlerSpec } from './spec.js'
import type { Embedder } from '@aistack/embeddings'

/**
 * A handler runs one request: JSON value in, JSON value out, or the output in
 * pieces as an async iterable (string pieces join into one string when the
 * caller wants the whole output). `stream` is true when the caller takes
 * pieces (`POST /v1/ask` with `"stream": true`).
 */
export type HandlerFn = (input: unknown, options: { signal: AbortSignal, stream?: boolean }) => Promise<unknown> | AsyncIterable<unknown>

export interface HandlerContext {
  /** capability name, sent to http handlers */
  name: string
  /** the node's embedder, used by the builtin `embed` */
  embedder?: Embedder
  /** output limit, enforced while reading */
  maxOutputBytes: number
}

/** How long an exec handler's pipes may stay open after the command has exited, in ms */
const PIPE_GRACE_MS = 10_000

/** Variables an exec handler inherits; everything else is dropped */
const KEPT_ENV = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'SYSTEMROOT']

function inputText (input: unknown): string {
  return typeof input === 'string' ? input : JSON.stringify(input ?? null)
}

function reasonOf (signal: AbortSignal): Error {
  const r = signal.reason
  if (r instanceof Error && r.name === 'TimeoutError') return new HandlerTimeoutError('handler timed out')
  return r instanceof Error ? r : new HandlerError('aborted')
}

/** Split text into chunks of about `size` characters, at whitespace when possible */
export function chunkText (text: string, size = 1000, overlap = 0): string[] {
  if (!Number.isInteger(size) || size < 1) throw new HandlerInputError('size must be a positive integer')
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= size) throw new HandlerInputError('overlap must be an integer in 0..size-1')
  const out: string[] = []
  let start = 0
  while (start < text.length) {
    let end = Math.min(text.length, start + size)
    if (end < text.length) {
      const ws = text.lastIndexOf(' ', end)
      if (ws > start + size / 2) end = ws
    }
    const piece = text.slice(start, end).trim()
    if (piece.length > 0) out.push(piece)
    if (end >= text.length) break
    start = Math.max(start + 1, end - overlap)
  }
  return out
}

function builtin (spec: Extract<HandlerSpec, { type: 'builtin' }>, ctx: HandlerContext): HandlerFn {
  switch (spec.name) {
    case 'echo':
      return async (input) => input
    case 'chunk':
      return async (input) => {
        const o = typeof input === 'string' ? { text: input } : input as Record<string, unknown>
        if (o == null || typeof o !== 'object' || typeof o.text !== 'string') throw new HandlerInputError('chunk input must be a string or {"text", "size"?, "overlap"?}')
        return chunkText(o.text, (o.size as number | undefined) ?? 1000, (o.overlap as number | undefined) ?? 0)
      }
    case 'embed':
      return async (input, { signal }) => {
        if (ctx.embedder == null) throw new HandlerError('no embedder configured')
        const texts = typeof input === 'string' ? [input] : Array.isArray(input) ? input : (input as any)?.texts
        if (!Array.isArray(texts) || texts.length === 0 || texts.length > 256 || !texts.every(t => typeof t === 'string')) {
          throw new HandlerInputError('embed input must be a string, an array of 1-256 strings or {"texts": [...]}')
        }
        const vectors = await ctx.embedder.embed(texts, { signal })
        return { model: ctx.embedder.id, dim: ctx.embedder.dim, vectors: vectors.map(v => Array.from(v, x => Math.round(x * 1e6) / 1e6)) }
      }
  }
}

/**
 * Runs an exec handler's command with `stdin` as its input; resolves with its
 * stdout. `onChunk` sees stdout as it comes (for streamed answers).
 */
async function runCommand (spec: Extract<HandlerSpec, { type: 'exec' }>, stdin: string, signal: AbortSignal, maxOutputBytes: number, onChunk?: (chunk: string) => void): Promise<string> {
  signal.throwIfAborted()
  const env: Record<string, string> = {}
  for (const k of KEPT_ENV) if (process.env[k] != null) env[k] = process.env[k] as string
  Object.assign(env, spec.env)
  // a group of its own: a timeout, a cancel or the node's stop ends every process the command started
  const group = new ProcessGroup(spec.command[0], spec.command.slice(1), {
    cwd: spec.cwd,
    env,
    shell: false,
    windowsHide: true
  })
  const child = group.child
  return await new Promise<string>((resolve, reject) => {
    const out: Buffer[] = []
    const text = new StringDecoder('utf8')
    let outBytes = 0
    let err = ''
    let failure: Error | undefined
    let pipesTimer: ReturnType<typeof setTimeout> | undefined
    const kill = (e: Error): void => {
      failure ??= e
      group.kill().catch(() => {})
    }
    const onAbort = (): void => { kill(reasonOf(signal)) }
    signal.addEventListener('abort', onAbort, { once: true })
    child.stdout.on('data', (b: Buffer) => {
      outBytes += b.byteLength
      if (outBytes > maxOutputBytes) kill(new OutputTooLargeError(`output is larger than ${maxOutputBytes} bytes`))
      else {
        out.push(b)
        if (onChunk != null) {
          const chunk = text.write(b)
          if (chunk !== '') onChunk(chunk)
        }
      }
    })
    child.stderr.on('data', (b: Buffer) => { if (err.length < 4096) err += b.toString('utf8') })
    child.on('error', e => { failure ??= new HandlerError(`cannot run ${spec.command[0]}: ${e.message}`) })
    child.once('exit', () => {
      // the group is ended with its leader; a process that left the group may still hold the
      // pipes open: it is not waited for past PIPE_GRACE_MS, and the run fails (its output may be cut)
      pipesTimer = setTimeout(() => {
        failure ??= new HandlerError(`a process started by ${spec.command[0]} kept its output open after it exited`)
        child.stdout.destroy()
        child.stderr.destroy()
      }, PIPE_GRACE_MS)
      pipesTimer.unref?.()
    })
    child.on('close', (code, sig) => {
      clearTimeout(pipesTimer)
      signal.removeEventListener('abort', onAbort)
      if (failure != null) reject(failure)
      else if (code !== 0) reject(new HandlerError(`${spec.command[0]} exited with ${code ?? sig}: ${err.trim().slice(-1024)}`))
      else resolve(Buffer.concat(out).toString('utf8'))
    })
    child.stdin.on('error', () => {}) // the command may exit without reading its input
    child.stdin.end(stdin)
  })
}

function exec (spec: Extract<HandlerSpec, { type: 'exec' }>, ctx: HandlerContext): HandlerFn {
  return (input, { signal, stream }) => {
    if (stream === true) return execStream(spec, inputText(input), signal, ctx.maxOutputBytes)
    return runCommand(spec, inputText(input), signal, ctx.maxOutputBytes)
  }
}

/** stdout chunks as the command writes them */
async function * execStream (spec: Extract<HandlerSpec, { type: 'exec' }>, stdin: string, signal: AbortSignal, max: number): AsyncGenerator<string> {
  const chunks: string[] = []
  let wake: (() => void) | undefined
  let finished = false
  let failure: unknown
  runCommand(spec, stdin, signal, max, chunk => { chunks.push(chunk); wake?.() })
    .catch(err => { failure = err })
    .finally(() => { finished = true; wake?.() })
  for (;;) {
    if (chunks.length > 0) {
      yield chunks.shift() as string
      continue
    }
    if (finished) {
      if (failure != null) throw failure
      return
    }
    await new Promise<void>(resolve => { wake = resolve })
    wake = undefined
  }
}

/**
 * An exec handler with `batch: true` runs once per batch: one JSON line per
 * input on stdin, one JSON line per output on stdout, in order; a line
 * `{"error": "..."}` fails its input alone.
 */
function execBatch (spec: Extract<HandlerSpec, { type: 'exec' }>, ctx: HandlerContext): (inputs: unknown[], options: { signal: AbortSignal }) => Promise<unknown[]> {
  return async (inputs, { signal }) => {
    const stdout = await runCommand(spec, inputs.map(i => JSON.stringify(i ?? null)).join('\n') + '\n', signal, ctx.maxOutputBytes)
    const lines = stdout.split('\n').filter(l => l.trim() !== '')
    if (lines.length !== inputs.length) throw new HandlerError(`${spec.command[0]} answered ${lines.length} lines for ${inputs.length} inputs (batch: one JSON line per input)`)
    return lines.map(line => {
      let value: any
      try {
        value = JSON.parse(line)
      } catch {
        return new HandlerError(`${spec.command[0]} wrote a line that is not JSON`)
      }
      const keys = value != null && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value) : []
      if (keys.length === 1 && keys[0] === 'error' && typeof value.error === 'string') return new HandlerError(value.error)
      return value
    })
  }
}

/** Read a response body up to `max` bytes */
async function readBody (res: Response, max: number): Promise<string> {
  if (res.body == null) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let n = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    n += value.byteLength
    if (n > max) {
      await reader.cancel().catch(() => {})
      throw new OutputTooLargeError(`response is larger than ${max} bytes`)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** Why a fetch failed, with the cause undici hides behind "fetch failed" (ECONNREFUSED, ENOTFOUND, …) */
function fetchFailure (e: any): string {
  const cause = e?.cause
  const detail = cause?.code ?? cause?.message
  return detail != null ? `${String(e?.message ?? e)} (${String(detail)}${cause?.address != null ? ` ${String(cause.address)}:${String(cause.port ?? '')}` : ''})` : String(e?.message ?? e)
}

async function post (url: string, body: unknown, headers: Record<string, string>, signal: AbortSignal, max: number): Promise<{ res: Response, text: string }> {
  let res: Response
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal })
  } catch (e: any) {
    if (signal.aborted) throw reasonOf(signal)
    throw new HandlerError(`POST ${url} failed: ${fetchFailure(e)}`)
  }
  let text: string
  try {
    text = await readBody(res, max)
  } catch (e: any) {
    if (signal.aborted) throw reasonOf(signal)
    throw e
  }
  if (!res.ok) throw new HandlerError(`POST ${url} answered ${res.status}: ${text.slice(0, 300)}`)
  return { res, text }
}

function http (spec: Extract<HandlerSpec, { type: 'http' }>, ctx: HandlerContext): HandlerFn {
  return async (input, { signal }) => {
    const { res, text } = await post(spec.url, { capability: ctx.name, input }, spec.headers ?? {}, signal, ctx.maxOutputBytes)
    if ((res.headers.get('content-type') ?? '').includes('json')) {
      try {
        return JSON.parse(text)
      } catch {
        throw new HandlerError(`${spec.url} sent invalid JSON`)
      }
    }
    return text
  }
}

/** Texts of one `openai` embeddings input: a string or an array of 1-256 strings */
function embeddingTexts (input: unknown): string[] {
  const texts = typeof input === 'string' ? [input] : input
  if (!Array.isArray(texts) || texts.length === 0 || texts.length > 256 || !texts.every(t => typeof t === 'string')) {
    throw new HandlerInputError('embeddings input must be a string or an array of 1-256 strings')
  }
  return texts
}

/** Most texts in one upstream embeddings call (OpenAI's limit per request is 2,048) */
export const MAX_EMBEDDINGS_PER_CALL = 2048
/** Largest upstream embeddings response of a batch call */
export const MAX_EMBEDDINGS_RESPONSE_BYTES = 64 * 1024 * 1024

/**
 * One POST `<baseUrl>/embeddings` `{model, input: texts}` (the OpenAI
 * embeddings API); the vectors in the order of `texts`, by each item's `index`.
 */
async function embeddingsCall (spec: Extract<HandlerSpec, { type: 'openai' }>, texts: string[], signal: AbortSignal, max: number): Promise<{ model: string, vectors: number[][] }> {
  const url = spec.baseUrl.replace(/\/+$/, '') + '/embeddings'
  const headers: Record<string, string> = spec.apiKey != null ? { authorization: `Bearer ${spec.apiKey}` } : {}
  const { text } = await post(url, { model: spec.model, input: texts }, headers, signal, max)
  let json: any
  try {
    json = JSON.parse(text)
  } catch {
    throw new HandlerError('embeddings response is not JSON')
  }
  const data = json?.data
  if (!Array.isArray(data) || data.length !== texts.length) throw new HandlerError(`embeddings response has ${Array.isArray(data) ? data.length : 'no'} vectors for ${texts.length} texts`)
  const vectors: number[][] = new Array(texts.length)
  data.forEach((d: any, i: number) => {
    const at = Number.isInteger(d?.index) ? d.index : i
    if (at < 0 || at >= texts.length || !Array.isArray(d?.embedding) || !d.embedding.every((x: unknown) => typeof x === 'number')) throw new HandlerError('embeddings response has a bad data item')
    vectors[at] = d.embedding
  })
  if (vectors.some(v => v == null)) throw new HandlerError('embeddings response repeats an index')
  return { model: typeof json.model === 'string' ? json.model : spec.model, vectors }
}

/** The openai handler on the embeddings endpoint: `{model, dim, vectors}` as the builtin embed answers */
function openaiEmbeddings (spec: Extract<HandlerSpec, { type: 'openai' }>, ctx: HandlerContext): HandlerFn {
  return async (input, { signal }) => {
    const { model, vectors } = await embeddingsCall(spec, embeddingTexts(input), signal, ctx.maxOutputBytes)
    return { model, dim: vectors[0]?.length ?? 0, vectors }
  }
}

/**
 * The batch form of the openai embeddings handler: the texts of all inputs
 * in one upstream call (up to 2,048 texts a call), each input answered as
 * on its own; an input that is not a string or array of strings fails alone.
 */
function openaiEmbeddingsBatch (spec: Extract<HandlerSpec, { type: 'openai' }>, ctx: HandlerContext): (inputs: unknown[], options: { signal: AbortSignal }) => Promise<unknown[]> {
  return async (inputs, { signal }) => {
    const out: unknown[] = new Array(inputs.length)
    const spans: Array<{ at: number, texts: string[] }> = []
    inputs.forEach((input, at) => {
      try {
        spans.push({ at, texts: embeddingTexts(input) })
      } catch (err) {
        out[at] = err
      }
    })
    // calls of at most MAX_EMBEDDINGS_PER_CALL texts, an input never split
    let i = 0
    while (i < spans.length) {
      const group: typeof spans = []
      let n = 0
      while (i < spans.length && (group.length === 0 || n + spans[i].texts.length <= MAX_EMBEDDINGS_PER_CALL)) {
        n += spans[i].texts.length
        group.push(spans[i++])
      }
      try {
        // each input's answer is bounded on its own by the registry; the call's by all of them
        const { model, vectors } = await embeddingsCall(spec, group.flatMap(s => s.texts), signal, Math.min(ctx.maxOutputBytes * group.length, MAX_EMBEDDINGS_RESPONSE_BYTES))
        let k = 0
        for (const s of group) {
          const mine = vectors.slice(k, k + s.texts.length)
          k += s.texts.length
          out[s.at] = { model, dim: mine[0]?.length ?? 0, vectors: mine }
        }
      } catch (err) {
        if (signal.aborted) throw err
        for (const s of group) out[s.at] = err
      }
    }
    return out
  }
}

function openai (spec: Extract<HandlerSpec, { type: 'openai' }>, ctx: HandlerContext): HandlerFn {
  if (spec.endpoint === 'embeddings') return openaiEmbeddings(spec, ctx)
  const url = spec.baseUrl.replace(/\/+$/, '') + '/chat/completions'
  return (input, { signal, stream }) => {
    const messages: Array<{ role: string, content: string }> = []
    if (spec.system != null) messages.push({ role: 'system', content: spec.system })
    messages.push({ role: 'user', content: inputText(input) })
    const body: Record<string, unknown> = { model: spec.model, messages }
    if (spec.maxTokens != null) body.max_tokens = spec.maxTokens
    if (spec.temperature != null) body.temperature = spec.temperature
    const headers: Record<string, string> = spec.apiKey != null ? { authorization: `Bearer ${spec.apiKey}` } : {}
    if (stream === true) return streamChat(url, { ...body, stream: true }, headers, signal, ctx.maxOutputBytes)
    return wholeChat(url, body, headers, signal, ctx.maxOutputBytes)
  }
}

/**
 * A streamed chat completion: the `content` of each `data:` event's
 * `choices[0].delta`, as it arrives, until `data: [DONE]` (the OpenAI
 * streaming format, server-sent events).
 */
async function * streamChat (url: string, body: unknown, headers: Record<string, string>, signal: AbortSignal, max: number): AsyncGenerator<string> {
  let res: Response
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers }, body: JSON.stringify(body), signal })
  } catch (e: any) {
    if (signal.aborted) throw reasonOf(signal)
    throw new HandlerError(`POST ${url} failed: ${fetchFailure(e)}`)
  }
  if (!res.ok || res.body == null) throw new HandlerError(`POST ${url} answered ${res.status}: ${(await res.text().catch(() => '')).slice(0, 300)}`)
  const reader = res.body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  let total = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      total += value.byteLength
      if (total > max) throw new OutputTooLargeError(`response is larger than ${max} bytes`)
      buffer += decoder.decode(value, { stream: true })
      let nl: number
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim()
        buffer = buffer.slice(nl + 1)
        if (!line.startsWith('data:')) continue
        const data = line.slice(5).trim()
        if (data === '[DONE]') return
        let json: any
        try {
          json = JSON.parse(data)
        } catch {
          throw new HandlerError('chat completions stream sent an event that is not JSON')
        }
        const piece = json?.choices?.[0]?.delta?.content
        if (typeof piece === 'string' && piece.length > 0) yield piece
      }
    }
  } catch (e: any) {
    if (signal.aborted) throw reasonOf(signal)
    throw e
  } finally {
    await reader.cancel().catch(() => {})
  }
}

async function wholeChat (url: string, body: unknown, headers: Record<string, string>, signal: AbortSignal, max: number): Promise<string> {
  const { text } = await post(url, body, headers, signal, max)
  let json: any
  try {
    json = JSON.parse(text)
  } catch {
    throw new HandlerError('chat completions response is not JSON')
  }
  const content = json?.choices?.[0]?.message?.content
  if (typeof content !== 'string') throw new HandlerError('chat completions response has no choices[0].message.content')
  return content
}

/**
 * The batch form of a handler, where it has one: the builtin `embed` takes
 * many string inputs in one embedder call (each answered as a single-text
 * embed would be); an exec handler with `batch: true` takes JSON lines; the
 * openai handler on its embeddings endpoint sends the texts of all inputs in
 * one upstream call.
 * Undefined for the others.
 */
export function createBatchHandler (spec: HandlerSpec, ctx: HandlerContext): ((inputs: unknown[], options: { signal: AbortSignal }) => Promise<unknown[]>) | undefined {
  if (spec.type === 'exec' && spec.batch === true) return execBatch(spec, ctx)
  if (spec.type === 'openai' && spec.endpoint === 'embeddings') return openaiEmbeddingsBatch(spec, ctx)
  if (spec.type !== 'builtin' || spec.name !== 'embed') return undefined
  const one = builtin(spec, ctx) as (input: unknown, options: { signal: AbortSignal }) => Promise<unknown>
  return async (inputs, { signal }) => {
    const embedder = ctx.embedder
    if (embedder == null) return inputs.map(() => new HandlerError('no embedder configured'))
    const texts = inputs.filter((i): i is string => typeof i === 'string')
    const vectors = texts.length > 0 ? await embedder.embed(texts, { signal }) : []
    let k = 0
    return Promise.all(inputs.map(async input => {
      if (typeof input !== 'string') return one(input, { signal }).catch((err: Error) => err)
      const v = vectors[k++]
      return { model: embedder.id, dim: embedder.dim, vectors: [Array.from(v, x => Math.round(x * 1e6) / 1e6)] }
    }))
  }
}

/** Build the function that runs a handler spec */
export function createHandler (spec: HandlerSpec, ctx: HandlerContext): HandlerFn {
  switch (spec.type) {
    case 'builtin': return builtin(spec, ctx)
    case 'exec': return exec(spec, ctx)
    case 'http': return http(spec, ctx)
    case 'openai': return openai(spec, ctx)
    case 'mcp': return mcpHandler(spec)
    case 'a2a': return a2aHandler(spec)
  }
}
