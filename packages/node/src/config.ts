import { readFile } from 'node:fs/promises'
import { createEmbedder } from '@aistack/embeddings'
import { DEFAULT_PQ_MODE, PQ_MODES } from '@aistack/handshake'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { validateCapabilitySpecs } from './capabilities/spec.js'
import { checkTelemetryConfig } from './telemetry-config.js'
import { writeWhole } from './write-whole.js'
import type { CapabilitySpec } from './capabilities/spec.js'
import type { TelemetryConfig } from './telemetry-config.js'
import type { EmbedderConfig } from '@aistack/embeddings'
import type { PqMode } from '@aistack/handshake'
import { ConfigError, UsageError } from './errors.js'
import { checkA2aConfig } from './gateways/config.js'
import type { A2aConfig } from './gateways/config.js'
import { DEFAULT_CONNECTION_LIMITS } from './gater.js'
import type { ConnectionLimitsConfig } from './gater.js'

export type LogLevel = 'error' | 'warn' | 'info' | 'debug'
export type DhtMode = 'server' | 'client'

/** A named network: its id prefixes every protocol id and topic, so two networks never mix. */
export interface NetworkPreset {
  /** Network id used as the protocol prefix, e.g. `/aistack/kad/1.0.0`. */
  id: string
  /** Bootstrap peers used when none are configured. */
  bootstrap: string[]
}

export const NETWORKS: Record<string, NetworkPreset> = {
  local: { id: 'aistack', bootstrap: [] },
  // The public testnet. Its bootstrap list stays empty until the testnet's bootstrap nodes are
  // published; until then `--bootstrap` names the peers to join through.
  testnet: { id: 'aistack-testnet', bootstrap: [] }
}

export interface AgentConfig {
  /** Network preset name (`local` or `testnet`). */
  network: string
  /** Multiaddrs to listen on. */
  listen: string[]
  /** Multiaddrs to announce instead of the listen addresses (e.g. behind NAT or in Docker). */
  announce: string[]
  /** Bootstrap peers (multiaddrs with /p2p/); the network's list when empty. */
  bootstrap: string[]
  /** Discover peers on the LAN with mDNS. */
  mdns: boolean
  dht: { mode: DhtMode }
  /**
   * HTTP API: address, largest body, further `Host` names it answers to (`allowedHosts`), and
   * how long (`idempotencyWindowMs`) and how many (`idempotencyMaxKeys`) `Idempotency-Key`s of
   * `POST /v1/tasks` are remembered (docs/api.md).
   */
  api: { host: string, port: number, maxBodyBytes: number, allowedHosts?: string[], idempotencyWindowMs?: number, idempotencyMaxKeys?: number }
  logLevel: LogLevel
  /** Post-quantum policy: `preferred` (hybrid with aistack peers), `required` (hybrid only, no QUIC) or `off`. */
  pq: PqMode
  /**
   * How capability descriptions and queries become vectors: `offline` (default, `aistack-hybrid-v2`),
   * `hash` (`aistack-hash-v1`), `local` (an ONNX sentence encoder in `<home>/models` or `path`) or `openai`.
   */
  embedder: EmbedderConfig
  /** Capabilities this node serves, each with its handler. */
  capabilities: CapabilitySpec[]
  /** The A2A agent card and endpoint (docs/a2a.md). */
  a2a?: A2aConfig
  /** Connection limits per address, per peer and in all (docs/security.md). */
  connections: ConnectionLimitsConfig
  /**
   * Which capabilities `ask` may send a request to: at least `minSimilarity` to the query, and
   * (for fallbacks after a failure) at least `minRelativeSimilarity` times the best match's.
   */
  ask: { minSimilarity: number, minRelativeSimilarity: number }
  /** Telemetry interval, OTLP export and alert thresholds (docs/protocols/telemetry.md). */
  telemetry?: TelemetryConfig
  /**
   * Sembatch's bulk lane: bulk-class batches on a TCP connection of their own, run by a worker
   * thread, that listens on `lanePort` (0: a free one) and is started when bulk traffic first
   * arrives (docs/configuration.md, "Sembatch bulk lane").
   */
  sembatch: SembatchConfig
}

export interface SembatchConfig {
  /** Offer and use the bulk lane. */
  bulkLane: boolean
  /** TCP port of the lane, on the node's TCP listen addresses (0: one the system picks). */
  lanePort: number
}

export const DEFAULT_PORT = 4011
export const DEFAULT_API_PORT = 5454

export function defaultConfig (): AgentConfig {
  return {
    network: 'local',
    listen: [`/ip4/0.0.0.0/tcp/${DEFAULT_PORT}`, `/ip4/0.0.0.0/udp/${DEFAULT_PORT}/quic-v1`],
    announce: [],
    bootstrap: [],
    mdns: false,
    dht: { mode: 'server' },
    api: { host: '127.0.0.1', port: DEFAULT_API_PORT, maxBodyBytes: 5 * 1024 * 1024 },
    logLevel: 'info',
    pq: DEFAULT_PQ_MODE,
    embedder: { type: 'offline' },
    capabilities: [],
    connections: { ...DEFAULT_CONNECTION_LIMITS },
    ask: { minSimilarity: 0.2, minRelativeSimilarity: 0.8 },
    sembatch: { bulkLane: true, lanePort: 0 }
  }
}

export { resolveHome } from './paths.js'

const LOG_LEVELS: LogLevel[] = ['error', 'warn', 'info', 'debug']

// Fields checked one by one so that every message names the field at fault.
type Check = (value: unknown, field: string) => unknown

const isString: Check = (v, f) => {
  if (typeof v !== 'string') throw new Error(`${f} must be a string`)
  return v
}
const isBoolean: Check = (v, f) => {
  if (typeof v !== 'boolean') throw new Error(`${f} must be true or false`)
  return v
}
const isMultiaddrList: Check = (v, f) => {
  if (!Array.isArray(v)) throw new Error(`${f} must be an array of multiaddrs`)
  return v.map((item, i) => parseMultiaddr(isString(item, `${f}[${i}]`) as string, `${f}[${i}]`))
}
const isBootstrapList: Check = (v, f) => {
  if (!Array.isArray(v)) throw new Error(`${f} must be an array of multiaddrs`)
  return v.map((item, i) => parseBootstrapAddr(isString(item, `${f}[${i}]`) as string, `${f}[${i}]`))
}
const isPort: Check = (v, f) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) throw new Error(`${f} must be a port number from 0 to 65535`)
  return v
}
const inRange = (v: unknown, f: string, min: number, max: number): number => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Error(`${f} must be an integer from ${min} to ${max}`)
  return v
}
const isPositiveInt: Check = (v, f) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`${f} must be a positive integer`)
  return v
}
const isFraction: Check = (v, f) => {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`${f} must be a number from 0 to 1`)
  return v
}
const oneOf = (values: readonly string[]): Check => (v, f) => {
  if (typeof v !== 'string' || !values.includes(v)) throw new Error(`${f} must be one of ${values.join(', ')}`)
  return v
}
const object = (shape: Record<string, Check>): Check => (v, f) => {
  if (v == null || typeof v !== 'object' || Array.isArray(v)) throw new Error(f === '' ? 'must hold a JSON object ({...})' : `${f} must be an object`)
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(v)) {
    if (key.startsWith('$')) continue // "$comment" and the like
    const check = shape[key]
    if (check == null) throw new Error(`${f === '' ? '' : `${f}.`}${key} is not a known field`)
    out[key] = check(value, f === '' ? key : `${f}.${key}`)
  }
  return out
}

/** Extra top-level config fields that other modules validate (capabilities, pq, ...). */
const extensions: Record<string, Check> = {}

/** Lets a module add a top-level config field with its own validation. */
export function registerConfigField (name: string, check: (value: unknown, field: string) => unknown): void {
  extensions[name] = check
}

function configShape (): Record<string, Check> {
  return {
    network: (v, f) => { parseNetwork(isString(v, f) as string, f); return v },
    listen: isMultiaddrList,
    announce: isMultiaddrList,
    bootstrap: isBootstrapList,
    mdns: isBoolean,
    dht: object({ mode: oneOf(['server', 'client']) }),
    api: object({
      host: isString,
      port: isPort,
      maxBodyBytes: isPositiveInt,
      allowedHosts: (v, f) => {
        if (!Array.isArray(v) || v.length > 64) throw new Error(`${f} must be an array of at most 64 host names`)
        return v.map((item, i) => isString(item, `${f}[${i}]`))
      },
      idempotencyWindowMs: (v, f) => inRange(v, f, 1000, 7 * 24 * 3_600_000),
      idempotencyMaxKeys: (v, f) => inRange(v, f, 1, 1_000_000)
    }),
    logLevel: oneOf(LOG_LEVELS),
    pq: oneOf(PQ_MODES),
    embedder: (v, f) => { createEmbedder(v, f, { validateOnly: true }); return v },
    capabilities: (v, f) => validateCapabilitySpecs(v, f),
    a2a: checkA2aConfig,
    connections: object(Object.fromEntries(Object.keys(DEFAULT_CONNECTION_LIMITS).map(k => [k, isPositiveInt]))),
    ask: object({ minSimilarity: isFraction, minRelativeSimilarity: isFraction }),
    telemetry: checkTelemetryConfig,
    sembatch: object({ bulkLane: isBoolean, lanePort: isPort }),
    ...extensions
  }
}

export function parseMultiaddr (value: string, what: string): string {
  try {
    return multiaddr(value).toString()
  } catch (err: any) {
    throw new UsageError(`${what}: "${value}" is not a valid multiaddr (${String(err.message ?? err)})`)
  }
}

/**
 * Parses a bootstrap peer's multiaddr, which must end in `/p2p/<peer id>`: libp2p cannot
 * dial a peer it cannot name. Throws UsageError naming `what`.
 */
export function parseBootstrapAddr (value: string, what: string): string {
  const addr = parseMultiaddr(value, what)
  const id = /\/p2p\/([^/]+)$/.exec(addr)?.[1]
  if (id == null) throw new UsageError(`${what}: "${value}" has no /p2p/<peer id> at its end; \`aistack id\` on that node prints its full addresses`)
  try {
    peerIdFromString(id)
  } catch {
    throw new UsageError(`${what}: "${id}" in "${value}" is not a peer ID; \`aistack id\` on that node prints its full addresses`)
  }
  return addr
}

export function parseNetwork (value: string, what = '--network'): NetworkPreset {
  const preset = NETWORKS[value]
  if (preset == null) throw new UsageError(`${what}: unknown network "${value}" (known: ${Object.keys(NETWORKS).join(', ')})`)
  return preset
}

export function parseLogLevel (value: string, what = '--log-level'): LogLevel {
  if (!LOG_LEVELS.includes(value as LogLevel)) throw new UsageError(`${what}: unknown log level "${value}" (known: ${LOG_LEVELS.join(', ')})`)
  return value as LogLevel
}

export function parsePq (value: string, what = '--pq'): PqMode {
  if (!(PQ_MODES as readonly string[]).includes(value)) throw new UsageError(`${what}: unknown mode "${value}" (known: ${PQ_MODES.join(', ')})`)
  return value as PqMode
}

/** Parses `HOST:PORT` (IPv6 as `[::1]:PORT`). */
export function parseHostPort (value: string, what: string): { host: string, port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value)
  if (match == null) throw new UsageError(`${what}: "${value}" is not HOST:PORT`)
  const port = Number(match[3])
  if (port > 65535) throw new UsageError(`${what}: port ${port} is out of range (0-65535)`)
  return { host: match[1] ?? match[2], port }
}

/** Validates a parsed config object and merges it over the defaults. */
export function validateConfig (raw: unknown, source = 'config'): AgentConfig & Record<string, unknown> {
  let checked: Record<string, any>
  try {
    checked = object(configShape())(raw, '') as Record<string, any>
  } catch (err: any) {
    throw new ConfigError(`${source}: ${String(err.message ?? err)}`)
  }
  const defaults = defaultConfig()
  const connections = { ...defaults.connections, ...checked.connections }
  if (connections.reservedForKnown >= connections.maxConnections) {
    throw new ConfigError(`${source}: connections.reservedForKnown (${connections.reservedForKnown}) must be below connections.maxConnections (${connections.maxConnections})`)
  }
  return {
    ...defaults,
    ...checked,
    dht: { ...defaults.dht, ...checked.dht },
    api: { ...defaults.api, ...checked.api },
    connections,
    ask: { ...defaults.ask, ...checked.ask },
    sembatch: { ...defaults.sembatch, ...checked.sembatch }
  }
}

/** Reads and validates a config file; a missing file yields the defaults. */
export async function loadConfig (file: string, { mustExist = false } = {}): Promise<AgentConfig & Record<string, unknown>> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    if (err.code === 'ENOENT' && !mustExist) return validateConfig({}, file)
    throw new ConfigError(`${file}: cannot read the config file (${String(err.message ?? err)})`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err: any) {
    throw new ConfigError(`${file}: not valid JSON (${String(err.message ?? err)})`)
  }
  return validateConfig(raw, file)
}

/** The config.json that `aistack init` writes: every default spelled out, with a pointer to the docs. */
export async function writeDefaultConfig (file: string): Promise<void> {
  const body = {
    $comment: 'aistack node configuration; every field is described in docs/configuration.md. Command-line flags override these values.',
    ...defaultConfig()
  }
  // a process starting on the same home at the same moment reads either no file or a complete
  // one, and an existing file is never replaced
  await writeWhole(file, JSON.stringify(body, null, 2) + '\n', { mode: 0o644, replace: false })
}
