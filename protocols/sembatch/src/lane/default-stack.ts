import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'

/**
 * The bulk lane's default libp2p stack: TCP, Noise, Yamux. A node with other
 * encrypters (the post-quantum handshake) gives the lane its own stack module
 * (`bulkLane.stack`), so the lane is protected as its main connections are.
 */
export default function laneStack (): { transports: any[], connectionEncrypters: any[], streamMuxers: any[] } {
  return { transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] }
}
