import { a2aRoutes } from '../gateways/a2a-http.js'
import { McpSessions, mcpRoutes } from '../gateways/mcp-http.js'
import { httpNodeApi } from '../gateways/node-api.js'
import type { SkillSource } from '../gateways/a2a.js'
import type { ApiServer } from './server.js'

export interface GatewayRoutesInit {
  /** the agent card's skills: this node's capabilities or the network's (default local) */
  a2aSkills?: SkillSource
  /** the URL clients reach the API at, when not the address it listens on (a reverse proxy) */
  publicUrl?: string
}

/**
 * The gateways on the node's API: MCP over Streamable HTTP at `/mcp` (docs/mcp.md), A2A's agent
 * card and JSON-RPC binding (docs/a2a.md). They call the node through its own API, so they see
 * exactly what a client sees. Returns what closes them.
 */
export function gatewayRoutes (api: ApiServer, init: GatewayRoutesInit = {}): { close: () => Promise<void> } {
  const nodeApi = httpNodeApi(() => ({ api: { url: api.url, token: api.token } }))
  const sessions = new McpSessions({ api: () => nodeApi })
  mcpRoutes(api, sessions)
  a2aRoutes(api, { api: nodeApi, baseUrl: () => init.publicUrl ?? api.url, skills: init.a2aSkills })
  return { close: async () => { await sessions.close() } }
}
