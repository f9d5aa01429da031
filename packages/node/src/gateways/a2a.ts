/**
 * The node as one A2A agent (Agent2Agent protocol v1.0, https://a2a-protocol.org/v1.0.0/specification/,
 * with the v0.3 method names and shapes accepted through the official SDK's compatibility layer,
 * @a2a-js/sdk). A message goes to the capability named by `metadata.skill`, else to the one nearest
 * in meaning to `metadata.query` or the message's text; it runs on the node's task queue. Work that
 * ends within `messageWaitMs` answers with a Message; longer work, or a request with
 * `returnImmediately` (v0.3: `blocking: false`), becomes an A2A Task whose states follow the node
 * task's. docs/a2a.md.
 */
import { randomUUID } from 'node:crypto'
import { A2A_PROTOCOL_VERSION, Role, TaskState } from '@a2a-js/sdk'
import { AgentEvent } from '@a2a-js/sdk/server'
import { FINAL_TASK_STATES, taskErrorText, waitForTask } from './node-api.js'
import type { KnownCapability, NodeApi, TaskView } from './node-api.js'
import type { AgentCard, AgentSkill, ListTasksRequest, ListTasksResponse, Message, Part, Task } from '@a2a-js/sdk'
import type { AgentExecutor, ExecutionEventBus, RequestContext, ServerCallContext, TaskStore } from '@a2a-js/sdk/server'

/** Where the card takes its skills from: this node's capabilities, or every one it knows */
export type SkillSource = 'local' | 'network'

export interface A2aGatewayInit {
  api: NodeApi
  /** the URL clients reach the node's API at (the card's interface URL is `<baseUrl>/a2a`) */
  baseUrl: () => string
  skills?: SkillSource
  /** how long a message waits for its work before it becomes a Task, ms (default 10,000) */
  messageWaitMs?: number
  /** limit of one unit of work, ms (default 5 minutes) */
  workTimeoutMs?: number
  /** A2A tasks kept for GetTask and ListTasks, oldest dropped first (default 1,000) */
  maxTasks?: number
}

/** Most characters of a query taken from a message's text */
export const MAX_QUERY_CHARS = 4096

const ANSWER_STATES: Record<string, TaskState> = {
  submitted: TaskState.TASK_STATE_SUBMITTED,
  assigned: TaskState.TASK_STATE_WORKING,
  running: TaskState.TASK_STATE_WORKING,
  failed: TaskState.TASK_STATE_WORKING, // an attempt failed; the queue retries it
  completed: TaskState.TASK_STATE_COMPLETED,
  dead: TaskState.TASK_STATE_FAILED,
  canceled: TaskState.TASK_STATE_CANCELED
}

/** The A2A task state of a node task state (docs/a2a.md has the table) */
export function a2aStateOf (state: string): TaskState {
  return ANSWER_STATES[state] ?? TaskState.TASK_STATE_UNSPECIFIED
}

/** A part holding a value: text for strings, data for anything else */
export function partOf (value: unknown): Part {
  if (typeof value === 'string') return { content: { $case: 'text', value }, metadata: undefined, filename: '', mediaType: 'text/plain' }
  return { content: { $case: 'data', value: value ?? null }, metadata: undefined, filename: '', mediaType: 'application/json' }
}

/** The input of a message: its text parts joined, else its first data part's value, else null */
export function inputOf (message: Message): unknown {
  const texts = message.parts.flatMap(p => p.content?.$case === 'text' ? [p.content.value] : [])
  if (texts.length > 0) return texts.join('\n')
  const data = message.parts.find(p => p.content?.$case === 'data')
  return data?.content?.$case === 'data' ? data.content.value : null
}

function agentMessage (value: unknown, taskId: string, contextId: string, withTask: boolean): Message {
  return {
    messageId: randomUUID(),
    contextId,
    taskId: withTask ? taskId : '',
    role: Role.ROLE_AGENT,
    parts: [partOf(value)],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: []
  }
}

function skillOf (cap: KnownCapability): AgentSkill {
  return {
    id: cap.name,
    name: cap.name,
    description: cap.description,
    tags: cap.tags,
    examples: cap.examples,
    inputModes: ['text/plain', 'application/json'],
    outputModes: ['text/plain', 'application/json'],
    securityRequirements: []
  }
}

/** The JSON-RPC binding at `url`, in protocol versions 1.0 and 0.3 (the same endpoint takes both) */
function interfaces (url: string): AgentCard['supportedInterfaces'] {
  return [A2A_PROTOCOL_VERSION, '0.3'].map(protocolVersion => ({ url, protocolBinding: 'JSONRPC', tenant: '', protocolVersion }))
}

/** The card before the node's capabilities are read: its interface, no skills */
export function placeholderCard (init: Pick<A2aGatewayInit, 'baseUrl'>): AgentCard {
  return {
    name: 'aistack node',
    description: '',
    supportedInterfaces: interfaces('/a2a'),
    provider: undefined,
    version: '1.0.0',
    capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
    securitySchemes: {},
    securityRequirements: [],
    defaultInputModes: ['text/plain', 'application/json'],
    defaultOutputModes: ['text/plain', 'application/json'],
    skills: [],
    signatures: []
  }
}

/**
 * The agent card: one skill per capability (`skills`), the JSON-RPC interface at `<baseUrl>/a2a`,
 * the bearer scheme the endpoint needs.
 */
export async function agentCard (init: Pick<A2aGatewayInit, 'api' | 'baseUrl' | 'skills'>): Promise<AgentCard> {
  const caps = await init.api.capabilities()
  const peerId = await init.api.peerId()
  const local = init.skills !== 'network'
  const chosen = local ? caps.filter(c => c.owners.includes(peerId)) : caps
  return {
    name: `aistack node ${peerId.slice(-8)}`,
    description: 'An aistack node: it routes each message to the agent on a peer-to-peer network whose capability is nearest in meaning (metadata.skill names one; metadata.query chooses by meaning; else the message text does).',
    supportedInterfaces: interfaces(`${init.baseUrl()}/a2a`),
    provider: undefined,
    version: '1.0.0',
    capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
    securitySchemes: {
      bearer: { scheme: { $case: 'httpAuthSecurityScheme', value: { description: 'the node API token (api.token in the node\'s run.json)', scheme: 'Bearer', bearerFormat: '' } } }
    },
    securityRequirements: [{ schemes: { bearer: { list: [] } } }],
    defaultInputModes: ['text/plain', 'application/json'],
    defaultOutputModes: ['text/plain', 'application/json'],
    skills: chosen.slice(0, 256).map(skillOf),
    signatures: []
  }
}

/**
 * Runs A2A messages on the node's task queue. State: the node task id of each running A2A task
 * (for CancelTask), dropped when the work ends.
 */
export class NodeAgentExecutor implements AgentExecutor {
  private readonly api: NodeApi
  private readonly messageWaitMs: number
  private readonly workTimeoutMs: number
  private readonly running = new Map<string, string>()

  constructor (init: A2aGatewayInit) {
    this.api = init.api
    this.messageWaitMs = init.messageWaitMs ?? 10_000
    this.workTimeoutMs = init.workTimeoutMs ?? 300_000
  }

  execute = async (ctx: RequestContext, bus: ExecutionEventBus): Promise<void> => {
    const message = ctx.userMessage
    const meta = { ...(ctx.request.metadata ?? {}), ...(message.metadata ?? {}) }
    const input = inputOf(message)
    const skill = typeof meta.skill === 'string' && meta.skill.length > 0 ? meta.skill : undefined
    const query = typeof meta.query === 'string' && meta.query.trim().length > 0 ? meta.query : (typeof input === 'string' ? input : '')
    const now = (): string => new Date().toISOString()
    const task = (state: TaskState, answer?: unknown): Task => ({
      id: ctx.taskId,
      contextId: ctx.contextId,
      status: { state, timestamp: now(), message: answer !== undefined ? agentMessage(answer, ctx.taskId, ctx.contextId, true) : undefined },
      artifacts: [],
      history: [message],
      metadata: { ...(skill != null ? { skill } : {}) }
    })
    const status = (state: TaskState, answer?: unknown): void => {
      bus.publish(AgentEvent.statusUpdate({
        taskId: ctx.taskId,
        contextId: ctx.contextId,
        status: { state, timestamp: now(), message: answer !== undefined ? agentMessage(answer, ctx.taskId, ctx.contextId, true) : undefined },
        metadata: undefined
      }))
    }
    if (skill == null && query.trim().length === 0) {
      bus.publish(AgentEvent.message(agentMessage('give metadata.skill (a capability name), metadata.query, or a text part to choose a capability by', ctx.taskId, ctx.contextId, false)))
      return
    }
    let nodeTask: string
    try {
      const submitted = await this.api.submitTask({
        ...(skill != null ? { capability: skill } : { query: query.slice(0, MAX_QUERY_CHARS) }),
        input,
        timeoutMs: this.workTimeoutMs
      })
      nodeTask = submitted.id
    } catch (err: any) {
      // nothing can run it: a failed task that says why
      bus.publish(AgentEvent.task(task(TaskState.TASK_STATE_FAILED, `no capability could take this message: ${String(err?.message ?? err)}`)))
      return
    }
    this.running.set(ctx.taskId, nodeTask)
    try {
      const returnImmediately = ctx.request.configuration?.returnImmediately === true
      if (!returnImmediately && ctx.task == null) {
        const quick = await waitForTask(this.api, nodeTask, { timeoutMs: this.messageWaitMs })
        if (quick.state === 'completed') {
          bus.publish(AgentEvent.message(agentMessage(quick.result, ctx.taskId, ctx.contextId, false)))
          return
        }
        if (FINAL_TASK_STATES.has(quick.state)) {
          bus.publish(AgentEvent.task(task(a2aStateOf(quick.state), taskErrorText(quick))))
          return
        }
        bus.publish(AgentEvent.task(task(a2aStateOf(quick.state))))
      } else {
        bus.publish(AgentEvent.task(task(TaskState.TASK_STATE_SUBMITTED)))
      }
      let last: TaskState | undefined
      const final = await waitForTask(this.api, nodeTask, {
        timeoutMs: this.workTimeoutMs,
        onState: (t: TaskView) => {
          const state = a2aStateOf(t.state)
          if (state !== last && !FINAL_TASK_STATES.has(t.state)) status(state)
          last = state
        }
      })
      if (final.state === 'completed') status(TaskState.TASK_STATE_COMPLETED, final.result)
      else if (FINAL_TASK_STATES.has(final.state)) status(a2aStateOf(final.state), taskErrorText(final))
      else {
        await this.api.cancelTask(nodeTask).catch(() => {})
        status(TaskState.TASK_STATE_FAILED, `no answer within ${this.workTimeoutMs} ms`)
      }
    } catch (err: any) {
      status(TaskState.TASK_STATE_FAILED, String(err?.message ?? err))
    } finally {
      this.running.delete(ctx.taskId)
    }
  }

  // the execute loop sees the node task canceled and publishes the final status on its bus
  cancelTask = async (taskId: string): Promise<void> => {
    const nodeTask = this.running.get(taskId)
    if (nodeTask == null) return
    await this.api.cancelTask(nodeTask).catch(() => {})
  }
}

/**
 * A2A tasks in memory, at most `max` of them (the oldest dropped first), for GetTask and
 * ListTasks. ListTasks filters by context and state, newest first, pages by offset.
 */
export class BoundedTaskStore implements TaskStore {
  private readonly tasks = new Map<string, Task>()
  private readonly max: number

  constructor (max = 1000) {
    this.max = max
  }

  async save (task: Task, _context: ServerCallContext): Promise<void> {
    this.tasks.delete(task.id)
    this.tasks.set(task.id, structuredClone(task))
    while (this.tasks.size > this.max) this.tasks.delete(this.tasks.keys().next().value as string)
  }

  async load (taskId: string, _context: ServerCallContext): Promise<Task | undefined> {
    const t = this.tasks.get(taskId)
    return t != null ? structuredClone(t) : undefined
  }

  async list (params: ListTasksRequest, _context: ServerCallContext): Promise<ListTasksResponse> {
    let all = [...this.tasks.values()].reverse()
    if (params.contextId !== '' && params.contextId != null) all = all.filter(t => t.contextId === params.contextId)
    if (params.status != null && params.status !== TaskState.TASK_STATE_UNSPECIFIED) all = all.filter(t => t.status?.state === params.status)
    const pageSize = Math.min(Math.max(params.pageSize ?? 50, 1), 100)
    const offset = /^\d+$/.test(params.pageToken ?? '') ? Number(params.pageToken) : 0
    const page = all.slice(offset, offset + pageSize).map(t => ({ ...structuredClone(t), artifacts: params.includeArtifacts === true ? t.artifacts : [] }))
    const next = offset + pageSize < all.length ? String(offset + pageSize) : ''
    return { tasks: page, nextPageToken: next, pageSize, totalSize: all.length }
  }
}
