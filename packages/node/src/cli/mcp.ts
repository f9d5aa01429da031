import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { McpGateway } from '../gateways/mcp.js'
import { httpNodeApi } from '../gateways/node-api.js'
import { resolveHome } from '../paths.js'
import { readRunFile, requireRunning } from '../run-file.js'
import { ApiError } from '../errors.js'
import type { NodeApi } from '../gateways/node-api.js'
import { parse, parseInteger } from './args.js'
import { HOME_HELP } from './commands.js'

const HELP = `Usage: aistack mcp [--home DIR] [--refresh-ms N]

Runs an MCP server on standard input and output that gives an MCP client (Claude Desktop,
Cursor, VS Code, …) the aistack network as tools: find_capabilities, ask, submit_task,
get_task, and one tool per capability the running node knows. It talks to the node
running on the home through its HTTP API; start one first with \`aistack start\`.
Nothing but MCP messages is written to standard output. See docs/mcp.md.

${HOME_HELP}
  --refresh-ms N      how often the capability tools are compared with the node's
                      (default 5000; 0 never)`

/** `aistack mcp`: the stdio MCP server; returns when the client closes standard input. */
export async function mcpCommand (args: string[]): Promise<number> {
  const { values } = parse('mcp', args, { home: { type: 'string' }, 'refresh-ms': { type: 'string' } })
  if (values.help === true) {
    console.log(HELP)
    return 0
  }
  const refreshMs = values['refresh-ms'] != null ? parseInteger(values['refresh-ms'] as string, '--refresh-ms', 0, 3_600_000) : 5000
  const home = resolveHome(values.home as string | undefined)
  // fails at once, in one line, when no node runs on the home
  const info = await requireRunning(home)
  // a node restarted on the home has a new address and token: read run.json again when the
  // old ones stop working
  let current = info
  const api = httpNodeApi(() => current)
  const refreshed = async (): Promise<boolean> => {
    const next = await readRunFile(home)
    if (next == null || (next.api.url === current.api.url && next.api.token === current.api.token)) return false
    current = next
    return true
  }
  const gateway = new McpGateway({ api: retrying(api, refreshed), refreshMs })
  const transport = new StdioServerTransport()
  const closed = new Promise<void>(resolve => {
    transport.onclose = () => { resolve() }
    process.stdin.once('end', () => { resolve() })
  })
  await gateway.server.connect(transport)
  process.stderr.write(`aistack mcp: serving the node on ${home} (${info.peerId}) over stdio\n`)
  await closed
  await gateway.close().catch(() => {})
  return 0
}

/** A NodeApi whose calls are tried once more after `refresh()` finds a new address or token */
function retrying (api: NodeApi, refresh: () => Promise<boolean>): NodeApi {
  const wrapped: Partial<NodeApi> = {}
  for (const key of Object.keys(api) as Array<keyof NodeApi>) {
    const call = api[key] as (...args: any[]) => Promise<any>
    wrapped[key] = (async (...args: any[]) => {
      try {
        return await call(...args)
      } catch (err) {
        const stale = err instanceof ApiError && (err.status === 401 || err.code === 'unreachable')
        if (stale && await refresh()) return await call(...args)
        throw err
      }
    }) as any
  }
  return wrapped as NodeApi
}
