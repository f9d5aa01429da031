/**
 * The libp2p stack of the node's sembatch bulk lane (`bulkLane.stack`).
 *
 * The bulk lane is a second connection to a peer, run by a worker thread at
 * each end, that carries the bulk class of sembatch requests
 * (docs/configuration.md, `sembatch`). The worker imports this module and
 * builds a bare libp2p from what its default export returns: the node's TCP
 * transport, its connection encrypters and its stream muxer (node.ts), so
 * bulk bytes are protected as the node's main connections are, by the
 * hybrid post-quantum handshake of `config.pq`, and not by the classical
 * Noise of sembatch's default lane stack.
 *
 * One difference, in `preferred` mode. There the main connections offer the
 * hybrid first and stock `/noise` second, and `/noise` is refused from a
 * peer that once completed the hybrid: `classicalNoise({ downgradeProtection })`
 * looks the peer up in the peer store, where the `downgradeGuard` service
 * records every hybrid peer. The lane's libp2p has neither that service nor
 * the node's peer store (its own is empty and in memory), so there nothing
 * would ever be refused: an on-path attacker who strips the hybrid from the
 * protocol negotiation would get the lane onto classical Noise while the
 * main connection stays hybrid. The lane therefore offers the hybrid only in
 * `preferred` mode, as in `required`. Every peer with a lane runs aistack, so
 * this only leaves out peers in `off` mode: their main connection is `/noise`
 * anyway, the lane dial fails and bulk requests stay on the main connection,
 * as with a peer that has no lane. In `off` mode the lane is `/noise`, like
 * the main connections.
 */
import { connectionEncrypters } from '@aistack/handshake'
import { tcp } from '@libp2p/tcp'
import { muxer } from './muxer.js'
import type { PqMode } from '@aistack/handshake'
import type { ConnectionEncrypter, StreamMuxerFactory, Transport } from '@libp2p/interface'

export interface LaneStackInit {
  /** the node's post-quantum policy (`config.pq`) */
  pq: PqMode
}

export interface LaneStack {
  transports: Array<(components: any) => Transport>
  connectionEncrypters: Array<(components: any) => ConnectionEncrypter>
  streamMuxers: Array<(components: any) => StreamMuxerFactory>
}

/** The handshake policy of the lane for a node's policy: the hybrid only unless the node's is `off` (see above) */
export function lanePqMode (mode: PqMode): PqMode {
  return mode === 'preferred' ? 'required' : mode
}

/** The lane's transports, encrypters and muxers for a node with post-quantum policy `init.pq` */
export default function laneStack (init: LaneStackInit): LaneStack {
  return {
    transports: [tcp()],
    connectionEncrypters: connectionEncrypters(lanePqMode(init.pq)),
    streamMuxers: [muxer()]
  }
}
