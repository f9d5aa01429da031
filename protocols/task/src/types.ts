import type { PeerId } from '@libp2p/interface'

export type TaskState = 'submitted' | 'assigned' | 'running' | 'completed' | 'failed' | 'dead' | 'canceled'

export const TASK_STATES: readonly TaskState[] = ['submitted', 'assigned', 'running', 'completed', 'failed', 'dead', 'canceled']

/** What a worker needs to know to decide whether it can run a task */
export interface TaskSpec {
  capability?: string
  query?: string
  requirements?: Record<string, string>
}

export interface RunContext {
  signal: AbortSignal
  onProgress(progress: { progress?: number, message?: string }): void
  taskId: string
  submitter: PeerId
  attempt: number
  /** size of the input as JSON, in bytes (spares the executor measuring it again) */
  inputBytes?: number
}

/** Runs tasks with the node's handlers */
export interface TaskExecutor {
  /** Whether this node can serve the capability or query */
  canRun(spec: TaskSpec): boolean
  /** Free slots right now */
  capacity(): number
  /** Run the task; the resolved value must be JSON-serialisable */
  run(spec: TaskSpec, input: unknown, context: RunContext): Promise<unknown>
}

/** A span the task service records through its tracer (@aistack/telemetry's `TraceHandle` fits) */
export interface TaskSpan {
  setAttributes(attributes: Record<string, string | number | boolean>): void
  /** ends the span, as an error when `error` is given */
  end(error?: string): void
  /** this node's spans below this one (it included), bounded, for a result */
  wireSpans(): WireSpan[]
}

/** A span as it travels in a result (the `Span` message, as in the anycast protocol) */
export interface WireSpan {
  spanId: string
  parentId: string
  peerId: string
  name: string
  startMs: number
  durationMs: number
  error: boolean
  attributes: Array<{ key: string, value: string }>
}

/**
 * Traces tasks across nodes: the worker continues the submitter's trace,
 * the submitter takes the worker's spans into it
 */
export interface TaskTracer {
  /** worker: a span, child of the span `traceparent` names; undefined when it is malformed (the task runs untraced) */
  continue(traceparent: string, name: string, attributes?: Record<string, string | number | boolean>): TaskSpan | undefined
  /**
   * submitter: takes (checked and bounded) the spans a worker returned for a
   * task sent with `traceparent`, only when that span is this node's own;
   * returns how many were taken
   */
  adopt(traceparent: string, spans: readonly WireSpan[]): number
}

export interface SubmitRequest {
  /**
   * W3C trace-context `traceparent` of the caller's span: announced with the
   * task, the worker's spans become its children and come back with the result
   */
  traceparent?: string
  capability?: string
  query?: string
  /** a single input (a plain task) */
  input?: unknown
  /** several inputs (a map task: one child per input, results in input order) */
  inputs?: unknown[]
  requirements?: Record<string, string>
  /** a peer id (string or PeerId): only that peer may run the task */
  to?: string | PeerId
  maxAttempts?: number
  leaseMs?: number
  /** relative deadline for the whole task, in milliseconds */
  deadlineMs?: number
  /** per-attempt execution limit, in milliseconds */
  timeoutMs?: number
}

export interface HistoryEntry {
  at: number
  state: TaskState
  attempt: number
  worker?: string
  reason?: string
}

export interface TaskInfo {
  id: string
  state: TaskState
  capability?: string
  query?: string
  to?: string
  parent?: string
  index?: number
  /** number of children of a map task */
  children?: number
  attempts: number
  maxAttempts: number
  worker?: string
  result?: unknown
  error?: string
  createdAt: number
  updatedAt: number
  deadline?: number
  progress?: number
  /** the trace of a traced task (`GET /v1/traces/:traceId`) */
  traceId?: string
  history: HistoryEntry[]
}

export type TaskEventType =
  'task.created' | 'task.assigned' | 'task.running' | 'task.progress' | 'task.completed' |
  'task.failed' | 'task.dead' | 'task.canceled' | 'agent.joined' | 'agent.left'

export interface TaskEvent {
  type: TaskEventType
  /** peer id of the node the event comes from */
  origin: string
  /** true if this node produced the event */
  local: boolean
  at: number
  taskId?: string
  parent?: string
  state?: TaskState
  attempt?: number
  worker?: string
  reason?: string
  progress?: number
  message?: string
  /** agent.joined / agent.left: the agent's peer id */
  peer?: string
  /** task.completed: the result (local events only) */
  result?: unknown
}

export interface TaskStats {
  submitted: number
  completed: number
  failedAttempts: number
  dead: number
  canceled: number
  executed: number
  offersSent: number
  /** tasks announced on the tasks topic (a task may be announced again while it waits) */
  announced: number
  /** signed event batches published on the events topic */
  eventBatches: number
  /** messages that were dropped, by reason */
  dropped: {
    badSignature: number
    oversize: number
    malformed: number
    unknownTask: number
    notAssigned: number
    replayed: number
    duplicate: number
  }
}
