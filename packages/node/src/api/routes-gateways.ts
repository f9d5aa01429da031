import { a2aRoutes } from '../gateways/a2a-http.js'
import { McpSessions, mcpRoutes } from '../gateways/mcp-http.js'
import { httpNodeApi } from '../gateways/node-api.js'
import type { A2aConfig } from '../gateways/config.js'
import type { ApiServer } from './server.js'

export type GatewayRoutesInit = A2aConfig

/**
 * The gateways on the node's API: MCP over Streamable HTTP at `/mcp` (docs/mcp.md), A2A's agent
 * card and JSON-RPC binding (docs/a2a.md). They call the node through its own API, so they see
 * exactly what a client sees. Returns what closes them.
 */
export function gatewayRoutes (api: ApiServer, init: GatewayRoutesInit = {}): { close: () => Promise<void> } {
  const nodeApi = httpNodeApi(() => ({ api: { url: api.url, token: api.token } }))
  const sessions = new McpSessions({ api: () => nodeApi })
  mcpRoutes(api, sessions)
  a2aRoutes(api, { api: nodeApi, baseUrl: () => init.publicUrl ?? api.url, skills: init.skills, messageWaitMs: init.messageWaitMs })
  return { close: async () => { await sessions.close() } }
}
