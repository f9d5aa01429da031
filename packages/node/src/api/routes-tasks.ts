import { MAX_MAP_INPUTS, TASK_STATES, isTerminal } from '@aistack/task'
import { fingerprintOf, parseIdempotencyKey } from './idempotency.js'
import { HttpError, withErrorStatus } from './server.js'
import type { IdempotencyStore } from './idempotency.js'
import { WaitingReasons } from '../task-waiting.js'
import type { ApiServer, RouteContext, RouteHandler } from './server.js'
import type { AgentNode } from '../node.js'
import type { SubmitRequest, TaskEvent, TaskInfo, TaskState } from '@aistack/task'
import type { ServerResponse } from 'node:http'

/** Task queue and event routes: /v1/tasks, /v1/tasks/:id, /v1/tasks/:id/events, /v1/events. */

const SUBMIT_FIELDS = ['capability', 'query', 'input', 'inputs', 'to', 'maxAttempts', 'leaseMs', 'deadlineMs', 'timeoutMs', 'requirements']
/** A server-sent events client that falls this far behind is disconnected */
const MAX_SSE_BUFFER_BYTES = 4 * 1024 * 1024
const SSE_KEEPALIVE_MS = 15_000
const DEFAULT_LIST_LIMIT = 100
const MAX_LIST_LIMIT = 10_000
/** Most server-sent event streams open at once; more get 503 */
export const MAX_SSE_STREAMS = 64
/** Longest `query` (as for `/v1/ask` and search) and `capability`, in characters */
const MAX_QUERY_LENGTH = 4096
const MAX_CAPABILITY_LENGTH = 256
/** A peer id in text is about 52 characters; anything much longer is not one */
const MAX_PEER_ID_LENGTH = 128
const MAX_REQUIREMENTS = 32
const MAX_REQUIREMENT_KEY_LENGTH = 128
const MAX_REQUIREMENT_VALUE_LENGTH = 1024

/** The task queue's named errors and the HTTP answers they get. */
const TASK_ERROR_STATUS: Record<string, { status: number, code: string }> = {
  InvalidTaskError: { status: 400, code: 'bad_request' },
  PayloadTooLargeError: { status: 413, code: 'too_large' },
  TaskNotFoundError: { status: 404, code: 'not_found' },
  InvalidTransitionError: { status: 409, code: 'conflict' },
  NotStartedError: { status: 503, code: 'unavailable' },
  NoCandidatesError: { status: 404, code: 'no_capable_peer' },
  BadIdempotencyKeyError: { status: 400, code: 'bad_request' },
  IdempotencyKeyInUseError: { status: 409, code: 'conflict' },
  IdempotencyKeyMismatchError: { status: 422, code: 'idempotency_key_reused' }
}

const mapped = (handler: RouteHandler): RouteHandler => withErrorStatus(handler, err => {
  const name = String((err as Error)?.name)
  return Object.hasOwn(TASK_ERROR_STATUS, name) ? TASK_ERROR_STATUS[name] : undefined
})

function bad (message: string): HttpError {
  return new HttpError(400, 'bad_request', message)
}

function isObject (x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x != null && !Array.isArray(x)
}

/** Checks the shape of a `POST /v1/tasks` body; ranges are checked by the task queue. */
export function parseSubmitBody (body: unknown): SubmitRequest {
  if (!isObject(body)) throw bad('body must be a JSON object')
  for (const key of Object.keys(body)) {
    if (!SUBMIT_FIELDS.includes(key)) throw bad(`body.${key} is not a known field (${SUBMIT_FIELDS.join(', ')})`)
  }
  for (const [key, max] of [['capability', MAX_CAPABILITY_LENGTH], ['query', MAX_QUERY_LENGTH], ['to', MAX_PEER_ID_LENGTH]] as const) {
    const v = body[key]
    if (v == null) continue
    if (typeof v !== 'string' || v.trim() === '') throw bad(`body.${key} must be a non-empty string`)
    if (v.length > max) throw bad(`body.${key} must be at most ${max} characters (it has ${v.length})`)
  }
  if (body.capability == null && body.query == null) throw bad('body.capability or body.query is required')
  if (body.capability != null && body.query != null) throw bad('give body.capability or body.query, not both')
  if ((body.input !== undefined) === (body.inputs !== undefined)) throw bad('give exactly one of body.input or body.inputs')
  if (body.inputs !== undefined && !Array.isArray(body.inputs)) throw bad('body.inputs must be an array (one input per child task)')
  if (Array.isArray(body.inputs) && body.inputs.length > MAX_MAP_INPUTS) throw bad(`body.inputs must have at most ${MAX_MAP_INPUTS} items (it has ${body.inputs.length})`)
  for (const key of ['maxAttempts', 'leaseMs', 'deadlineMs', 'timeoutMs'] as const) {
    if (body[key] != null && !Number.isInteger(body[key])) throw bad(`body.${key} must be an integer`)
  }
  if (body.requirements != null) {
    if (!isObject(body.requirements)) throw bad('body.requirements must be an object of strings')
    const entries = Object.entries(body.requirements)
    if (entries.length > MAX_REQUIREMENTS) throw bad(`body.requirements must have at most ${MAX_REQUIREMENTS} entries`)
    for (const [k, v] of entries) {
      if (k.length > MAX_REQUIREMENT_KEY_LENGTH) throw bad(`body.requirements keys must be at most ${MAX_REQUIREMENT_KEY_LENGTH} characters`)
      if (typeof v !== 'string') throw bad(`body.requirements.${k} must be a string`)
      if (v.length > MAX_REQUIREMENT_VALUE_LENGTH) throw bad(`body.requirements.${k} must be at most ${MAX_REQUIREMENT_VALUE_LENGTH} characters`)
    }
  }
  const req: SubmitRequest = {}
  for (const key of SUBMIT_FIELDS) {
    if (body[key] !== undefined && body[key] !== null) (req as any)[key] = body[key]
  }
  if (body.input === null) req.input = null
  return req
}

/** A task as the API shows it: `worker`, `result` and `error` are always present (null when unset). */
export function taskView (info: TaskInfo): Record<string, unknown> {
  return { ...info, worker: info.worker ?? null, result: info.result ?? null, error: info.error ?? null }
}

function parseListQuery (query: URLSearchParams): { state?: TaskState, parent?: string, limit: number } {
  const state = query.get('state') ?? undefined
  if (state != null && !(TASK_STATES as readonly string[]).includes(state)) throw bad(`state must be one of ${TASK_STATES.join(', ')}`)
  const rawLimit = query.get('limit')
  const limit = rawLimit == null ? DEFAULT_LIST_LIMIT : Number(rawLimit)
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw bad(`limit must be an integer in 1..${MAX_LIST_LIMIT}`)
  const parent = query.get('parent') ?? undefined
  if (parent === '') throw bad('parent must be a task id')
  return { state: state as TaskState | undefined, parent, limit }
}

/** A server-sent events stream on a response; closes itself if the client stops reading. */
export class SseStream {
  private readonly res: ServerResponse
  private readonly keepalive: ReturnType<typeof setInterval>
  readonly closed: Promise<void>
  readonly controller = new AbortController()
  private seq = 0
  private corked = false

  constructor (ctx: RouteContext) {
    this.res = ctx.res
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no'
    })
    this.res.write(': aistack events\n\n')
    this.keepalive = setInterval(() => { this.res.write(': keep-alive\n\n') }, SSE_KEEPALIVE_MS)
    this.keepalive.unref?.()
    const { promise, resolve } = Promise.withResolvers<void>()
    this.closed = promise
    const onClose = (): void => {
      clearInterval(this.keepalive)
      this.controller.abort()
      resolve()
    }
    // the response closes when the client goes away (or after end())
    this.res.once('close', onClose)
  }

  get aborted (): boolean {
    return this.controller.signal.aborted
  }

  send (event: string, data: unknown): void {
    if (this.aborted) return
    if (this.res.writableLength > MAX_SSE_BUFFER_BYTES) {
      this.res.write(`event: overflow\ndata: ${JSON.stringify({ message: 'the client fell too far behind; reconnect' })}\n\n`)
      this.end()
      return
    }
    if (!this.corked) {
      // events sent in the same turn leave in one write
      this.corked = true
      this.res.cork()
      process.nextTick(() => { this.uncork() })
    }
    this.res.write(`id: ${++this.seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  }

  private uncork (): void {
    if (this.corked) {
      this.corked = false
      this.res.uncork()
    }
  }

  end (): void {
    clearInterval(this.keepalive)
    this.controller.abort()
    // what is held back goes before the end of the stream
    this.uncork()
    this.res.end()
  }
}

/** Streams `events` until the stream ends or `until` says the last one was sent. */
async function pump (sse: SseStream, events: AsyncGenerator<TaskEvent>, until?: (e: TaskEvent) => boolean): Promise<void> {
  try {
    for await (const event of events) {
      sse.send(event.type, event)
      if (until?.(event) === true) break
    }
  } finally {
    sse.end()
  }
}

export interface TaskRoutesInit {
  node: AgentNode
  /** Remembers `Idempotency-Key`s of `POST /v1/tasks`; without it the header is refused */
  idempotency?: IdempotencyStore
}

export function taskRoutes (api: ApiServer, { node, idempotency }: TaskRoutesInit): void {
  const tasks = (): AgentNode['libp2p']['services']['tasks'] => node.libp2p.services.tasks
  let sseStreams = 0
  /** Opens a server-sent events stream, or answers 503 when there are too many */
  const openSse = (ctx: RouteContext): SseStream => {
    if (sseStreams >= MAX_SSE_STREAMS) {
      ctx.res.setHeader('retry-after', '5')
      throw new HttpError(503, 'busy', `${MAX_SSE_STREAMS} event streams are open already; close one or retry later`)
    }
    const sse = new SseStream(ctx)
    sseStreams++
    sse.closed.then(() => { sseStreams-- }, () => {})
    return sse
  }

  /** Submits inside a root `task.submit` span: the worker's spans join its trace (docs/protocols/telemetry.md) */
  const submit = async (req: SubmitRequest): Promise<{ id: string, state: TaskState, traceId: string }> => {
    const span = node.libp2p.services.telemetry.tracing.root('task.submit', {
      ...(req.capability != null ? { 'aistack.capability': req.capability } : {}),
      ...(req.query != null ? { 'aistack.query': req.query.slice(0, 256) } : {}),
      'aistack.inputs': req.inputs?.length ?? 1
    })
    try {
      const { id, state } = await submitUntraced({ ...req, traceparent: span.traceparent })
      span.setAttributes({ 'aistack.task': id, ...(req.capability != null ? { 'aistack.capability': req.capability } : {}) })
      span.end()
      return { id, state, traceId: span.traceId }
    } catch (err: any) {
      span.end(`${String(err?.name ?? 'Error')}: ${String(err?.message ?? err)}`)
      throw err
    }
  }

  const submitUntraced = async (req: SubmitRequest): Promise<{ id: string, state: TaskState }> => {
    if (req.query != null) {
      // resolved by meaning now; any peer serving the capability (or the one named by `to`) may then run it
      const to = typeof req.to === 'string' ? req.to : undefined
      const candidates = await node.libp2p.services.anycast.find(req.query, { k: to != null ? 20 : 1, signal: AbortSignal.timeout(30_000) })
      const best = to != null ? candidates.find(c => c.peerId === to) : candidates[0]
      if (best == null) throw new HttpError(404, 'no_capable_peer', `no capability${to != null ? ` of peer ${to}` : ''} is near enough in meaning to the query "${req.query.slice(0, 80)}"`)
      req.capability = best.name
    }
    return await tasks().submit(req)
  }

  api.route('POST', '/v1/tasks', mapped(async ({ req: httpReq, res, json }) => {
    const key = parseIdempotencyKey(httpReq.headers['idempotency-key'])
    const body = await json()
    const req = parseSubmitBody(body)
    if (key == null) {
      const { id, state, traceId } = await submit(req)
      return { status: 202, body: { id, state, traceId } }
    }
    if (idempotency == null) throw new HttpError(400, 'bad_request', 'this API does not take Idempotency-Key')
    const fingerprint = fingerprintOf(body)
    const known = await idempotency.begin(key, fingerprint)
    if (known != null) {
      // a retry: the task of the first request, as it is now
      res.setHeader('idempotent-replayed', 'true')
      let state: TaskState | null = null
      let traceId: string | undefined
      try { ({ state, traceId } = tasks().get(known.taskId)) } catch {}
      return { status: 200, body: { id: known.taskId, state, traceId } }
    }
    let created: { id: string, state: TaskState, traceId: string }
    try {
      created = await submit(req)
    } catch (err) {
      idempotency.release(key)
      throw err
    }
    await idempotency.commit(key, fingerprint, created.id)
    return { status: 202, body: { id: created.id, state: created.state, traceId: created.traceId } }
  }))

  api.route('GET', '/v1/tasks', mapped(({ query }) => {
    const { state, parent, limit } = parseListQuery(query)
    // top-level tasks unless the children of one map task are asked for
    const list = tasks().list({ state, parent }).filter(t => parent != null || t.parent == null)
    return { body: { tasks: list.slice(-limit).map(taskView), total: list.length } }
  }))

  // a task id may be shortened to a unique prefix (at least 4 characters), like a git hash
  const resolve = (id: string): string => {
    if (id.length < 4 || id.length >= 36) return id
    try {
      return tasks().get(id).id
    } catch {}
    // the children of a map task (`<id>.<n>`) share its prefix: a prefix names the top-level task
    const all = tasks().list().filter(t => t.id.startsWith(id))
    const top = all.filter(t => t.parent == null)
    const matches = top.length > 0 ? top : all
    if (matches.length > 1) throw new HttpError(400, 'ambiguous_id', `${matches.length} tasks start with ${id}: ${matches.slice(0, 5).map(t => t.id).join(', ')}${matches.length > 5 ? ', ...' : ''}; give more of the id`)
    return matches[0]?.id ?? id
  }

  // a task that waits for a worker says why (`waiting`)
  const waiting = new WaitingReasons(node.capabilities, () => node.libp2p.services.anycast)
  api.route('GET', '/v1/tasks/:id', mapped(async ({ params }) => {
    const task = tasks().get(resolve(params.id))
    const reason = await waiting.reason(task)
    return { body: { ...taskView(task), ...(reason != null ? { waiting: reason } : {}) } }
  }))

  api.route('DELETE', '/v1/tasks/:id', mapped(async ({ params }) => {
    const id = resolve(params.id)
    const before = tasks().get(id)
    if (before.state === 'completed' || before.state === 'dead') {
      throw new HttpError(409, 'conflict', `task ${id} has already ended (${before.state})`)
    }
    return { body: taskView(await tasks().cancel(id, 'canceled through the API')) }
  }))

  // the task's events; the stream starts with the task as it is and ends after its last event
  api.route('GET', '/v1/tasks/:id/events', mapped((ctx) => {
    const id = resolve(ctx.params.id)
    const first = tasks().get(id)
    const sse = openSse(ctx)
    // subscribe before the snapshot so no event falls between the two
    const events = tasks().events({ taskId: id, signal: sse.controller.signal })
    const started = events.next()
    sse.send('task', taskView(tasks().get(id)))
    if (isTerminal(first.state) || isTerminal(tasks().get(id).state)) {
      sse.end()
      events.return(undefined).catch(() => {})
      return undefined
    }
    const ends = (e: TaskEvent): boolean => e.taskId === id && e.state != null && isTerminal(e.state)
    ;(async () => {
      const head = await started
      if (head.done === true) {
        sse.end()
        return
      }
      sse.send(head.value.type, head.value)
      if (ends(head.value)) {
        sse.end()
        events.return(undefined).catch(() => {})
        return
      }
      await pump(sse, events, ends)
    })().catch(() => { sse.end() })
    return undefined
  }))

  // every lifecycle event this node sees (its own and those published by other nodes)
  api.route('GET', '/v1/events', mapped((ctx) => {
    const types = ctx.query.getAll('type').flatMap(t => t.split(',')).filter(Boolean)
    if (types.length > 64) throw bad('give at most 64 event types')
    const sse = openSse(ctx)
    const events = tasks().events({ signal: sse.controller.signal })
    // this node's telemetry alerts join the stream as `telemetry.alert` events
    const onAlert = (evt: CustomEvent<{ type: string }>): void => {
      if (types.length === 0 || types.some(t => evt.detail.type === t || evt.detail.type.startsWith(`${t}.`))) sse.send(evt.detail.type, evt.detail)
    }
    node.libp2p.services.telemetry.addEventListener('alert', onAlert)
    sse.controller.signal.addEventListener('abort', () => { node.libp2p.services.telemetry.removeEventListener('alert', onAlert) }, { once: true })
    ;(async () => {
      for await (const event of events) {
        if (types.length > 0 && !types.some(t => event.type === t || event.type.startsWith(`${t}.`))) continue
        sse.send(event.type, event)
      }
    })().catch(() => {}).finally(() => { sse.end() })
    return undefined
  }))
}
