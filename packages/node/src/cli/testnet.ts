import { spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { AlreadyRunningError, NotRunningError, StartError, UsageError } from '../errors.js'
import { isAlive, readRunFile } from '../run-file.js'
import { childNodeFlags } from '../runtime.js'
import { parse, parseInteger } from './args.js'
import { callApi } from './client.js'
import { printJson, table } from './output.js'
import type { RunInfo } from '../run-file.js'

export const TESTNET_FILE = 'testnet.json'
const BIN = fileURLToPath(new URL('../bin.js', import.meta.url))

export const TESTNET_HELP = `Usage: aistack testnet up|status|down [options]
       aistack testnet restart I [options]

Runs a local testnet of node processes on 127.0.0.1 with free ports. Node homes are
DIR/node-0 ... DIR/node-(N-1); node-0 is the bootstrap peer of the others. Identities are kept
in the homes, so a testnet brought up again has the same peer IDs.

  up       start N nodes in the background and wait until every node has every other node
           in its DHT routing table
  status   show the nodes, their processes, peers and routing tables
  down     stop every node cleanly (SIGKILL after --timeout) and leave no process behind
  restart I  stop node-I (if it runs) and start it again on its home (same peer ID),
           joining through a running node of the testnet

Options:
  --dir DIR        testnet directory (default ./.testnet)
  --nodes N        number of nodes for \`up\` (default 3, 1-64)
  --timeout SECS   how long \`up\` waits for the routing tables and \`down\` for the
                   processes (default 60)
  --json           print JSON`

interface TestnetNode {
  name: string
  home: string
  pid: number
  peerId?: string
  api?: string
}

interface TestnetFile {
  nodes: TestnetNode[]
  createdAt: string
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

function progress (json: boolean, message: string): void {
  if (!json) process.stderr.write(message + '\n')
}

async function readTestnet (dir: string): Promise<TestnetFile | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, TESTNET_FILE), 'utf8'))
  } catch {
    return undefined
  }
}

/** Starts one node process in the background, logging to `<home>/node.log`. */
async function spawnNode (home: string, bootstrap: string[]): Promise<number> {
  await mkdir(home, { recursive: true, mode: 0o700 })
  const log = openSync(join(home, 'node.log'), 'a')
  const args = [BIN, 'start', '--home', home, '--network', 'local', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0']
  for (const b of bootstrap) args.push('--bootstrap', b)
  // without npm's variables: a node started by an npm script stops when npm goes away
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')))
  const child = spawn(process.execPath, [...childNodeFlags(), ...args], { detached: true, stdio: ['ignore', log, log], env })
  closeSync(log)
  child.unref()
  if (child.pid == null) throw new StartError(`could not start a node process for ${home}`)
  return child.pid
}

/** Waits for a started process to write its run.json; fails if it exits first. */
async function waitReady (node: TestnetNode, deadline: number): Promise<RunInfo> {
  while (true) {
    const run = await readRunFile(node.home)
    if (run?.pid === node.pid) return run
    if (!isAlive(node.pid)) {
      const log = await readFile(join(node.home, 'node.log'), 'utf8').catch(() => '')
      const last = log.trim().split('\n').filter(l => l.startsWith('aistack:') || / (error|warn) /.test(l)).pop() ?? log.trim().split('\n').pop() ?? ''
      throw new StartError(`testnet up: ${node.name} exited before it was ready (${last.trim()}); see ${join(node.home, 'node.log')}`)
    }
    if (Date.now() > deadline) throw new StartError(`testnet up: ${node.name} was not ready in time; see ${join(node.home, 'node.log')}`)
    await sleep(100)
  }
}

async function up (dir: string, count: number, timeoutMs: number, json: boolean): Promise<number> {
  const existing = await readTestnet(dir)
  const live = existing?.nodes.filter(n => isAlive(n.pid)) ?? []
  if (live.length > 0) throw new AlreadyRunningError(`testnet up: ${live.length} node(s) of the testnet in ${dir} are still running; run \`aistack testnet down --dir ${dir}\` first`)
  await mkdir(dir, { recursive: true })
  const deadline = Date.now() + timeoutMs
  const nodes: TestnetNode[] = []
  const save = async (): Promise<void> => {
    await writeFile(join(dir, TESTNET_FILE), JSON.stringify({ nodes, createdAt: new Date().toISOString() } satisfies TestnetFile, null, 2) + '\n')
  }

  progress(json, `starting node-0 (bootstrap) in ${join(dir, 'node-0')}`)
  const first: TestnetNode = { name: 'node-0', home: join(dir, 'node-0'), pid: await spawnNode(join(dir, 'node-0'), []) }
  nodes.push(first)
  await save()
  const firstRun = await waitReady(first, deadline)
  Object.assign(first, { peerId: firstRun.peerId, api: firstRun.api.url })
  const bootstrapAddr = firstRun.multiaddrs.find(a => a.includes('/tcp/')) ?? firstRun.multiaddrs[0]

  // one node at a time, each once node-0 has the one before in its routing table: a node
  // looks for its neighbours through node-0 a second after it starts and (Kad-DHT) not again
  // for five minutes, so two nodes that both asked before node-0 knew the other would stay
  // without each other that long
  const runs = new Map<string, RunInfo>([['node-0', firstRun]])
  for (let i = 1; i < count; i++) {
    const home = join(dir, `node-${i}`)
    const node: TestnetNode = { name: `node-${i}`, home, pid: await spawnNode(home, [bootstrapAddr]) }
    nodes.push(node)
    await save()
    const run = await waitReady(node, deadline)
    Object.assign(node, { peerId: run.peerId, api: run.api.url })
    runs.set(node.name, run)
    while (!((await callApi(firstRun, 'GET', '/v1/dht').catch(() => ({ routingTable: [] }))).routingTable as string[]).includes(run.peerId)) {
      if (Date.now() > deadline) throw new StartError(`testnet up: node-0 did not add ${node.name} to its routing table within ${timeoutMs / 1000} s (see ${join(home, 'node.log')})`)
      await sleep(100)
    }
    progress(json, `${node.name} joined (${i + 1}/${count})`)
  }
  await save()

  const all = nodes.map(n => n.peerId as string)
  let last = ''
  while (true) {
    const missing: string[] = []
    for (const node of nodes) {
      const dht = await callApi(runs.get(node.name) as RunInfo, 'GET', '/v1/dht').catch(() => ({ routingTable: [] }))
      const lacking = all.filter(p => p !== node.peerId && !(dht.routingTable as string[]).includes(p))
      if (lacking.length > 0) missing.push(`${node.name} lacks ${lacking.length}`)
    }
    const line = `routing tables complete on ${count - missing.length}/${count} node(s)`
    if (line !== last) progress(json, line)
    last = line
    if (missing.length === 0) break
    if (Date.now() > deadline) {
      throw new StartError(`testnet up: the routing tables did not fill within ${timeoutMs / 1000} s (${missing.join(', ')}); the nodes are still running: inspect them with \`aistack testnet status --dir ${dir}\`, stop them with \`aistack testnet down --dir ${dir}\``)
    }
    await sleep(250)
  }
  return status(dir, json)
}

async function status (dir: string, json: boolean): Promise<number> {
  const testnet = await readTestnet(dir)
  if (testnet == null) throw new UsageError(`testnet: no testnet in ${dir} (no ${TESTNET_FILE}); start one with \`aistack testnet up --dir ${dir}\``)
  const rows = []
  for (const node of testnet.nodes) {
    const alive = isAlive(node.pid)
    const run = alive ? await readRunFile(node.home) : undefined
    let peers: number | null = null
    let routingTable: number | null = null
    let multiaddr: string | null = null
    if (run != null) {
      const [p, d] = await Promise.all([
        callApi(run, 'GET', '/v1/peers').catch(() => null),
        callApi(run, 'GET', '/v1/dht').catch(() => null)
      ])
      peers = p?.peers.length ?? null
      routingTable = d?.routingTableSize ?? null
      multiaddr = run.multiaddrs[0] ?? null
    }
    rows.push({ name: node.name, pid: node.pid, running: alive, peerId: node.peerId ?? run?.peerId ?? null, api: run?.api.url ?? null, multiaddr, peers, routingTable, home: node.home })
  }
  if (json) {
    printJson({ dir, nodes: rows })
  } else {
    console.log(table(['NODE', 'PID', 'STATE', 'PEERS', 'DHT', 'API', 'PEER ID'],
      rows.map(r => [r.name, r.pid, r.running ? 'running' : 'stopped', r.peers, r.routingTable, r.api, r.peerId])))
  }
  return 0
}

async function down (dir: string, timeoutMs: number, json: boolean): Promise<number> {
  const testnet = await readTestnet(dir)
  if (testnet == null) throw new NotRunningError(`testnet down: no testnet in ${dir} (no ${TESTNET_FILE}); nothing to stop`)
  const live = testnet.nodes.filter(n => isAlive(n.pid))
  progress(json, `stopping ${live.length} node(s)`)
  for (const node of live) {
    try { process.kill(node.pid, 'SIGTERM') } catch {}
  }
  const deadline = Date.now() + timeoutMs
  const killed: string[] = []
  while (live.some(n => isAlive(n.pid))) {
    if (Date.now() > deadline) {
      for (const node of live.filter(n => isAlive(n.pid))) {
        try { process.kill(node.pid, 'SIGKILL') } catch {}
        killed.push(node.name)
      }
      break
    }
    await sleep(100)
  }
  // a SIGKILLed node cannot clean up after itself
  for (const node of testnet.nodes) {
    const run = await readRunFile(node.home)
    if (run != null && !isAlive(run.pid)) await rm(join(node.home, 'run.json'), { force: true })
  }
  await rm(join(dir, TESTNET_FILE), { force: true })
  if (json) printJson({ stopped: live.map(n => n.name), killed })
  else console.log(`stopped ${live.length} node(s)${killed.length > 0 ? ` (${killed.join(', ')} did not stop in time and were killed)` : ''}`)
  return 0
}

async function restart (dir: string, index: number, timeoutMs: number, json: boolean): Promise<number> {
  const testnet = await readTestnet(dir)
  if (testnet == null) throw new NotRunningError(`testnet restart: no testnet in ${dir} (no ${TESTNET_FILE}); start one with \`aistack testnet up --dir ${dir}\``)
  const node = testnet.nodes[index]
  if (node == null) throw new UsageError(`testnet restart: no node-${index} (the testnet has node-0 to node-${testnet.nodes.length - 1})`)
  const deadline = Date.now() + timeoutMs
  if (isAlive(node.pid)) {
    progress(json, `stopping ${node.name} (pid ${node.pid})`)
    try { process.kill(node.pid, 'SIGTERM') } catch {}
    while (isAlive(node.pid)) {
      if (Date.now() > deadline) {
        try { process.kill(node.pid, 'SIGKILL') } catch {}
        await rm(join(node.home, 'run.json'), { force: true })
        break
      }
      await sleep(100)
    }
  }
  // join through another running node of the testnet
  let bootstrap: string | undefined
  for (const other of testnet.nodes) {
    if (other === node) continue
    const run = await readRunFile(other.home)
    if (run != null && isAlive(run.pid)) {
      bootstrap = run.multiaddrs.find(a => a.includes('/tcp/')) ?? run.multiaddrs[0]
      break
    }
  }
  progress(json, `starting ${node.name} in ${node.home}`)
  node.pid = await spawnNode(node.home, bootstrap != null ? [bootstrap] : [])
  await writeFile(join(dir, TESTNET_FILE), JSON.stringify(testnet, null, 2) + '\n')
  const run = await waitReady(node, deadline)
  Object.assign(node, { peerId: run.peerId, api: run.api.url })
  await writeFile(join(dir, TESTNET_FILE), JSON.stringify(testnet, null, 2) + '\n')
  if (json) printJson({ restarted: node.name, pid: node.pid, peerId: run.peerId, api: run.api.url })
  else console.log(`restarted ${node.name} (pid ${node.pid}, peer ID ${run.peerId})`)
  return 0
}

export async function testnetCommand (args: string[]): Promise<number> {
  const [action, ...rest] = args
  if (action == null || action === '--help' || action === '-h') {
    console.log(TESTNET_HELP)
    return 0
  }
  if (!['up', 'status', 'down', 'restart'].includes(action)) throw new UsageError(`testnet: unknown action "${action}" (known: up, status, down, restart)`)
  const { values, positionals } = parse(`testnet ${action}`, rest, {
    dir: { type: 'string' },
    nodes: { type: 'string' },
    timeout: { type: 'string' },
    json: { type: 'boolean' }
  }, { positionals: action === 'restart' ? 1 : 0 })
  if (values.help === true) {
    console.log(TESTNET_HELP)
    return 0
  }
  const dir = resolve(typeof values.dir === 'string' ? values.dir : '.testnet')
  const timeoutMs = 1000 * (typeof values.timeout === 'string' ? parseInteger(values.timeout, '--timeout', 1, 3600) : 60)
  const json = values.json === true
  switch (action) {
    case 'up': return up(dir, typeof values.nodes === 'string' ? parseInteger(values.nodes, '--nodes', 1, 64) : 3, timeoutMs, json)
    case 'status': return status(dir, json)
    case 'down': return down(dir, timeoutMs, json)
    case 'restart': {
      if (positionals[0] == null) throw new UsageError('testnet restart: the node number is missing (aistack testnet restart I)')
      return restart(dir, parseInteger(positionals[0], 'testnet restart', 0, 63), timeoutMs, json)
    }
    default: throw new UsageError(`testnet: unknown action "${action}" (known: up, status, down, restart)`)
  }
}
