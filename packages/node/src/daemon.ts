import { join } from 'node:path'
import { IdempotencyStore } from './api/idempotency.js'
import { ApiServer } from './api/server.js'
import { capabilityRoutes } from './api/routes-capabilities.js'
import { coreRoutes } from './api/routes.js'
import { taskRoutes } from './api/routes-tasks.js'
import { gatewayRoutes } from './api/routes-gateways.js'
import { killAllProcessGroups, liveProcessGroups, loadPersistedCapabilities } from './capabilities/index.js'
import { telemetryRoutes } from './api/routes-telemetry.js'
import { dashboardRoutes } from './api/routes-dashboard.js'
import { loadConfig } from './config.js'
import { AlreadyRunningError, StartError, UsageError } from './errors.js'
import { CONFIG_FILE, initHome } from './home.js'
import { usableListenAddrs } from './listen.js'
import { createLog } from './log.js'
import { createAgentNode } from './node.js'
import { isAlive, readRunFile, removeRunFile, writeRunFile } from './run-file.js'
import { lowerV8BackgroundThreads, noExecReason, runtimeInfo, singleThreadedGc } from './runtime.js'
import type { AgentConfig } from './config.js'
import type { Log } from './log.js'
import type { AgentNode } from './node.js'
import type { RunInfo } from './run-file.js'

export interface DaemonInit {
  home: string
  /** Config file; `<home>/config.json` when absent. */
  configFile?: string
  /** Values that override the config file (from command-line flags). */
  overrides?: Partial<AgentConfig>
  /** API address that overrides the config file's `api.host` and `api.port`. */
  apiAddress?: { host: string, port: number }
  json?: boolean
  log?: Log
}

export interface Daemon {
  node: AgentNode
  api: ApiServer
  run: RunInfo
  /** Resolves when the node has stopped (by `stop()` or `POST /v1/stop`). */
  stopped: Promise<void>
  stop: () => Promise<void>
}

/**
 * Turns libp2p's listen failure (a multi-line message with advice about its own options) into
 * one line naming the address and what to do.
 */
function listenError (err: any): Error {
  const message = String(err?.message ?? err)
  const failed = [...message.matchAll(/^\s+(\/\S+): (.*)$/gm)].map(m => ({ addr: m[1], error: m[2] }))
  const first = failed.find(f => /EADDRINUSE|EADDRNOTAVAIL|EACCES/.test(f.error)) ?? failed[0]
  if (first == null) return err
  if (/EADDRINUSE/.test(first.error)) return new StartError(`listen address ${first.addr} is in use (another node or program has that port); pass --listen with another port, or port 0 for a free one`)
  if (/EADDRNOTAVAIL/.test(first.error)) return new StartError(`listen address ${first.addr}: this host has no such IP address; use 0.0.0.0 (all interfaces) or one of the host's addresses`)
  if (/EACCES/.test(first.error)) return new StartError(`listen address ${first.addr}: permission denied (ports below 1024 need privileges); pick a port above 1023`)
  return new StartError(`cannot listen on ${first.addr}: ${first.error.split('\n')[0]}`)
}

/**
 * Logs at info what happens on the node, one line each: peers connecting and leaving,
 * capabilities added and removed, requests served and handler failures, the bulk lane
 * listening and its lanes to peers opening and closing (a lane that will not run: warn).
 */
function logEvents (node: AgentNode, log: Log): void {
  node.libp2p.addEventListener('peer:connect', evt => {
    const addr = node.libp2p.getConnections(evt.detail)[0]?.remoteAddr.toString()
    log.info(`peer connected: ${evt.detail.toString()}${addr != null ? ` (${addr})` : ''}`)
  })
  node.libp2p.addEventListener('peer:disconnect', evt => { log.info(`peer disconnected: ${evt.detail.toString()}`) })
  let names = new Set(node.capabilities.entriesList().map(c => c.capability.name))
  node.capabilities.onChange(() => {
    const now = node.capabilities.entriesList()
    for (const c of now) if (!names.has(c.capability.name)) log.info(`capability added: ${c.capability.name} (${c.type} handler)`)
    const current = new Set(now.map(c => c.capability.name))
    for (const name of names) if (!current.has(name)) log.info(`capability removed: ${name}`)
    names = current
  })
  node.sembatch.onLane(event => {
    switch (event.type) {
      case 'listening': log.info(`bulk lane listening on TCP port ${event.port}`); break
      case 'failed': log.warn(`bulk lane not running: ${event.error.split('\n')[0]}; bulk requests stay on the node's connections (sembatch.lanePort, docs/configuration.md)`); break
      case 'open': log.info(`bulk lane to ${event.peer} open`); break
      case 'closed': log.info(`bulk lane to ${event.peer} closed`); break
      case 'dialFailed': log.info(`no bulk lane to ${event.peer}: ${event.error.split('\n')[0]}; its bulk requests stay on the node's connection (tried again in a minute)`); break
    }
  })
  node.capabilities.onServed = ({ name, ms, error }) => {
    if (error == null) log.info(`served ${name} in ${Math.round(ms)} ms`)
    else log.warn(`${name} failed after ${Math.round(ms)} ms: ${String((error as Error)?.message ?? error).trim().split('\n')[0]}`)
  }
}

/** Says at start, not at the first lookup, when a remote embedder cannot be reached. */
async function checkEmbedder (node: AgentNode, log: Log): Promise<void> {
  if (node.config.embedder.type === 'hash') return
  try {
    await node.embedder.embed(['aistack start check'], { signal: AbortSignal.timeout(10_000) })
    log.info(`embedder ${node.embedder.id} answers`)
  } catch (err: any) {
    log.warn(`the embedder (${node.config.embedder.type}) cannot be reached: ${String(err?.message ?? err).split('\n')[0]}; find, ask and capability announcements fail until it can`)
  }
}

/** Lowers V8's background threads (with --single-threaded-gc) and says how the process collects garbage */
function logRuntime (log: Log): void {
  const lowered = lowerV8BackgroundThreads()
  if (singleThreadedGc()) {
    const { v8ThreadsNice: nice, initialOldSpaceMiB: oldSpace } = runtimeInfo()
    const threads = lowered > 0 && nice != null ? `; its ${lowered} compiler threads run at a lower priority (nice ${nice})` : ''
    const heap = oldSpace != null ? `; no full collection for the old generation's size below ${oldSpace} MiB (--initial-old-space-size)` : ''
    log.info(`V8 collects garbage on the node's own threads (--single-threaded-gc)${threads}${heap}`)
    return
  }
  const why = process.env.AISTACK_GC === 'parallel' ? 'AISTACK_GC=parallel' : `not re-executed with --single-threaded-gc: ${noExecReason() ?? 'started other than by `aistack start`'}; \`node --single-threaded-gc <aistack> start\` gives it the flag`
  log.info(`V8 collects garbage with its background threads (${why})`)
}

/** Starts a node on a home directory with its HTTP API, and writes run.json once ready. */
export async function startDaemon (init: DaemonInit): Promise<Daemon> {
  const { home } = init
  const previous = await readRunFile(home)
  if (previous != null && previous.pid !== process.pid && isAlive(previous.pid)) {
    throw new AlreadyRunningError(`a node is already running on ${home} (pid ${previous.pid}, API ${previous.api.url}); stop it with \`aistack stop --home ${home}\``)
  }
  const { privateKey } = await initHome(home)
  const fileConfig = await loadConfig(init.configFile ?? join(home, CONFIG_FILE), { mustExist: init.configFile != null })
  const config: AgentConfig = { ...fileConfig, ...init.overrides }
  if (init.apiAddress != null) config.api = { ...config.api, ...init.apiAddress }
  const log = init.log ?? createLog(config.logLevel, { json: init.json })

  if (config.network !== 'local' && config.bootstrap.length === 0) {
    log.warn(`no bootstrap peers are known for network "${config.network}": pass --bootstrap MULTIADDR to join it`)
  }
  const { listen, dropped } = usableListenAddrs(config.listen, config.pq)
  for (const d of dropped) log.warn(`listen address ${d.addr} left out: ${d.reason}`)
  if (listen.length === 0 && config.listen.length > 0) {
    throw new UsageError(`none of the listen addresses can be used (${dropped.map(d => d.addr).join(', ')}); pass e.g. --listen /ip4/0.0.0.0/tcp/4011`)
  }
  let node: AgentNode
  try {
    node = await createAgentNode({ config, privateKey, home })
  } catch (err: any) {
    const text = `${String(err.message)} ${String(err.cause?.message ?? '')} ${String(err.code ?? '')} ${String(err.cause?.code ?? '')}`
    if (/LOCK|lock|LEVEL_DATABASE_NOT_OPEN|OpenFailed/.test(text) || err.name === 'OpenFailedError') {
      throw new AlreadyRunningError(`the datastore in ${join(home, 'datastore')} is in use by another process (another \`aistack start\` on ${home}?)`)
    }
    throw err
  }
  node.joining.onReport = (level, message) => { log[level](message) }
  const kept = await loadPersistedCapabilities(node.datastore, node.capabilities)
  if (kept.added.length > 0) log.info(`capabilities added through the API before, served again: ${kept.added.join(', ')}`)
  for (const s of kept.skipped) log.warn(`capability kept in ${s.key} not served: ${s.reason}`)
  logEvents(node, log)
  logRuntime(log)
  try {
    await node.start()
  } catch (err: any) {
    await node.stop().catch(() => {})
    throw listenError(err)
  }

  const { promise: stopped, resolve: onStopped } = Promise.withResolvers<void>()
  let stopping: Promise<void> | undefined
  const api = new ApiServer(config.api)
  const idempotency = new IdempotencyStore({ datastore: node.datastore, windowMs: config.api.idempotencyWindowMs, maxKeys: config.api.idempotencyMaxKeys })
  await idempotency.load().catch(err => { log.warn(`the remembered Idempotency-Keys could not be read (${String(err.message ?? err)}); retried submissions may create new tasks`) })
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      log.info('stopping')
      await gateways.close().catch(() => {})
      await api.stop().catch(err => { log.warn(`API stop: ${String(err.message ?? err)}`) })
      // stopping the node cancels the handlers it runs; what is left of their processes ends here
      await node.stop().catch(err => { log.warn(`node stop: ${String(err.message ?? err)}`) })
      const left = liveProcessGroups()
      if (left > 0) log.info(`ending ${left} handler process group(s)`)
      await killAllProcessGroups()
      await removeRunFile(home)
      log.info('stopped')
      onStopped()
    })()
    return stopping
  }
  coreRoutes(api, { node, onStop: () => { stop().catch(err => { log.error(`stop failed: ${String(err.message ?? err)}`) }) } })
  capabilityRoutes(api, { node })
  taskRoutes(api, { node, idempotency })
  const gateways = gatewayRoutes(api, config.a2a)
  telemetryRoutes(api, { node })
  dashboardRoutes(api)
  try {
    await api.start()
  } catch (err: any) {
    await node.stop()
    if (err.code === 'EADDRINUSE') throw new AlreadyRunningError(`the API address ${config.api.host}:${config.api.port} is in use; pass --api HOST:PORT (port 0 picks a free one)`)
    if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND' || err.code === 'EACCES') throw new StartError(`cannot serve the API on ${config.api.host}:${config.api.port} (${String(err.code)}); pass --api HOST:PORT with an address of this host, e.g. 127.0.0.1:5454`)
    throw err
  }

  const id = node.id()
  const run: RunInfo = {
    peerId: id.peerId,
    did: id.did,
    multiaddrs: id.multiaddrs,
    api: { url: api.url, token: api.token },
    pid: process.pid
  }
  await writeRunFile(home, run)
  checkEmbedder(node, log).catch(() => {})
  return { node, api, run, stopped, stop }
}
