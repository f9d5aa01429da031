import { resolveHome } from '../paths.js'
import { isAlive } from '../run-file.js'
import { parse } from './args.js'
import { apiFor } from './client.js'
import { printJson, table } from './output.js'

export const HOME_HELP = '  --home DIR          node home (default $AISTACK_HOME or ~/.aistack)'

export const HELP: Record<string, string> = {
  id: `Usage: aistack id [--home DIR] [--json]

Shows the running node's peer ID, DID, addresses and protocols.

${HOME_HELP}
  --json              print JSON`,
  peers: `Usage: aistack peers [--home DIR] [--json]

Lists the running node's open connections: peer, address, transport, encryption, latency.

${HOME_HELP}
  --json              print JSON`,
  stop: `Usage: aistack stop [--home DIR] [--json]

Stops the running node cleanly and waits for its process to end.

${HOME_HELP}
  --json              print JSON ({stopped, pid})`
}

export async function idCommand (args: string[]): Promise<number> {
  const { values } = parse('id', args, { home: { type: 'string' }, json: { type: 'boolean' } })
  if (values.help === true) return help('id')
  const { call } = await apiFor(resolveHome(values.home as string | undefined))
  const id = await call('GET', '/v1/id')
  if (values.json === true) {
    printJson(id)
  } else {
    console.log([
      `peer ID    ${id.peerId}`,
      `DID        ${id.did ?? '-'}`,
      `network    ${id.network}`,
      `version    ${id.version}`,
      'addresses',
      ...id.multiaddrs.map((a: string) => `  ${a}`),
      'bootstrap',
      ...(id.bootstrap?.length > 0 ? id.bootstrap.map((b: any) => `  ${b.addr}  ${b.state}${b.error != null ? `: ${b.error as string}` : ''}${b.retryAt != null ? ` (retry at ${b.retryAt as string})` : ''}`) : ['  none']),
      'protocols',
      ...id.protocols.map((p: string) => `  ${p}`)
    ].join('\n'))
  }
  return 0
}

export async function peersCommand (args: string[]): Promise<number> {
  const { values } = parse('peers', args, { home: { type: 'string' }, json: { type: 'boolean' } })
  if (values.help === true) return help('peers')
  const { call } = await apiFor(resolveHome(values.home as string | undefined))
  const { peers } = await call('GET', '/v1/peers')
  if (values.json === true) {
    printJson({ peers })
  } else if (peers.length === 0) {
    console.log('no connected peers')
  } else {
    console.log(table(
      ['PEER', 'TRANSPORT', 'ENCRYPTION', 'PQ', 'LATENCY', 'ADDRESS'],
      peers.map((p: any) => [p.peerId, p.transport, p.encryption, p.pq === true ? 'yes' : 'no', p.latencyMs == null ? '-' : `${p.latencyMs} ms`, p.multiaddr])
    ))
  }
  return 0
}

export async function stopCommand (args: string[], { timeoutMs = 30_000 } = {}): Promise<number> {
  const { values } = parse('stop', args, { home: { type: 'string' }, json: { type: 'boolean' } })
  if (values.help === true) return help('stop')
  const home = resolveHome(values.home as string | undefined)
  const { info, call } = await apiFor(home)
  await call('POST', '/v1/stop')
  const deadline = Date.now() + timeoutMs
  while (isAlive(info.pid)) {
    if (Date.now() > deadline) throw new Error(`the node (pid ${info.pid}) did not stop within ${timeoutMs / 1000} s`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  if (values.json === true) printJson({ stopped: true, pid: info.pid })
  else console.log(`stopped the node on ${home} (pid ${info.pid})`)
  return 0
}

export function help (command: string): number {
  console.log(HELP[command])
  return 0
}
