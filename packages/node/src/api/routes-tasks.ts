import type { ApiServer } from './server.js'
import type { AgentNode } from '../node.js'

/** Task queue and event routes: /v1/tasks, /v1/tasks/:id, /v1/tasks/:id/events, /v1/events. */

export function taskRoutes (api: ApiServer, { node }: { node: AgentNode }): void {
  // filled in with the task queue's HTTP API
}
