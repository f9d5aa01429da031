/**
 * The stream muxer: yamux, with window updates sent once half of a stream's
 * receive window has been used, as go-yamux and rust-yamux do.
 *
 * @chainsafe/libp2p-yamux 8 sends a WINDOW_UPDATE frame after every data frame
 * it receives. For the small messages of the task queue and gossip that is a
 * second frame, a second encryption and a second socket write for every
 * message, in the receiver's turn before the message is handled, and a wake-up
 * of the sender. When to send window updates is the receiver's choice in the
 * yamux spec, so both ends keep working with any other yamux.
 */
import { yamux } from '@chainsafe/libp2p-yamux'
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'

/** the fields the rule reads; private in YamuxStream's declaration */
interface WindowState {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
}

let installed = false

/**
 * Makes yamux streams hold back a window update while more than half of the
 * receive window is still free. Updates that carry a flag (the SYN or ACK of a
 * new stream) and those after a pause still go at once. Returns whether the
 * rule is in place (false when this yamux lacks the method it wraps).
 */
export function installLazyWindowUpdates (): boolean {
  if (installed) {
    return true
  }
  const proto = YamuxStream.prototype as unknown as { sendWindowUpdate?: (this: WindowState) => void }
  const sendWindowUpdate = proto.sendWindowUpdate
  if (typeof sendWindowUpdate !== 'function') {
    return false
  }
  proto.sendWindowUpdate = function (this: WindowState): void {
    // SYNSent and Established send no flags: the update is only about the window
    const plain = this.state === StreamState.Established || this.state === StreamState.SYNSent
    if (plain && this.recvWindowCapacity * 2 > this.recvWindow) {
      return
    }
    sendWindowUpdate.call(this)
  }
  installed = true
  return true
}

/** The yamux muxer factory for libp2p's `streamMuxers`, with lazy window updates */
export function muxer (init: Parameters<typeof yamux>[0] = {}): ReturnType<typeof yamux> {
  installLazyWindowUpdates()
  return yamux(init)
}
