import { InvalidTransitionError } from './errors.js'
import type { TaskState } from './types.js'

/**
 * Allowed transitions of a task on its submitter.
 *
 *   submitted ─▶ assigned ─▶ running ─▶ completed
 *       │           │           │
 *       │           └───────────┴─▶ failed ─▶ assigned (after backoff) … ─▶ dead
 *       └─▶ running (map tasks, once a child is assigned)
 *   any non-terminal state ─▶ canceled | dead
 */
const TRANSITIONS: Record<TaskState, readonly TaskState[]> = {
  submitted: ['assigned', 'running', 'completed', 'canceled', 'dead'],
  assigned: ['running', 'completed', 'failed', 'canceled', 'dead'],
  running: ['completed', 'failed', 'canceled', 'dead'],
  failed: ['assigned', 'canceled', 'dead'],
  completed: [],
  dead: [],
  canceled: []
}

export function isTerminal (state: TaskState): boolean {
  return state === 'completed' || state === 'dead' || state === 'canceled'
}

export function canTransition (from: TaskState, to: TaskState): boolean {
  return TRANSITIONS[from].includes(to)
}

export function assertTransition (from: TaskState, to: TaskState): void {
  if (!canTransition(from, to)) {
    throw new InvalidTransitionError(`cannot move a task from ${from} to ${to}`)
  }
}

/** Waiting for a worker: not yet assigned, or back in the queue after a failed attempt */
export function isPending (state: TaskState): boolean {
  return state === 'submitted' || state === 'failed'
}

/** Holding a lease */
export function isLeased (state: TaskState): boolean {
  return state === 'assigned' || state === 'running'
}

/**
 * Delay before attempt `attempt + 1` after `attempt` attempts failed:
 * base · 2^(attempt-1), capped at max.
 */
export function backoffDelay (attempt: number, baseMs: number, maxMs: number): number {
  if (attempt <= 0) {
    return 0
  }
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30))
}
