/**
 * What the gateways (MCP, A2A) need of a node, over the node's own HTTP API (docs/api.md). The
 * gateways speak only this documented contract, so the stdio MCP server (another process) and
 * the in-process `/mcp` and `/a2a` endpoints share one implementation.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { callApi } from '../cli/client.js'
import type { RunInfo } from '../run-file.js'

/** A capability as the gateways show it: one served by this node or known on the network. */
export interface KnownCapability {
  name: string
  description: string
  tags: string[]
  examples: string[]
  /** owners serving it (peer ids); empty when unknown */
  owners: string[]
  /** JSON Schema of the input, when the capability declares one */
  inputSchema?: Record<string, unknown>
}

/** `POST /v1/ask`'s answer */
export interface AskAnswer {
  output: unknown
  peerId: string
  capability: string
  similarity: number
  attempts: number
  latencyMs: number
}

/** `GET /v1/capabilities/search`'s results */
export interface SearchResult {
  peerId: string
  name: string
  description: string
  similarity: number
  score: number
}

/** A task as `GET /v1/tasks/:id` shows it (the fields the gateways read) */
export interface TaskView {
  id: string
  state: 'submitted' | 'assigned' | 'running' | 'completed' | 'failed' | 'dead' | 'canceled'
  capability?: string
  result: unknown
  error: unknown
  worker: string | null
  progress?: number
  createdAt?: number
  updatedAt?: number
  [key: string]: unknown
}

/** The submission body of `POST /v1/tasks` the gateways use */
export interface TaskSubmission {
  capability?: string
  query?: string
  input: unknown
  timeoutMs?: number
}

/** States after which a task never changes again */
export const FINAL_TASK_STATES: ReadonlySet<string> = new Set(['completed', 'dead', 'canceled'])

/** The node's API as the gateways call it; every method throws ApiError on an API error. */
export interface NodeApi {
  search: (query: string, k: number) => Promise<SearchResult[]>
  ask: (query: string, input: unknown, timeoutMs?: number) => Promise<AskAnswer>
  submitTask: (task: TaskSubmission) => Promise<{ id: string }>
  getTask: (id: string) => Promise<TaskView>
  cancelTask: (id: string) => Promise<TaskView>
  listTasks: (limit: number) => Promise<TaskView[]>
  /** this node's capabilities and those it knows on the network, one entry per name */
  capabilities: () => Promise<KnownCapability[]>
  /** the node's peer id */
  peerId: () => Promise<string>
}

/**
 * A NodeApi over HTTP to the node described by `info` (run.json's `api.url` and `api.token`), or
 * by what `info()` returns at each call (for an API that learns its address when it listens).
 */
export function httpNodeApi (info: Pick<RunInfo, 'api'> | (() => Pick<RunInfo, 'api'>)): NodeApi {
  const current = typeof info === 'function' ? info : () => info
  const call = async (method: string, path: string, body?: unknown, timeoutMs?: number): Promise<any> =>
    await callApi(current() as RunInfo, method, path, body, timeoutMs != null ? { timeoutMs } : undefined)
  let peerId: string | undefined
  return {
    search: async (query, k) => (await call('GET', `/v1/capabilities/search?q=${encodeURIComponent(query)}&k=${k}`)).results,
    // the HTTP wait outlives the ask's own timeout by a margin, so the node's answer arrives
    ask: async (query, input, timeoutMs) => await call('POST', '/v1/ask', { query, input, ...(timeoutMs != null ? { timeoutMs } : {}) }, (timeoutMs ?? 30_000) + 5_000),
    submitTask: async (task) => await call('POST', '/v1/tasks', task),
    getTask: async (id) => await call('GET', `/v1/tasks/${encodeURIComponent(id)}`),
    cancelTask: async (id) => await call('DELETE', `/v1/tasks/${encodeURIComponent(id)}`),
    listTasks: async (limit) => (await call('GET', `/v1/tasks?limit=${limit}`)).tasks,
    capabilities: async () => {
      const [local, network] = await Promise.all([
        call('GET', '/v1/capabilities'),
        call('GET', '/v1/capabilities/network').catch(() => ({ capabilities: [] }))
      ])
      return mergeCapabilities(local.capabilities ?? [], network.capabilities ?? [])
    },
    peerId: async () => {
      peerId ??= (await call('GET', '/v1/id')).peerId as string
      return peerId
    }
  }
}

/**
 * One entry per capability name: this node's own (`GET /v1/capabilities`, which carry an
 * `inputSchema` when declared) first, then the network's (`GET /v1/capabilities/network`).
 */
export function mergeCapabilities (local: any[], network: any[]): KnownCapability[] {
  const byName = new Map<string, KnownCapability>()
  for (const c of [...local, ...network]) {
    if (typeof c?.name !== 'string') continue
    const held = byName.get(c.name)
    const owners = typeof c.peerId === 'string' ? [c.peerId] : Array.isArray(c.owners) ? c.owners.filter((o: unknown) => typeof o === 'string') : []
    if (held != null) {
      for (const o of owners) if (!held.owners.includes(o)) held.owners.push(o)
      continue
    }
    byName.set(c.name, {
      name: c.name,
      description: String(c.description ?? ''),
      tags: Array.isArray(c.tags) ? c.tags : [],
      examples: Array.isArray(c.examples) ? c.examples : [],
      owners,
      ...(isObject(c.inputSchema) ? { inputSchema: c.inputSchema } : {})
    })
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name))
}

function isObject (x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x != null && !Array.isArray(x)
}

export interface WaitOptions {
  /** give up after this long, ms (default 5 minutes) */
  timeoutMs?: number
  signal?: AbortSignal
  /** called with each new state */
  onState?: (task: TaskView) => void
}

/**
 * Polls a task until it reaches a final state (completed, dead, canceled) and returns it;
 * returns the last view seen when `timeoutMs` passes first. Polls at 50 ms, doubling to 1 s.
 */
export async function waitForTask (api: NodeApi, id: string, options: WaitOptions = {}): Promise<TaskView> {
  const deadline = Date.now() + (options.timeoutMs ?? 300_000)
  let wait = 50
  let last = ''
  for (;;) {
    const task = await api.getTask(id)
    if (task.state !== last) {
      last = task.state
      options.onState?.(task)
    }
    if (FINAL_TASK_STATES.has(task.state) || Date.now() >= deadline) return task
    await delay(Math.min(wait, Math.max(1, deadline - Date.now())), undefined, { signal: options.signal })
    wait = Math.min(wait * 2, 1000)
  }
}

/** A task's error as one line of text */
export function taskErrorText (task: TaskView): string {
  const e = task.error
  if (e == null) return `task ${task.id} ended ${task.state}`
  if (typeof e === 'string') return e
  return JSON.stringify(e)
}
