/**
 * @packageDocumentation
 *
 * A durable work queue without a server: at-least-once execution, exactly-once
 * result delivery, leases, retries with backoff, dead letters, map tasks and
 * signed lifecycle events, over gossipsub and direct `/aistack/task/1.0.0` streams.
 *
 * @example
 * ```ts
 * const node = await createLibp2p({
 *   services: { pubsub: gossipsub(), tasks: taskQueue({ executor }) }
 * })
 * const { id } = await node.services.tasks.submit({ capability: 'echo', input: 'hi' })
 * ```
 */
import { TaskService } from './task-service.js'
import type { TaskQueueComponents, TaskQueueInit } from './task-service.js'

export function taskQueue (init: TaskQueueInit = {}): (components: TaskQueueComponents) => TaskService {
  return (components) => new TaskService(components, init)
}

export { TaskService }
export type { TaskQueueComponents, TaskQueueInit, TaskQueueEvents, PubSubLike } from './task-service.js'
export * from './types.js'
export * from './errors.js'
export * from './constants.js'
export { isTerminal, canTransition, backoffDelay } from './state.js'
export { sealRecord, openRecord } from './signing.js'
export type { OpenedRecord } from './signing.js'
