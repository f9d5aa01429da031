import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { McpGateway } from '../gateways/mcp.js'
import { httpNodeApi } from '../gateways/node-api.js'
import { resolveHome } from '../paths.js'
import { requireRunning } from '../run-file.js'
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
  const gateway = new McpGateway({ api: httpNodeApi(info), refreshMs })
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
