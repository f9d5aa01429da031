import { ApiError, AlreadyRunningError, ConfigError, HomeError, IdentityError, NotRunningError, StartError, UsageError } from '../errors.js'
import { VERSION } from '../version.js'
import { execForNode } from '../runtime.js'

const USAGE = `aistack ${VERSION}: a peer-to-peer network for AI agents

Usage: aistack <command> [options]

Commands:
  init                   create the node's identity and config.json
  start                  run a node in the foreground
  id                     show the running node's identity and addresses
  peers                  list the running node's connections
  stop                   stop the running node
  caps [list|add|rm]     the capabilities this node serves
  connect MULTIADDR      connect to a peer;  disconnect PEER_ID  close its connections
  dht                    the DHT routing table
  logs                   print the log of a node started with --detach
  find "<text>"          find the capabilities nearest in meaning to a text
  ask "<text>"           send a request to the best capability for it
  task submit|status|list|cancel|watch
                         the task queue
  events                 print lifecycle events live
  top                    a live view of the network's telemetry
  trace <id>             print the spans of a trace as a tree
  dashboard              the URL of the web dashboard (--open: open it)
  testnet up|status|down|restart
                         run a local multi-node testnet of node processes
  mcp                    serve the network to an MCP client over stdio
  models pull|list       download and list local sentence encoders

Run \`aistack <command> --help\` for a command's options. Docs: README.md and docs/.`

type Command = (args: string[]) => Promise<number>

// each command loads only its own module: the client commands stay quick because they
// do not load libp2p
const COMMANDS: Record<string, () => Promise<Command>> = {
  init: async () => (await import('./start.js')).initCommand,
  start: async () => (await import('./start.js')).startCommand,
  id: async () => (await import('./commands.js')).idCommand,
  peers: async () => (await import('./commands.js')).peersCommand,
  stop: async () => (await import('./commands.js')).stopCommand,
  find: async () => (await import('./anycast.js')).findCommand,
  ask: async () => (await import('./anycast.js')).askCommand,
  task: async () => (await import('./task.js')).taskCommand,
  events: async () => (await import('./task.js')).eventsCommand,
  top: async () => (await import('./telemetry.js')).topCommand,
  trace: async () => (await import('./telemetry.js')).traceCommand,
  dashboard: async () => (await import('./dashboard.js')).dashboardCommand,
  testnet: async () => (await import('./testnet.js')).testnetCommand,
  models: async () => (await import('./models.js')).modelsCommand,
  mcp: async () => (await import('./mcp.js')).mcpCommand,
  caps: async () => (await import('./network.js')).capsCommand,
  connect: async () => (await import('./network.js')).connectCommand,
  disconnect: async () => (await import('./network.js')).disconnectCommand,
  dht: async () => (await import('./network.js')).dhtCommand,
  logs: async () => (await import('./start.js')).logsCommand
}

function oneLine (err: any): string {
  const text = String(err?.message ?? err).split('\n').find(l => l.trim() !== '') ?? String(err)
  return err?.code != null && !text.includes(String(err.code)) ? `${text} (${String(err.code)})` : text
}

/** Runs the CLI; returns the exit status (2 for usage and config errors). */
export async function main (argv: string[]): Promise<number> {
  const major = Number(process.versions.node.split('.')[0])
  if (major < 24) {
    process.stderr.write(`aistack: Node.js 24 or newer is needed (this is ${process.version}); run it through \`npm start\` or \`npx aistack\`, which use the pinned Node\n`)
    return 1
  }
  const [name, ...args] = argv
  if (name == null || name === '--help' || name === '-h' || name === 'help') {
    const topic = args[0] != null ? COMMANDS[args[0]] : undefined
    if (topic != null) return (await topic())(['--help'])
    console.log(USAGE)
    return 0
  }
  if (name === '--version' || name === '-v') {
    console.log(VERSION)
    return 0
  }
  const load = COMMANDS[name]
  if (load == null) {
    process.stderr.write(`aistack: unknown command "${name}" (run \`aistack --help\`)\n`)
    return 2
  }
  try {
    // `aistack start` runs V8 with its options (runtime.ts): this replaces the process (same pid)
    // before the command's modules load (runtime.ts)
    if (name === 'start') execForNode(argv)
    return await (await load())(args)
  } catch (err: any) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`aistack: ${err.message}\n`)
      return 2
    }
    if (err instanceof IdentityError || err instanceof AlreadyRunningError || err instanceof NotRunningError || err instanceof ApiError || err instanceof HomeError || err instanceof StartError) {
      // one line, even for a handler's multi-line stderr carried in an API error
      process.stderr.write(`aistack: ${err.message.trim().replace(/\s*\n\s*/g, ' ')}\n`)
      return 1
    }
    // anything else is a fault of aistack: one line, the stack only on request
    process.stderr.write(`aistack: ${oneLine(err)}${process.env.AISTACK_STACK === '1' ? `\n${String(err?.stack)}` : ' (set AISTACK_STACK=1 to see where)'}\n`)
    return 1
  }
}
