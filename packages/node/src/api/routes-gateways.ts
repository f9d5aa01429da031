import { McpSessions, mcpRoutes } from '../gateways/mcp-http.js'
import { httpNodeApi } from '../gateways/node-api.js'
import type { ApiServer } from './server.js'

/**
 * The gateways on the node's API: MCP over Streamable HTTP at `/mcp` (docs/mcp.md). They call the
 * node through its own API, so they see exactly what a client sees. Returns what closes them.
 */
export function gatewayRoutes (api: ApiServer): { close: () => Promise<void> } {
  const sessions = new McpSessions({ api: () => httpNodeApi({ api: { url: api.url, token: api.token } }) })
  mcpRoutes(api, sessions)
  return { close: async () => { await sessions.close() } }
}
