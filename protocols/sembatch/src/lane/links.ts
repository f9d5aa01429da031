import { NotStartedError } from '../errors.js'
import { RequesterLink } from '../requester.js'
import { ResponderLink } from '../responder.js'
import { BulkLane } from './lane.js'
import type { LinkSettings } from '../requester.js'
import type { HandlerEntry, ResponderSettings } from '../responder.js'
import type { BulkLaneInit, LaneEvent } from './lane.js'
import type { LinkStream } from './stream.js'
import type { Connection, Logger, PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Bytes in flight on a lane link before more bulk waits (the lane's round trip crosses two threads at each end) */
const LANE_PIPE_BYTES = 1024 * 1024
/** A failed or closed lane is not opened again for this long (ms) */
const LANE_RETRY_MS = 60_000
/** A lane stream the peer has not taken (no first frame) in this long is given up (ms) */
const LANE_TAKEN_TIMEOUT_MS = 10_000
/** peers remembered with a failed lane dial, at most */
const MAX_LANE_RETRIES = 4096

/** What the lane's links need of the node */
export interface LaneLinksComponents {
  privateKey?: PrivateKey
  addressManager?: { getListenAddrs(): Multiaddr[] }
  connectionManager: { getConnections?(peer?: PeerId): Connection[] }
}

export interface LaneLinksInit {
  lane: BulkLaneInit
  protocol: string
  /** the settings of the node's own sembatch links */
  settings: LinkSettings & { creditMessages: number, creditBytes: number }
  lookup: (key: string) => HandlerEntry | undefined
  maxInboundStreams: number
  log: Logger
  /** a lane link closed: its counters go to the service's totals */
  onClosed: (link: RequesterLink) => void
  /** what happens to the lane, for the node's logs */
  emit: (event: LaneEvent) => void
}

/**
 * The sembatch links on the bulk lane (docs/protocols/sembatch.md, "Bulk
 * lane"): the lane itself (`BulkLane`, started when bulk first arrives),
 * ours to peers' lanes, theirs to ours, and the offers and retries that
 * open them. The service asks `linkFor` for a bulk request's link and hands
 * its stream links `responderHooks()`.
 */
export class LaneLinks {
  private readonly init: LaneLinksInit
  private readonly components: LaneLinksComponents
  readonly lane: BulkLane
  /** ours to peers' lanes, by peer; theirs to ours */
  private readonly outbound = new Map<string, RequesterLink>()
  private readonly inbound = new Set<ResponderLink>()
  private readonly opening = new Set<string>()
  private readonly retryAt = new Map<string, number>()
  private stopped = false

  private constructor (components: LaneLinksComponents, init: LaneLinksInit, privateKey: PrivateKey, hosts: string[]) {
    this.components = components
    this.init = init
    this.lane = new BulkLane(privateKey, init.protocol, hosts, init.lane, init.log, this.onLaneStream, this.connected, init.emit)
  }

  /**
   * The lane's links, when the node has what a lane needs (its private key
   * and a TCP listen address on an IP host); undefined otherwise
   */
  static create (components: LaneLinksComponents, init: LaneLinksInit): LaneLinks | undefined {
    const hosts = new Set<string>()
    for (const ma of components.addressManager?.getListenAddrs() ?? []) {
      const parts = ma.getComponents()
      if (parts.length === 2 && (parts[0].name === 'ip4' || parts[0].name === 'ip6') && parts[1].name === 'tcp' && parts[0].value != null) hosts.add(parts[0].value)
    }
    if (components.privateKey == null || hosts.size === 0) {
      init.log('no bulk lane: it needs the node\'s private key and a TCP listen address')
      return undefined
    }
    return new LaneLinks(components, init, components.privateKey, [...hosts])
  }

  get outboundCount (): number {
    return this.outbound.size
  }

  get inboundCount (): number {
    return this.inbound.size
  }

  get outboundLinks (): Iterable<RequesterLink> {
    return this.outbound.values()
  }

  /** What the node's own responder links need: the port to offer, and a start when bulk arrives */
  responderHooks (): Pick<ResponderSettings, 'lanePort' | 'onBulk'> {
    return {
      lanePort: () => this.lane.port,
      onBulk: async () => this.lane.start().catch(err => { this.init.log('the bulk lane did not start - %e', err) })
    }
  }

  /**
   * The lane link for a bulk request to `peer`: open, and taken by the peer
   * (its first frame read), so a lane stream the peer refuses loses no
   * request. When there is none, a lane the peer offered on `stream` (the
   * node's own link to it) is opened, once any retry time has passed.
   */
  linkFor (peer: PeerId, stream: RequesterLink | undefined): RequesterLink | undefined {
    const link = this.outbound.get(peer.toString())
    if (link?.open === true && link.heard) return link
    if (link?.open !== true && stream?.open === true && stream.laneOffer != null) this.offered(peer, stream.laneOffer)
    return undefined
  }

  /**
   * The peer offered its bulk lane on `port`: a lane stream is opened to the
   * address a direct TCP connection to the peer reached (never to an address
   * the peer names), one per peer; a failed or closed one is not opened again
   * for a minute.
   */
  offered (peer: PeerId, port: number): void {
    const key = peer.toString()
    if (this.stopped || this.lane.broken || this.opening.has(key) || this.outbound.get(key)?.open === true) return
    if ((this.retryAt.get(key) ?? 0) > Date.now()) return
    // a direct TCP connection only: `/ip4|ip6/<ip>/tcp/<port>[/p2p/<id>]`. A relayed one
    // (`…/p2p-circuit/…`, which has no limits when the relay sets none) starts with the relay's
    // address, and the peer would have us dial the relay's host at a port it chose
    const host = this.components.connectionManager.getConnections?.(peer)
      .filter(c => c.limits == null && c.status === 'open')
      .map(c => c.remoteAddr.getComponents())
      .find(parts => (parts[0]?.name === 'ip4' || parts[0]?.name === 'ip6') && parts[1]?.name === 'tcp' &&
        parts.length <= 3 && (parts[2] == null || parts[2].name === 'p2p'))?.[0]
    if (host?.value == null) return
    this.opening.add(key)
    this.lane.open(`/${host.name}/${host.value}/tcp/${port}/p2p/${key}`).then(stream => {
      if (this.stopped) {
        stream.abort(new NotStartedError('sembatch stopped'))
        return
      }
      const link = new RequesterLink(peer, stream, this.settings(), this.init.log, (closed) => {
        this.init.onClosed(closed)
        if (this.outbound.get(key) !== closed) return
        this.outbound.delete(key)
        this.init.emit({ type: 'closed', peer: key })
        // opened again on a later bulk request, not before a minute has passed
        if (!this.stopped) this.retryLater(key)
      })
      this.outbound.set(key, link)
      // a lane stream the peer never takes (its refusal lost, or a peer that never answers)
      // would otherwise sit unused for good
      setTimeout(() => {
        if (link.open && !link.heard) link.reset(new Error(`the peer did not take the lane stream within ${LANE_TAKEN_TIMEOUT_MS / 1000} s`))
      }, LANE_TAKEN_TIMEOUT_MS).unref()
      this.init.log('bulk lane to %p open', peer)
      this.init.emit({ type: 'open', peer: key })
    }, err => {
      this.init.log('no bulk lane to %p - %e', peer, err)
      if (!this.stopped && !this.lane.broken) this.init.emit({ type: 'dialFailed', peer: key, error: String(err?.message ?? err) })
      this.retryLater(key)
    }).finally(() => { this.opening.delete(key) })
  }

  /**
   * The node's last connection to a peer closed (or was hung up on): so do its lane streams,
   * both ways, and the lane's connections to it (which would otherwise hold one of the lane's
   * connection slots for as long as the peer keeps them open)
   */
  disconnected (peer: PeerId): void {
    const err = new Error('the node\'s connection to the peer closed')
    this.outbound.get(peer.toString())?.reset(err)
    for (const link of [...this.inbound]) if (link.peer.equals(peer)) link.reset(err)
    this.lane.hangUp(peer.toString())
    // a new connection brings a new stream and offer: that lane opens at once
    this.retryAt.delete(peer.toString())
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const link of this.outbound.values()) link.close()
    this.outbound.clear()
    for (const link of this.inbound) link.close()
    this.inbound.clear()
    await this.lane.stop()
  }

  /**
   * Links on the lane carry the bulk class only, so nothing on them waits
   * behind a bulk frame: whole writes and a deep pipe (a turn of the event
   * loop between frames still lets the node's other traffic in). They are
   * not compressed, which would take the node's thread (the lane exists to
   * leave it free).
   */
  private settings (): LinkSettings & { creditMessages: number, creditBytes: number } {
    const s = this.init.settings
    return { ...s, bulkWriteBytes: s.maxWriteBytes, pipeBytes: Math.max(s.pipeBytes, LANE_PIPE_BYTES), compressThreshold: Infinity }
  }

  /** A peer may use the lane only while the node is connected to it (admitted by the node's own limits) */
  private readonly connected = (peer: PeerId): boolean =>
    !this.stopped && (this.components.connectionManager.getConnections?.(peer).length ?? 0) > 0

  /**
   * A stream a peer opened on our bulk lane. The lane is an adjunct of the node's own
   * connection to the peer: a peer with none (never admitted by the node's connection
   * limits, or hung up on) gets no lane stream. The first frame goes at once, so the
   * peer uses the stream only once it is taken.
   */
  private readonly onLaneStream = (peer: PeerId, stream: LinkStream): void => {
    if (this.stopped || this.inbound.size >= this.init.maxInboundStreams) {
      stream.abort(new Error('too many bulk lane streams'))
      return
    }
    if (!this.connected(peer)) {
      stream.abort(new Error('no connection to the node: no bulk lane'))
      return
    }
    const link = new ResponderLink(peer, stream, { ...this.settings(), lookup: this.init.lookup, greet: true }, this.init.log)
    this.inbound.add(link)
    stream.addEventListener('close', () => { this.inbound.delete(link) }, { once: true })
  }

  private retryLater (key: string): void {
    this.retryAt.delete(key)
    this.retryAt.set(key, Date.now() + LANE_RETRY_MS)
    if (this.retryAt.size > MAX_LANE_RETRIES) this.retryAt.delete(this.retryAt.keys().next().value as string)
  }
}
