import { ENCRYPTION_NOISE, NOISE_PROTOCOL, PQ_PEER_METADATA_KEY } from './constants.js'
import { DowngradeError } from './errors.js'
import { handshakeCounter } from './metrics.js'
import { hasCompletedPq, isPq } from './policy.js'
import type { PqMode } from './policy.js'
import type { ComponentLogger, Connection, Libp2pEvents, Logger, Metrics, PeerId, PeerStore, Startable, TypedEventTarget } from '@libp2p/interface'

export interface DowngradeGuardInit {
  /** only `preferred` refuses connections; the others just record (default `preferred`) */
  mode?: PqMode
}

export interface DowngradeGuardComponents {
  peerStore: PeerStore
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
  metrics?: Metrics
  peerId?: PeerId
}

/**
 * Remembers in the peer store (metadata `aistack/pq-handshake`, the time of
 * the first hybrid handshake as 8 bytes big-endian milliseconds) that a peer
 * completed the hybrid handshake, and in `preferred` mode closes any later
 * connection from or to that peer that negotiated `/noise`.
 *
 * With `connectionEncrypters('preferred')` such a connection already fails
 * during its handshake; this service also covers a stock `noise()` and
 * connections that raced the first hybrid one.
 */
export class DowngradeGuard implements Startable {
  private readonly components: DowngradeGuardComponents
  private readonly mode: PqMode
  private readonly log: Logger
  private readonly known = new Set<string>()
  private readonly count: ReturnType<typeof handshakeCounter>
  private started = false

  constructor (components: DowngradeGuardComponents, init: DowngradeGuardInit = {}) {
    this.components = components
    this.mode = init.mode ?? 'preferred'
    this.log = components.logger.forComponent('aistack:handshake:downgrade-guard')
    this.count = handshakeCounter(components)
    this.onOpen = this.onOpen.bind(this)
  }

  readonly [Symbol.toStringTag] = '@aistack/handshake:downgrade-guard'

  start (): void {
    if (this.started) return
    this.components.events.addEventListener('connection:open', this.onOpen)
    this.started = true
  }

  stop (): void {
    this.components.events.removeEventListener('connection:open', this.onOpen)
    this.started = false
  }

  /** true when the peer once completed the hybrid handshake with this node */
  async hasCompletedPq (peer: PeerId): Promise<boolean> {
    if (this.known.has(peer.toString())) return true
    const known = await hasCompletedPq(this.components.peerStore, peer)
    if (known) this.known.add(peer.toString())
    return known
  }

  private onOpen (evt: CustomEvent<Connection>): void {
    const connection = evt.detail
    if (isPq(connection)) {
      this.record(connection.remotePeer).catch(err => {
        this.log.error('could not record hybrid peer %p: %s', connection.remotePeer, err?.message ?? err)
      })
    } else if (this.mode === 'preferred' && connection.encryption === NOISE_PROTOCOL) {
      this.check(connection).catch(err => {
        this.log.error('downgrade check failed for %p: %s', connection.remotePeer, err?.message ?? err)
      })
    }
  }

  private async record (peer: PeerId): Promise<void> {
    const id = peer.toString()
    if (this.known.has(id)) return
    this.known.add(id)
    if (await hasCompletedPq(this.components.peerStore, peer)) return
    const stamp = new Uint8Array(8)
    new DataView(stamp.buffer).setBigUint64(0, BigInt(Date.now()))
    await this.components.peerStore.merge(peer, { metadata: { [PQ_PEER_METADATA_KEY]: stamp } })
    this.log('recorded %p as hybrid-capable', peer)
  }

  private async check (connection: Connection): Promise<void> {
    if (!(await this.hasCompletedPq(connection.remotePeer))) return
    if (connection.status !== 'open') return
    const err = new DowngradeError(`Peer ${connection.remotePeer.toString()} completed the hybrid handshake before; closing its /noise connection`)
    this.log.error('%s', err.message)
    this.count(ENCRYPTION_NOISE, 'downgrade_refused')
    connection.abort(err)
  }
}

/**
 * The downgrade guard as a libp2p service:
 * `services: { downgradeGuard: downgradeGuard({ mode }) }`.
 */
export function downgradeGuard (init: DowngradeGuardInit = {}): (components: DowngradeGuardComponents) => DowngradeGuard {
  return (components) => new DowngradeGuard(components, init)
}
