import type { ApiServer } from './server.js'
import type { AgentNode } from '../node.js'

/** Capability and anycast routes: /v1/capabilities, /v1/capabilities/search, /v1/ask. */

export function capabilityRoutes (api: ApiServer, { node }: { node: AgentNode }): void {
  // filled in with the capability and anycast HTTP API
}
