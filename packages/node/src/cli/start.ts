import { spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { open, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { parseBootstrapAddr, parseHostPort, parseLogLevel, parseMultiaddr, parseNetwork, parsePq } from '../config.js'
import { startDaemon } from '../daemon.js'
import { NotRunningError, StartError, UsageError } from '../errors.js'
import { initHome, makeHome } from '../home.js'
import { IDENTITY_FILE } from '../identity.js'
import { createLog } from '../log.js'
import { resolveHome } from '../paths.js'
import { isAlive, readRunFile } from '../run-file.js'
import { childNodeFlags } from '../runtime.js'
import { parse, parseInteger } from './args.js'
import { HOME_HELP } from './commands.js'
import { printJson } from './output.js'
import type { AgentConfig } from '../config.js'

// init and start load the whole node; the other commands only talk to its API

const HELP: Record<string, string> = {
  init: `Usage: aistack init [--home DIR] [--force]

Creates the node's Ed25519 identity (identity.key, mode 0600) and a config.json with every
default spelled out. An existing identity is kept unless --force is given.

${HOME_HELP}
  --force             replace an existing identity (the node gets a new peer ID)`,
  start: `Usage: aistack start [options]

Runs a node in the foreground until SIGINT/SIGTERM. Creates the home on first start, writes
<home>/run.json ({peerId, did, multiaddrs, api: {url, token}, pid}) once ready and removes it on stop.

${HOME_HELP}
  --config FILE       config file (default <home>/config.json)
  --listen MULTIADDR  address to listen on; repeatable (default /ip4/0.0.0.0/tcp/4011 and
                      /ip4/0.0.0.0/udp/4011/quic-v1; use port 0 for a free port)
  --announce MULTIADDR address to announce instead; repeatable
  --bootstrap MULTIADDR peer to join through (with /p2p/<peer id>); repeatable
  --network NAME      local (default) or testnet
  --mdns              discover peers on the LAN with mDNS
  --dht-mode MODE     server (default) or client
  --api HOST:PORT     HTTP API address (default 127.0.0.1:5454; port 0 picks a free one)
  --pq MODE           post-quantum policy: preferred (default: hybrid Noise + ML-KEM-768
                      with aistack peers, /noise with stock peers, no downgrade for a peer
                      that once used the hybrid), required (hybrid only, no QUIC), off
  --log-level LEVEL   error, warn, info (default) or debug
  --detach            run in the background, logging to <home>/node.log (see \`aistack logs\`);
                      returns once the node is ready
  --json              print the start summary and logs as JSON lines

The node runs Node's V8 with --single-threaded-gc and --initial-old-space-size=128: the command
re-executes itself with them (same pid). AISTACK_GC=parallel keeps V8's defaults
(docs/configuration.md, "The node's process").`,
  logs: `Usage: aistack logs [--home DIR] [-n N] [--follow]

Prints the end of <home>/node.log, the log of a node started with \`aistack start --detach\`.

${HOME_HELP}
  -n, --lines N       how many lines from the end (default 50)
  -f, --follow        keep printing what is added, until Ctrl-C`
}

function help (command: string): number {
  console.log(HELP[command])
  return 0
}

export async function initCommand (args: string[]): Promise<number> {
  const { values } = parse('init', args, { home: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' } })
  if (values.help === true) return help('init')
  const home = resolveHome(values.home as string | undefined)
  const running = await readRunFile(home)
  if (values.force === true && running != null && isAlive(running.pid)) {
    throw new UsageError(`init: a node is running on ${home} (pid ${running.pid}); stop it before replacing its identity`)
  }
  const result = await initHome(home, { force: values.force === true, refuseExisting: true })
  const peerId = (await import('@libp2p/peer-id')).peerIdFromPrivateKey(result.privateKey).toString()
  if (values.json === true) {
    printJson({ home, peerId, identity: join(home, IDENTITY_FILE), createdConfig: result.createdConfig })
  } else {
    console.log(`initialised ${home}\n  peer ID   ${peerId}\n  identity  ${join(home, IDENTITY_FILE)}\n  config    ${join(home, 'config.json')}${result.createdConfig ? '' : ' (kept)'}`)
  }
  return 0
}

function startOverrides (values: Record<string, unknown>): Partial<AgentConfig> {
  const o: Partial<AgentConfig> = {}
  const list = (name: string): string[] | undefined => {
    const v = values[name] as string[] | undefined
    return v?.map(a => parseMultiaddr(a, `--${name}`))
  }
  const listen = list('listen')
  if (listen != null) o.listen = listen
  const announce = list('announce')
  if (announce != null) o.announce = announce
  const bootstrap = (values.bootstrap as string[] | undefined)?.map(a => parseBootstrapAddr(a, '--bootstrap'))
  if (bootstrap != null) o.bootstrap = bootstrap
  if (typeof values.network === 'string') {
    parseNetwork(values.network)
    o.network = values.network
  }
  if (values.mdns === true) o.mdns = true
  if (typeof values['dht-mode'] === 'string') {
    const mode = values['dht-mode']
    if (mode !== 'server' && mode !== 'client') throw new UsageError(`--dht-mode: unknown mode "${mode}" (known: server, client)`)
    o.dht = { mode }
  }
  if (typeof values.pq === 'string') o.pq = parsePq(values.pq)
  if (typeof values['log-level'] === 'string') o.logLevel = parseLogLevel(values['log-level'])
  return o
}

/**
 * Under an npm script (`npm start`) the node runs as npm → sh → node, and `kill <npm pid>`
 * ends npm and sh but not the node, which would live on under PID 1 with its run.json. So a
 * node started by npm stops when its parent goes away (checked every second).
 */
function watchParent (onGone: () => void): NodeJS.Timeout | undefined {
  if (process.env.npm_lifecycle_event == null) return undefined
  const parent = process.ppid
  const timer = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(timer)
    onGone()
  }, 1000)
  timer.unref()
  return timer
}

/** Starts `aistack start` again in the background with its output in `<home>/node.log`; waits until it is ready. */
async function detach (home: string, args: string[], json: boolean, { timeoutMs = 120_000 } = {}): Promise<number> {
  await makeHome(home)
  const logFile = join(home, LOG_FILE)
  const fd = openSync(logFile, 'a')
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')))
  const child = spawn(process.execPath, [...childNodeFlags(), process.argv[1], 'start', ...args], { detached: true, stdio: ['ignore', fd, fd], env })
  closeSync(fd)
  child.unref()
  let exited: number | null | undefined
  child.once('exit', code => { exited = code })
  const deadline = Date.now() + timeoutMs
  while (true) {
    const run = await readRunFile(home)
    if (run != null && run.pid === child.pid) {
      if (json) printJson({ event: 'ready', home, pid: run.pid, peerId: run.peerId, api: { url: run.api.url }, log: logFile })
      else console.log(`aistack node started in the background (pid ${run.pid}, peer ID ${run.peerId})\n  log   ${logFile} (\`aistack logs --home ${home}\`)\n  stop  \`aistack stop --home ${home}\``)
      return 0
    }
    if (exited !== undefined) {
      const last = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').filter(l => l.startsWith('aistack:')).pop()
      throw new StartError(`the node did not start: ${last?.replace(/^aistack: /, '') ?? `it exited with status ${String(exited)}`} (log in ${logFile})`)
    }
    if (Date.now() > deadline) throw new StartError(`the node (pid ${String(child.pid)}) was not ready within ${timeoutMs / 1000} s; see ${logFile}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

export const LOG_FILE = 'node.log'

export async function logsCommand (args: string[]): Promise<number> {
  const { values } = parse('logs', args, { home: { type: 'string' }, lines: { type: 'string', short: 'n' }, follow: { type: 'boolean', short: 'f' } })
  if (values.help === true) return help('logs')
  const home = resolveHome(values.home as string | undefined)
  const count = typeof values.lines === 'string' ? parseInteger(values.lines, '--lines', 0, 1_000_000) : 50
  const file = join(home, LOG_FILE)
  let size: number
  try {
    size = (await stat(file)).size
  } catch {
    throw new NotRunningError(`no log in ${file}: only a node started with \`aistack start --detach --home ${home}\` writes one`)
  }
  // the last `count` lines: read at most the last 4 MiB
  const handle = await open(file, 'r')
  try {
    const start = Math.max(0, size - 4 * 1024 * 1024)
    const buffer = Buffer.alloc(size - start)
    await handle.read(buffer, 0, buffer.length, start)
    const lines = buffer.toString('utf8').split('\n')
    if (lines[lines.length - 1] === '') lines.pop()
    if (count > 0) process.stdout.write(lines.slice(-count).join('\n') + '\n')
    if (values.follow !== true) return 0
    let offset = size
    for (;;) {
      await new Promise(resolve => setTimeout(resolve, 500))
      const now = (await stat(file)).size
      if (now < offset) offset = 0 // the log was truncated
      if (now > offset) {
        const chunk = Buffer.alloc(now - offset)
        await handle.read(chunk, 0, chunk.length, offset)
        process.stdout.write(chunk)
        offset = now
      }
    }
  } finally {
    await handle.close()
  }
}

export async function startCommand (args: string[]): Promise<number> {
  const { values } = parse('start', args, {
    home: { type: 'string' },
    config: { type: 'string' },
    listen: { type: 'string', multiple: true },
    announce: { type: 'string', multiple: true },
    bootstrap: { type: 'string', multiple: true },
    network: { type: 'string' },
    mdns: { type: 'boolean' },
    'dht-mode': { type: 'string' },
    pq: { type: 'string' },
    api: { type: 'string' },
    'log-level': { type: 'string' },
    detach: { type: 'boolean' },
    json: { type: 'boolean' }
  })
  if (values.help === true) return help('start')
  const home = resolveHome(values.home as string | undefined)
  const overrides = startOverrides(values)
  if (values.detach === true) return detach(home, args.filter(a => a !== '--detach'), values.json === true)
  const apiAddress = typeof values.api === 'string' ? parseHostPort(values.api, '--api') : undefined
  const json = values.json === true
  const log = createLog(overrides.logLevel ?? 'info', { json })

  const daemon = await startDaemon({
    home,
    configFile: values.config as string | undefined,
    overrides,
    apiAddress,
    json,
    log
  })
  const { run, node } = daemon
  if (json) {
    process.stdout.write(JSON.stringify({ event: 'ready', home, ...run, api: { url: run.api.url }, network: node.network.id }) + '\n')
  } else {
    console.log([
      `aistack node ready (network ${node.network.id})`,
      `  peer ID   ${run.peerId}`,
      `  DID       ${run.did ?? '-'}`,
      `  PQ        ${node.config.pq}`,
      ...run.multiaddrs.map((a, i) => `  ${i === 0 ? 'listening' : '         '} ${a}`),
      ...node.joining.states().map((b, i) => `  ${i === 0 ? 'bootstrap' : '         '} ${b.addr} (joining; the log says how it goes)`),
      ...(node.config.bootstrap.length === 0 && node.network.bootstrap.length === 0 ? ['  bootstrap none (a lone node until peers dial it or --bootstrap is given)'] : []),
      `  serves    ${node.capabilities.list().map(c => c.name).join(', ') || 'no capability (add some in config.json or with POST /v1/capabilities)'}`,
      `  API       ${run.api.url} (token in ${join(home, 'run.json')})`,
      '  stop with Ctrl-C or `aistack stop`'
    ].join('\n'))
  }
  let signals = 0
  const onSignal = (signal: string): void => {
    signals++
    if (signals > 1) {
      log.warn(`second ${signal}: exiting now`)
      process.exit(130)
    }
    log.info(`${signal} received`)
    daemon.stop().catch(err => { log.error(`stop failed: ${String(err.message ?? err)}`) })
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const watch = watchParent(() => {
    log.info('the npm process that started this node is gone: stopping')
    daemon.stop().catch(err => { log.error(`stop failed: ${String(err.message ?? err)}`) })
  })
  await daemon.stopped
  clearInterval(watch)
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  return 0
}
