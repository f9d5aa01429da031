import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { UsageError } from '../errors.js'
import { resolveHome } from '../paths.js'
import { parse } from './args.js'
import { apiFor } from './client.js'
import { HOME_HELP } from './commands.js'
import { printJson, table } from './output.js'

// commands on this node's capabilities, connections and routing table, all through its API

export const NETWORK_HELP: Record<string, string> = {
  caps: `Usage: aistack caps [list] [--network] [--home DIR] [--json]
       aistack caps add FILE [--home DIR] [--json]
       aistack caps rm NAME [--home DIR]

The capabilities this node serves. \`add\` reads a capability definition (JSON, as in
config.json's "capabilities": {name, description, handler: {type: "exec"|"http", ...}}) from a
file, or from stdin with "-"; it is kept in the node's datastore and served again after a
restart until \`rm\`. To find capabilities on the network by meaning, use \`aistack find\`.

${HOME_HELP}
  --network           list everything the node knows of the network instead: each capability
                      with its owner, its owner's liveness and when its record expires
  --json              print JSON`,
  connect: `Usage: aistack connect MULTIADDR [--home DIR] [--json]

Connects the running node to a peer (the multiaddr ends in /p2p/<peer id>); 10 s limit.

${HOME_HELP}
  --json              print JSON`,
  disconnect: `Usage: aistack disconnect PEER_ID [--home DIR]

Closes the running node's connections to a peer (it may connect again later).

${HOME_HELP}`,
  dht: `Usage: aistack dht [--home DIR] [--json]

Shows the running node's DHT mode, protocol and routing table (the peers it routes through).

${HOME_HELP}
  --json              print JSON`
}

function help (name: string): number {
  console.log(NETWORK_HELP[name])
  return 0
}

export async function capsCommand (args: string[]): Promise<number> {
  const { values, positionals } = parse('caps', args, { home: { type: 'string' }, json: { type: 'boolean' }, network: { type: 'boolean' } }, { positionals: 2 })
  if (values.help === true) return help('caps')
  const [action = 'list', arg] = positionals
  const home = resolveHome(values.home as string | undefined)
  const json = values.json === true
  if (action === 'list') {
    if (arg != null) throw new UsageError(`caps list: unexpected argument "${arg}"`)
    const { call } = await apiFor(home)
    if (values.network === true) {
      const known = await call('GET', '/v1/capabilities/network?limit=10000')
      if (json) printJson(known)
      else if (known.capabilities.length === 0) console.log('no capability known on the network yet (`aistack find "<text>"` looks one up)')
      else {
        const now = Date.now()
        console.log(table(['NAME', 'OWNER', 'LIVENESS', 'EXPIRES', 'DESCRIPTION'], known.capabilities.map((c: any) => [
          c.name, c.peerId, c.liveness ?? '-', `${Math.max(0, Math.round((c.expiresAt - now) / 60_000))} min`, c.description
        ])))
      }
      return 0
    }
    const { capabilities } = await call('GET', '/v1/capabilities')
    if (json) printJson({ capabilities })
    else if (capabilities.length === 0) console.log('no capability served (add one with `aistack caps add FILE`)')
    else console.log(table(['NAME', 'HANDLER', 'RUNNING', 'DESCRIPTION'], capabilities.map((c: any) => [c.name, c.handler, `${String(c.running)}/${String(c.limits?.concurrency)}`, c.description])))
    return 0
  }
  if (action === 'add') {
    if (arg == null) throw new UsageError('caps add: the file with the capability definition is missing (aistack caps add FILE, or - for stdin)')
    let text: string
    try {
      text = arg === '-' ? readFileSync(0, 'utf8') : await readFile(arg, 'utf8')
    } catch (err: any) {
      throw new UsageError(`caps add: cannot read ${arg} (${String(err.code ?? err.message)})`)
    }
    let spec: unknown
    try {
      spec = JSON.parse(text)
    } catch (err: any) {
      throw new UsageError(`caps add: ${arg} is not valid JSON (${String(err.message)})`)
    }
    const { call } = await apiFor(home)
    const added = await call('POST', '/v1/capabilities', spec)
    if (json) printJson(added)
    else console.log(`added ${String(added.name)} (${String(added.handler)} handler); kept across restarts until \`aistack caps rm ${String(added.name)}\``)
    return 0
  }
  if (action === 'rm') {
    if (arg == null) throw new UsageError('caps rm: the capability name is missing (aistack caps rm NAME)')
    const { call } = await apiFor(home)
    await call('DELETE', `/v1/capabilities/${encodeURIComponent(arg)}`)
    if (json) printJson({ removed: arg })
    else console.log(`removed ${arg}`)
    return 0
  }
  throw new UsageError(`caps: unknown action "${action}" (known: list, add, rm)`)
}

export async function connectCommand (args: string[]): Promise<number> {
  const { values, positionals } = parse('connect', args, { home: { type: 'string' }, json: { type: 'boolean' } }, { positionals: 1 })
  if (values.help === true) return help('connect')
  const addr = positionals[0]
  if (addr == null) throw new UsageError('connect: the multiaddr is missing (aistack connect /ip4/.../tcp/.../p2p/<peer id>)')
  const { call } = await apiFor(resolveHome(values.home as string | undefined))
  const connected = await call('POST', '/v1/peers', { multiaddr: addr })
  if (values.json === true) printJson(connected)
  else console.log(`connected to ${String(connected.peerId)} at ${String(connected.multiaddr)}`)
  return 0
}

export async function disconnectCommand (args: string[]): Promise<number> {
  const { values, positionals } = parse('disconnect', args, { home: { type: 'string' }, json: { type: 'boolean' } }, { positionals: 1 })
  if (values.help === true) return help('disconnect')
  // a multiaddr with /p2p/ names its peer too
  const peer = /\/p2p\/([^/]+)$/.exec(positionals[0] ?? '')?.[1] ?? positionals[0]
  if (peer == null) throw new UsageError('disconnect: the peer ID is missing (aistack disconnect PEER_ID)')
  const { call } = await apiFor(resolveHome(values.home as string | undefined))
  await call('DELETE', `/v1/peers/${encodeURIComponent(peer)}`)
  if (values.json === true) printJson({ disconnected: peer })
  else console.log(`disconnected from ${peer}`)
  return 0
}

export async function dhtCommand (args: string[]): Promise<number> {
  const { values } = parse('dht', args, { home: { type: 'string' }, json: { type: 'boolean' } })
  if (values.help === true) return help('dht')
  const { call } = await apiFor(resolveHome(values.home as string | undefined))
  const dht = await call('GET', '/v1/dht')
  if (values.json === true) {
    printJson(dht)
  } else {
    console.log([
      `mode      ${String(dht.mode)}`,
      `protocol  ${String(dht.protocol)}`,
      `routing table: ${String(dht.routingTableSize)} peer(s)`,
      ...dht.routingTable.map((p: string) => `  ${p}`)
    ].join('\n'))
  }
  return 0
}
