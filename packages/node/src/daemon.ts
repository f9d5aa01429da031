import { join } from 'node:path'
import { ApiServer } from './api/server.js'
import { capabilityRoutes } from './api/routes-capabilities.js'
import { coreRoutes } from './api/routes.js'
import { taskRoutes } from './api/routes-tasks.js'
import { telemetryRoutes } from './api/routes-telemetry.js'
import { loadConfig } from './config.js'
import { AlreadyRunningError } from './errors.js'
import { CONFIG_FILE, initHome } from './home.js'
import { createLog } from './log.js'
import { createAgentNode } from './node.js'
import { isAlive, readRunFile, removeRunFile, writeRunFile } from './run-file.js'
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
  let node: AgentNode
  try {
    node = await createAgentNode({ config, privateKey, home })
  } catch (err: any) {
    if (/LOCK|lock/.test(String(err.message)) || err.code === 'LEVEL_DATABASE_NOT_OPEN') {
      throw new AlreadyRunningError(`the datastore in ${join(home, 'datastore')} is in use by another process`)
    }
    throw err
  }
  await node.start()

  const { promise: stopped, resolve: onStopped } = Promise.withResolvers<void>()
  let stopping: Promise<void> | undefined
  const api = new ApiServer(config.api)
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      log.info('stopping')
      await api.stop().catch(err => { log.warn(`API stop: ${String(err.message ?? err)}`) })
      await node.stop().catch(err => { log.warn(`node stop: ${String(err.message ?? err)}`) })
      await removeRunFile(home)
      log.info('stopped')
      onStopped()
    })()
    return stopping
  }
  coreRoutes(api, { node, onStop: () => { stop().catch(err => { log.error(`stop failed: ${String(err.message ?? err)}`) }) } })
  capabilityRoutes(api, { node })
  taskRoutes(api, { node })
  telemetryRoutes(api, { node })
  try {
    await api.start()
  } catch (err: any) {
    await node.stop()
    if (err.code === 'EADDRINUSE') throw new AlreadyRunningError(`the API address ${config.api.host}:${config.api.port} is in use; pass --api HOST:PORT (port 0 picks a free one)`)
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
  return { node, api, run, stopped, stop }
}
