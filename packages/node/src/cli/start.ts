import { join } from 'node:path'
import { parseBootstrapAddr, parseHostPort, parseLogLevel, parseMultiaddr, parseNetwork, parsePq } from '../config.js'
import { startDaemon } from '../daemon.js'
import { UsageError } from '../errors.js'
import { initHome } from '../home.js'
import { IDENTITY_FILE } from '../identity.js'
import { createLog } from '../log.js'
import { resolveHome } from '../paths.js'
import { isAlive, readRunFile } from '../run-file.js'
import { parse } from './args.js'
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
  --json              print the start summary and logs as JSON lines`,
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
    json: { type: 'boolean' }
  })
  if (values.help === true) return help('start')
  const home = resolveHome(values.home as string | undefined)
  const overrides = startOverrides(values)
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
