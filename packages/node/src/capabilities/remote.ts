/**
 * Handlers that bring what other protocols serve onto the network: one tool of an MCP server
 * (handler type `mcp`, stdio or Streamable HTTP, through @modelcontextprotocol/sdk's client) and a
 * remote A2A agent (handler type `a2a`, through @a2a-js/sdk's client, JSON-RPC binding, v1.0 or
 * v0.3 as its card says). Each keeps one connection, opened at the first call (or when its
 * description is read) and closed with the registry.
 */
import { randomUUID } from 'node:crypto'
import { Role, TaskState } from '@a2a-js/sdk'
import { ClientFactory, JsonRpcTransportFactory } from '@a2a-js/sdk/client'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { partOf } from '../gateways/a2a.js'
import { VERSION } from '../version.js'
import { HandlerError, HandlerInputError } from './errors.js'
import type { HandlerFn } from './handlers.js'
import type { HandlerSpec } from './spec.js'
import type { Client as A2aClient } from '@a2a-js/sdk/client'
import type { Message, Part, Task } from '@a2a-js/sdk'
import type { Tool } from '@modelcontextprotocol/sdk/types.js'

export type McpHandlerSpec = Extract<HandlerSpec, { type: 'mcp' }>
export type A2aHandlerSpec = Extract<HandlerSpec, { type: 'a2a' }>

/** A handler with a connection to close when its capability goes away */
export type RemoteHandlerFn = HandlerFn & { close: () => Promise<void> }

/** Variables an MCP server started by a handler inherits, besides those the spec gives */
const KEPT_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ']

function textOf (parts: Array<{ type: string, text?: string }>): string {
  return parts.filter(p => p.type === 'text' && typeof p.text === 'string').map(p => p.text).join('')
}

/** One MCP server connection, shared by the calls of one capability */
class McpConnection {
  private client?: Promise<Client>
  private readonly spec: McpHandlerSpec

  constructor (spec: McpHandlerSpec) {
    this.spec = spec
  }

  async get (): Promise<Client> {
    this.client ??= this.connect().catch(err => {
      this.client = undefined
      throw new HandlerError(`cannot reach the MCP server ${this.where()}: ${String(err?.message ?? err)}`)
    })
    return await this.client
  }

  where (): string {
    return this.spec.url ?? (this.spec.command ?? []).join(' ')
  }

  private async connect (): Promise<Client> {
    const client = new Client({ name: 'aistack', version: VERSION })
    if (this.spec.url != null) {
      await client.connect(new StreamableHTTPClientTransport(new URL(this.spec.url), { requestInit: { headers: this.spec.headers ?? {} } }))
    } else {
      const command = this.spec.command as string[]
      const env: Record<string, string> = {}
      for (const k of KEPT_ENV) if (process.env[k] != null) env[k] = process.env[k] as string
      Object.assign(env, this.spec.env)
      await client.connect(new StdioClientTransport({ command: command[0], args: command.slice(1), env, cwd: this.spec.cwd, stderr: 'ignore' }))
    }
    // a server that closes drops the connection: the next call opens a new one
    client.onclose = () => { this.client = undefined }
    return client
  }

  async tool (): Promise<Tool> {
    const client = await this.get()
    let cursor: string | undefined
    for (let page = 0; page < 100; page++) {
      const { tools, nextCursor } = await client.listTools(cursor != null ? { cursor } : undefined)
      const tool = tools.find(t => t.name === this.spec.tool)
      if (tool != null) return tool
      if (nextCursor == null) break
      cursor = nextCursor
    }
    throw new HandlerError(`the MCP server ${this.where()} has no tool named "${this.spec.tool}"`)
  }

  async close (): Promise<void> {
    const pending = this.client
    this.client = undefined
    if (pending != null) await (await pending.catch(() => undefined))?.close().catch(() => {})
  }
}

/**
 * A tool's arguments from a capability input: an object as it is; a string (or other value) as the
 * tool's only property, or its only required one.
 */
export function toolArguments (tool: Pick<Tool, 'name' | 'inputSchema'>, input: unknown): Record<string, unknown> {
  if (typeof input === 'object' && input != null && !Array.isArray(input)) return input as Record<string, unknown>
  const props = Object.keys(tool.inputSchema?.properties ?? {})
  const required = tool.inputSchema?.required ?? []
  const key = props.length === 1 ? props[0] : required.length === 1 ? required[0] : undefined
  if (key == null) throw new HandlerInputError(`the MCP tool ${tool.name} takes an object with ${props.join(', ') || 'no properties'}; give the input as such an object`)
  return { [key]: input }
}

/** The handler of a capability served by one MCP tool */
export function mcpHandler (spec: McpHandlerSpec): RemoteHandlerFn {
  const connection = new McpConnection(spec)
  let tool: Tool | undefined
  const fn = async (input: unknown, { signal }: { signal: AbortSignal }): Promise<unknown> => {
    tool ??= await connection.tool()
    const client = await connection.get()
    const result = await client.callTool({ name: spec.tool, arguments: toolArguments(tool, input) }, undefined, { signal, timeout: spec.timeoutMs ?? 30_000 })
    const content = (result.content ?? []) as Array<{ type: string, text?: string }>
    const text = textOf(content)
    if (result.isError === true) throw new HandlerError(`the MCP tool ${spec.tool} failed: ${text.slice(0, 1024) || 'no reason given'}`)
    if (text === '' && result.structuredContent != null) return result.structuredContent
    return text
  }
  return Object.assign(fn, { close: async () => { await connection.close() } })
}

/** The description of the MCP tool a spec names (for a capability that gives none) */
export async function describeMcpTool (spec: McpHandlerSpec): Promise<string> {
  const connection = new McpConnection(spec)
  try {
    const tool = await connection.tool()
    return (tool.description ?? tool.title ?? tool.name).slice(0, 1024) || tool.name
  } finally {
    await connection.close()
  }
}

/** A message's or task's answer: its text parts joined, else its first data part */
function answerOf (parts: Part[]): unknown {
  const texts = parts.flatMap(p => p.content?.$case === 'text' ? [p.content.value] : [])
  if (texts.length > 0) return texts.join('')
  const data = parts.find(p => p.content?.$case === 'data')
  return data?.content?.$case === 'data' ? data.content.value : ''
}

function taskAnswer (task: Task): unknown {
  const fromArtifacts = task.artifacts.flatMap(a => a.parts)
  return answerOf(fromArtifacts.length > 0 ? fromArtifacts : task.status?.message?.parts ?? [])
}

const FINAL = new Set([TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED, TaskState.TASK_STATE_REJECTED])

/** The handler of a capability served by a remote A2A agent (its card read at the first call) */
export function a2aHandler (spec: A2aHandlerSpec): RemoteHandlerFn {
  let client: Promise<A2aClient> | undefined
  const connect = async (): Promise<A2aClient> => {
    client ??= a2aClient(spec).catch(err => {
      client = undefined
      throw new HandlerError(`cannot read the A2A agent card at ${spec.url}: ${String(err?.message ?? err)}`)
    })
    return await client
  }
  const fn = async (input: unknown, { signal }: { signal: AbortSignal }): Promise<unknown> => {
    const agent = await connect()
    const message: Message = {
      messageId: randomUUID(),
      contextId: '',
      taskId: '',
      role: Role.ROLE_USER,
      parts: [partOf(input)],
      metadata: spec.skill != null ? { skill: spec.skill } : undefined,
      extensions: [],
      referenceTaskIds: []
    }
    let result = await agent.sendMessage({ tenant: '', message, configuration: undefined, metadata: undefined }, { signal })
    // a task that is still working is followed until it ends, at most until the handler's timeout
    for (let wait = 100; !('parts' in result) && !FINAL.has(result.status?.state ?? TaskState.TASK_STATE_UNSPECIFIED); wait = Math.min(wait * 2, 2000)) {
      await new Promise((resolve, reject) => {
        const t = setTimeout(resolve, wait)
        signal.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason) }, { once: true })
      })
      result = await agent.getTask({ tenant: '', id: result.id, historyLength: undefined }, { signal })
    }
    if ('parts' in result) return answerOf(result.parts)
    if (result.status?.state !== TaskState.TASK_STATE_COMPLETED) {
      throw new HandlerError(`the A2A agent at ${spec.url} ended the task ${TaskState[result.status?.state ?? 0]}: ${String(answerOf(result.status?.message?.parts ?? [])).slice(0, 1024)}`)
    }
    return taskAnswer(result)
  }
  return Object.assign(fn, { close: async () => { client = undefined } })
}

async function a2aClient (spec: A2aHandlerSpec): Promise<A2aClient> {
  const headers = spec.headers ?? {}
  const fetchImpl: typeof fetch = async (url, init) => {
    const h = new Headers(init?.headers)
    for (const [k, v] of Object.entries(headers)) h.set(k, v)
    return await fetch(url, { ...init, headers: h })
  }
  const factory = new ClientFactory({ transports: [new JsonRpcTransportFactory({ fetchImpl, legacyCompat: { enabled: true } } as any)] } as any)
  return await factory.createFromUrl(spec.url)
}

/** The description of a remote A2A agent's skill (or the agent) a spec names */
export async function describeA2aAgent (spec: A2aHandlerSpec): Promise<string> {
  const res = await fetch(new URL('/.well-known/agent-card.json', spec.url), { headers: { 'A2A-Version': '1.0', ...spec.headers }, signal: AbortSignal.timeout(10_000) })
  if (!res.ok) throw new HandlerError(`cannot read the A2A agent card at ${spec.url}: HTTP ${res.status}`)
  const card = await res.json() as { description?: string, name?: string, skills?: Array<{ id: string, name?: string, description?: string }> }
  const skill = spec.skill != null ? card.skills?.find(s => s.id === spec.skill || s.name === spec.skill) : undefined
  if (spec.skill != null && skill == null) throw new HandlerError(`the A2A agent at ${spec.url} has no skill "${spec.skill}"`)
  return String(skill?.description ?? card.description ?? card.name ?? spec.url).slice(0, 1024)
}
