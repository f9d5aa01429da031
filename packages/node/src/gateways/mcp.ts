/**
 * The network as one MCP server (Model Context Protocol, revision 2025-06-18 and later, through
 * the official SDK @modelcontextprotocol/sdk). Tools: `find_capabilities`, `ask`, `submit_task`,
 * `get_task`, and one tool per capability known to the node, kept up to date with
 * `notifications/tools/list_changed`. Spoken over stdio by `aistack mcp` and over Streamable
 * HTTP at the API's `/mcp` (docs/mcp.md).
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js'
import { VERSION } from '../version.js'
import { taskErrorText, waitForTask } from './node-api.js'
import type { KnownCapability, NodeApi } from './node-api.js'
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js'

/** Longest text accepted in a tool argument (query, capability, id), characters */
export const MAX_TEXT_ARGUMENT = 4096
/** Most capability tools listed; the rest are reachable through `ask` */
export const MAX_CAPABILITY_TOOLS = 256

export interface McpGatewayInit {
  api: NodeApi
  /** how often the capability tools are compared with the node's, ms (default 5,000; 0: never) */
  refreshMs?: number
  /** limit of one `ask` or capability call, ms (default 60,000) */
  callTimeoutMs?: number
}

const FIXED_TOOLS: Tool[] = [
  {
    name: 'find_capabilities',
    description: 'Find the capabilities on the aistack network nearest in meaning to a text. Returns their names, owners (peer ids) and similarity.',
    inputSchema: {
      type: 'object',
      properties: {
        query: { type: 'string', description: 'what you need done, in plain words', maxLength: MAX_TEXT_ARGUMENT },
        k: { type: 'integer', minimum: 1, maximum: 100, description: 'how many results (default 5)' }
      },
      required: ['query']
    }
  },
  {
    name: 'ask',
    description: 'Send a request to the capability on the aistack network best suited to it (semantic anycast) and return its answer.',
    inputSchema: {
      type: 'object',
      properties: {
        query: { type: 'string', description: 'what you need done, in plain words; it chooses the capability', maxLength: MAX_TEXT_ARGUMENT },
        input: { description: 'the input given to the capability (text or any JSON value)' }
      },
      required: ['query']
    }
  },
  {
    name: 'submit_task',
    description: 'Submit a task to the node\'s task queue, for a capability by name or by meaning; returns the task id at once (see get_task).',
    inputSchema: {
      type: 'object',
      properties: {
        capability: { type: 'string', description: 'the capability\'s exact name', maxLength: 64 },
        query: { type: 'string', description: 'or a text: the nearest capability runs the task', maxLength: MAX_TEXT_ARGUMENT },
        input: { description: 'the task\'s input (text or any JSON value)' }
      }
    }
  },
  {
    name: 'get_task',
    description: 'The state of a task submitted to this node: submitted, assigned, running, completed (with its result), failed, dead or canceled.',
    inputSchema: {
      type: 'object',
      properties: { id: { type: 'string', description: 'the task id submit_task returned', maxLength: 256 } },
      required: ['id']
    }
  }
]

const FIXED_NAMES = new Set(FIXED_TOOLS.map(t => t.name))

/**
 * A tool name for a capability name: MCP tool names are `[A-Za-z0-9_-]{1,64}`, so other
 * characters (`.`, `:`) become `_`; a name taken already gets `_2`, `_3`, ….
 */
export function toolNameFor (capability: string, taken: Set<string>): string {
  const base = capability.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 60) || 'capability'
  let name = base
  for (let i = 2; taken.has(name); i++) name = `${base}_${i}`
  return name
}

function capabilityTool (toolName: string, cap: KnownCapability): Tool {
  const owners = cap.owners.length > 0 ? ` Served by ${cap.owners.length} peer${cap.owners.length === 1 ? '' : 's'} on the aistack network.` : ''
  return {
    name: toolName,
    title: cap.name,
    description: `${cap.description}${owners}`,
    inputSchema: (cap.inputSchema as Tool['inputSchema'] | undefined) ?? {
      type: 'object',
      properties: { input: { type: 'string', description: 'the input given to the capability' } },
      required: ['input']
    }
  }
}

function text (value: unknown): string {
  if (typeof value === 'string') return value
  return JSON.stringify(value, null, 2) ?? 'null'
}

function ok (value: unknown, structured?: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: text(value) }], ...(structured != null ? { structuredContent: structured } : {}) }
}

function failed (message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true }
}

function argText (args: Record<string, unknown>, name: string, { optional = false, max = MAX_TEXT_ARGUMENT } = {}): string | undefined {
  const v = args[name]
  if (v == null && optional) return undefined
  if (typeof v !== 'string' || v.trim().length === 0 || v.length > max) {
    throw new McpError(ErrorCode.InvalidParams, `${name} must be a non-empty string of at most ${max} characters`)
  }
  return v
}

/**
 * One MCP session's server. `start()` lists the capability tools once and begins the periodic
 * comparison that sends `notifications/tools/list_changed`; `close()` ends both.
 */
export class McpGateway {
  readonly server: Server
  private readonly api: NodeApi
  private readonly refreshMs: number
  private readonly callTimeoutMs: number
  /** tool name → capability name */
  private tools = new Map<string, KnownCapability>()
  private signature = ''
  private timer?: ReturnType<typeof setTimeout>
  private closed = false

  constructor (init: McpGatewayInit) {
    this.api = init.api
    this.refreshMs = init.refreshMs ?? 5000
    this.callTimeoutMs = init.callTimeoutMs ?? 60_000
    this.server = new Server(
      { name: 'aistack', title: 'aistack network', version: VERSION },
      {
        capabilities: { tools: { listChanged: true } },
        instructions: 'The tools of this server reach a peer-to-peer network of AI agents. Use find_capabilities to see what the network can do, ask to have the best-suited agent answer, or call a capability\'s own tool.'
      }
    )
    this.server.setRequestHandler(ListToolsRequestSchema, async () => {
      await this.refresh(false)
      return { tools: [...FIXED_TOOLS, ...[...this.tools].map(([name, cap]) => capabilityTool(name, cap))] }
    })
    this.server.setRequestHandler(CallToolRequestSchema, async (req) => await this.call(req.params.name, (req.params.arguments ?? {})))
    this.server.oninitialized = () => { this.schedule() }
    this.server.onclose = () => { this.stopTimer() }
  }

  /** Stops the refresh timer and closes the server's transport */
  async close (): Promise<void> {
    this.closed = true
    this.stopTimer()
    await this.server.close()
  }

  private stopTimer (): void {
    this.closed = true
    if (this.timer != null) clearTimeout(this.timer)
    this.timer = undefined
  }

  private schedule (): void {
    if (this.refreshMs <= 0 || this.closed) return
    this.timer = setTimeout(() => {
      this.refresh(true).catch(() => {}).finally(() => { this.schedule() })
    }, this.refreshMs)
    this.timer.unref?.()
  }

  /** Re-reads the node's capabilities; with `notify`, says so to the client when they changed */
  private async refresh (notify: boolean): Promise<void> {
    let caps: KnownCapability[]
    try {
      caps = (await this.api.capabilities()).slice(0, MAX_CAPABILITY_TOOLS)
    } catch {
      return // the node is unreachable: keep the tools we have
    }
    const signature = JSON.stringify(caps.map(c => [c.name, c.description, c.inputSchema ?? null]))
    if (signature === this.signature) return
    const first = this.signature === ''
    this.signature = signature
    const taken = new Set(FIXED_NAMES)
    const tools = new Map<string, KnownCapability>()
    for (const cap of caps) {
      const name = toolNameFor(cap.name, taken)
      taken.add(name)
      tools.set(name, cap)
    }
    this.tools = tools
    if (notify && !first && !this.closed) await this.server.sendToolListChanged().catch(() => {})
  }

  private async call (name: string, args: Record<string, unknown>): Promise<CallToolResult> {
    if (typeof args !== 'object' || args == null || Array.isArray(args)) throw new McpError(ErrorCode.InvalidParams, 'arguments must be an object')
    switch (name) {
      case 'find_capabilities': {
        const query = argText(args, 'query') as string
        const k = args.k ?? 5
        if (!Number.isInteger(k) || (k as number) < 1 || (k as number) > 100) throw new McpError(ErrorCode.InvalidParams, 'k must be an integer in 1..100')
        const results = await this.api.search(query, k as number).catch(err => err as Error)
        if (results instanceof Error) return failed(`find_capabilities failed: ${results.message}`)
        const lines = results.map((r, i) => `${i + 1}. ${r.name} (similarity ${r.similarity.toFixed(2)}, peer ${r.peerId}): ${r.description}`)
        return ok(lines.length > 0 ? lines.join('\n') : 'no capability on the network is near enough to that text', { results })
      }
      case 'ask': {
        const query = argText(args, 'query') as string
        try {
          const answer = await this.api.ask(query, args.input ?? null, this.callTimeoutMs)
          return ok(answer.output, { ...answer, output: answer.output as any })
        } catch (err: any) {
          return failed(`ask failed: ${String(err?.message ?? err)}`)
        }
      }
      case 'submit_task': {
        const capability = argText(args, 'capability', { optional: true, max: 64 })
        const query = argText(args, 'query', { optional: true })
        if ((capability == null) === (query == null)) throw new McpError(ErrorCode.InvalidParams, 'give exactly one of capability or query')
        try {
          const task = await this.api.submitTask({ ...(capability != null ? { capability } : { query }), input: args.input ?? null })
          return ok(`task ${task.id} submitted; call get_task with this id for its state and result`, { id: task.id })
        } catch (err: any) {
          return failed(`submit_task failed: ${String(err?.message ?? err)}`)
        }
      }
      case 'get_task': {
        const id = argText(args, 'id', { max: 256 }) as string
        try {
          const task = await this.api.getTask(id)
          const summary = task.state === 'completed' ? task.result : { state: task.state, error: task.error, progress: task.progress }
          return ok(summary, { task })
        } catch (err: any) {
          return failed(`get_task failed: ${String(err?.message ?? err)}`)
        }
      }
    }
    if (!this.tools.has(name)) await this.refresh(false)
    const cap = this.tools.get(name)
    if (cap == null) throw new McpError(ErrorCode.InvalidParams, `unknown tool ${name}`)
    // a capability tool runs as a task for that capability by name: any peer serving it may run it
    const input = cap.inputSchema != null ? args : (args.input ?? null)
    try {
      const { id } = await this.api.submitTask({ capability: cap.name, input, timeoutMs: this.callTimeoutMs })
      const task = await waitForTask(this.api, id, { timeoutMs: this.callTimeoutMs + 5000 })
      if (task.state === 'completed') return ok(task.result)
      if (task.state !== 'dead' && task.state !== 'canceled') {
        await this.api.cancelTask(id).catch(() => {})
        return failed(`${cap.name} did not answer within ${this.callTimeoutMs} ms (task ${id} canceled)`)
      }
      return failed(`${cap.name} failed: ${taskErrorText(task)}`)
    } catch (err: any) {
      return failed(`${cap.name} failed: ${String(err?.message ?? err)}`)
    }
  }
}
