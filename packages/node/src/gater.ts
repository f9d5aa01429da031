/**
 * Connection limits: how many connections one IP address and one peer may
 * hold, and room kept for peers the node already knows, so that no single
 * address can take all of libp2p's `maxConnections` (or all of its slots for
 * connections still being upgraded) and lock everyone else out.
 *
 * libp2p 3 checks, in order, for every inbound connection: its deny and allow
 * lists, `maxIncomingPendingConnections` (all addresses together),
 * `inboundConnectionThreshold` (new connections per second from one host) and
 * `maxConnections`; then the `connectionGater` below. Outbound connections are
 * never refused here: the node chose to dial them.
 */
import { logger } from '@libp2p/logger'
import type { Connection, ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** The limits, the `connections` object of the config (all counts; times in ms). */
export interface ConnectionLimitsConfig {
  /** connections in all (libp2p `maxConnections`); inbound ones beyond it are refused */
  maxConnections: number
  /** inbound connections still being upgraded, from all addresses together */
  maxPendingInbound: number
  /** inbound connections still being upgraded from one IP address */
  maxPendingPerAddress: number
  /** inbound connections (open and being upgraded) from one IP address */
  maxInboundPerAddress: number
  /** connections with one peer, both directions */
  maxPerPeer: number
  /** of maxConnections, inbound slots that only known peers may take */
  reservedForKnown: number
  /** new inbound connections per second from one IP address */
  inboundRatePerAddress: number
  /** time an inbound connection has to finish its upgrade (encryption and muxer) */
  upgradeTimeoutMs: number
}

/** The default limits; every one is a `connections.*` key of the config (docs/security.md). */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimitsConfig = {
  maxConnections: 300,
  maxPendingInbound: 64,
  maxPendingPerAddress: 4,
  maxInboundPerAddress: 32,
  maxPerPeer: 4,
  reservedForKnown: 32,
  inboundRatePerAddress: 5,
  upgradeTimeoutMs: 10_000
}

/** What the limiter reads from the running node; attached once libp2p exists. */
export interface LimiterView {
  /** the open connections (libp2p's connection manager) */
  connections: () => Connection[]
  /** true for a peer the node knew before this connection (tagged, or identified earlier) */
  isKnown: (peer: PeerId) => Promise<boolean>
}

/** Why a connection was refused, for logs and counts */
export type RefusalReason = 'pending-per-address' | 'inbound-per-address' | 'per-peer' | 'reserved-for-known'

/** The IP address of a multiaddr (`ip4`/`ip6` component), or undefined for other transports */
export function ipOf (addr: Multiaddr): string | undefined {
  for (const c of addr.getComponents()) {
    if (c.name === 'ip4' || c.name === 'ip6' || c.name === 'ip6zone') return c.value
  }
  return undefined
}

/**
 * The node's connection gater: per-address and per-peer limits, and inbound
 * slots reserved for known peers. Counts connections still being upgraded per
 * address itself (libp2p only counts them all together).
 */
export class ConnectionLimiter implements ConnectionGater {
  readonly limits: ConnectionLimitsConfig
  private view?: LimiterView
  private readonly pending = new Map<string, number>()
  private readonly counted = new WeakSet<MultiaddrConnection>()
  private readonly onRefuse: (reason: RefusalReason, what: string) => void

  constructor (limits: Partial<ConnectionLimitsConfig> = {}, onRefuse: (reason: RefusalReason, what: string) => void = () => {}) {
    this.limits = { ...DEFAULT_CONNECTION_LIMITS, ...limits }
    this.onRefuse = onRefuse
  }

  /** Gives the limiter the node to count on; until then every connection is let through. */
  attach (view: LimiterView): void {
    this.view = view
  }

  /** connections being upgraded from `ip` right now */
  pendingFrom (ip: string): number {
    return this.pending.get(ip) ?? 0
  }

  private refuse (reason: RefusalReason, what: string): true {
    this.onRefuse(reason, what)
    return true
  }

  private release (maConn: MultiaddrConnection, ip: string): void {
    if (!this.counted.has(maConn)) return
    this.counted.delete(maConn)
    const n = (this.pending.get(ip) ?? 1) - 1
    if (n <= 0) this.pending.delete(ip)
    else this.pending.set(ip, n)
  }

  denyInboundConnection (maConn: MultiaddrConnection): boolean {
    const ip = ipOf(maConn.remoteAddr)
    if (ip == null || this.view == null) return false
    const pending = this.pendingFrom(ip)
    if (pending >= this.limits.maxPendingPerAddress) {
      return this.refuse('pending-per-address', ip)
    }
    let open = 0
    for (const c of this.view.connections()) {
      if (c.direction === 'inbound' && ipOf(c.remoteAddr) === ip) open++
    }
    if (open + pending >= this.limits.maxInboundPerAddress) {
      return this.refuse('inbound-per-address', ip)
    }
    this.pending.set(ip, pending + 1)
    this.counted.add(maConn)
    // released when the upgrade ends, either way
    maConn.addEventListener('close', () => { this.release(maConn, ip) }, { once: true })
    return false
  }

  async denyInboundEncryptedConnection (peer: PeerId): Promise<boolean> {
    const view = this.view
    if (view == null) return false
    const connections = view.connections()
    let withPeer = 0
    let inbound = 0
    for (const c of connections) {
      if (c.remotePeer.equals(peer)) withPeer++
      if (c.direction === 'inbound') inbound++
    }
    if (withPeer >= this.limits.maxPerPeer) {
      return this.refuse('per-peer', peer.toString())
    }
    if (inbound >= this.limits.maxConnections - this.limits.reservedForKnown && !(await view.isKnown(peer))) {
      return this.refuse('reserved-for-known', peer.toString())
    }
    return false
  }

  denyInboundUpgradedConnection (peer: PeerId, maConn: MultiaddrConnection): boolean {
    const ip = ipOf(maConn.remoteAddr)
    if (ip != null) this.release(maConn, ip)
    return false
  }

  /** libp2p's `connectionManager` options for these limits */
  connectionManagerOptions (): { maxConnections: number, maxIncomingPendingConnections: number, inboundConnectionThreshold: number, inboundUpgradeTimeout: number } {
    return {
      maxConnections: this.limits.maxConnections,
      maxIncomingPendingConnections: this.limits.maxPendingInbound,
      inboundConnectionThreshold: this.limits.inboundRatePerAddress,
      inboundUpgradeTimeout: this.limits.upgradeTimeoutMs
    }
  }
}

/** the part of libp2p that `libp2pView` reads */
interface Libp2pLike {
  getConnections: () => Connection[]
  peerStore: { get: (peer: PeerId) => Promise<{ tags: Map<string, unknown>, protocols: string[] }> }
}

/**
 * The limiter's view of a libp2p node: its open connections, and as known
 * peers those the peer store holds tags for (bootstrap, DHT, keep-alive) or
 * protocols of (identified on an earlier connection).
 */
export function libp2pView (node: Libp2pLike): LimiterView {
  return {
    connections: () => node.getConnections(),
    isKnown: async (peer) => {
      try {
        const p = await node.peerStore.get(peer)
        return p.tags.size > 0 || p.protocols.length > 0
      } catch {
        return false
      }
    }
  }
}

/** A limiter that logs its refusals (debug namespace `aistack:gater`). */
export function connectionLimiter (limits: Partial<ConnectionLimitsConfig> = {}): ConnectionLimiter {
  const log = logger('aistack:gater')
  return new ConnectionLimiter(limits, (reason, what) => { log('refused an inbound connection (%s): %s', reason, what) })
}
