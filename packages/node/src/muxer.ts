/**
 * The stream muxer: yamux, with two changes.
 *
 * 1. Window updates are sent once half of a stream's receive window has been
 *    used, as go-yamux and rust-yamux do. @chainsafe/libp2p-yamux 8 sends a
 *    WINDOW_UPDATE frame after every data frame it receives. For the small
 *    messages of the task queue and gossip that is a second frame, a second
 *    encryption and a second socket write for every message, in the
 *    receiver's turn before the message is handled, and a wake-up of the
 *    sender. When to send window updates is the receiver's choice in the yamux
 *    spec, so both ends keep working with any other yamux.
 *
 * 2. An error on one connection stays on that connection. yamux 8 writes its
 *    control frames (GoAway, ping answers, the SYN of a new stream) straight
 *    to the secured stream below it, and that throws `StreamStateError` once
 *    the stream is closed. Two of those writes run where nothing catches
 *    them: the GoAway sent by `abort()` when a frame could not be handled (in
 *    the transport's `message` event), and the SYN sent in a microtask after
 *    `createStream()`. A peer that hangs up while its connection is being
 *    upgraded reached both and ended the process. Here a control frame for a
 *    transport that can no longer be written is dropped (there is nobody to
 *    tell), and a muxer created over a stream that has already closed is
 *    closed at once, so it neither waits for a `close` event that will not
 *    come nor keeps its keep-alive timer running.
 */
import { yamux } from '@chainsafe/libp2p-yamux'
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import { serviceCapabilities } from '@libp2p/interface'
import type { YamuxMuxerInit } from '@chainsafe/libp2p-yamux'
import type { MessageStream, StreamMuxer, StreamMuxerFactory } from '@libp2p/interface'

/** the fields the rule reads; private in YamuxStream's declaration */
interface WindowState {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
}

/** yamux frame type of data frames (yamux spec: 0 data, 1 window update, 2 ping, 3 go away) */
const FRAME_DATA = 0

/** what hardenMuxer reads and replaces; private in YamuxMuxer's declaration */
interface YamuxInternals {
  status: string
  sendFrame?: (header: { type: number }, data?: unknown) => boolean
  onTransportClosed?: (err?: Error) => void
  log?: { trace: (fmt: string, ...args: unknown[]) => void }
}

let installed = false

/** true while data can still be written to the stream (AbstractMessageStream's writeStatus, else status) */
function writable (transport: MessageStream): boolean {
  const writeStatus = (transport as { writeStatus?: string }).writeStatus
  return writeStatus != null ? writeStatus === 'writable' : transport.status === 'open'
}

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

/**
 * Makes one yamux muxer safe against a transport that closed under it:
 * control frames (window update, ping, go away) for a transport that can no
 * longer be written are dropped instead of throwing, and a muxer whose
 * transport had already closed when it was created is closed at once. Data
 * frames still throw, to the stream write that sent them, which aborts that
 * stream. Returns the same muxer.
 */
export function hardenMuxer<M extends StreamMuxer> (muxer: M, transport: MessageStream): M {
  const internals = muxer as unknown as YamuxInternals
  const sendFrame = internals.sendFrame
  if (typeof sendFrame === 'function') {
    // set on the instance before any stream binds it (YamuxMuxer binds this.sendFrame per stream)
    internals.sendFrame = function (this: YamuxInternals, header, data) {
      if (header.type !== FRAME_DATA && !writable(transport)) {
        internals.log?.trace('dropping control frame type %d: the transport is closed', header.type)
        return false
      }
      return sendFrame.call(this, header, data)
    }
  }
  if (transport.status !== 'open' && internals.status === 'open') {
    // the transport's close event has been and gone: close the streams and stop the keep-alive
    internals.onTransportClosed?.call(muxer)
  }
  return muxer
}

/**
 * The yamux muxer factory for libp2p's `streamMuxers`, with lazy window
 * updates and muxers that survive their transport closing (see above).
 */
export function muxer (init: YamuxMuxerInit = {}): () => StreamMuxerFactory {
  installLazyWindowUpdates()
  const inner = yamux(init)
  return () => {
    const factory = inner()
    return {
      protocol: factory.protocol,
      createStreamMuxer: (transport: MessageStream) => hardenMuxer(factory.createStreamMuxer(transport), transport),
      [Symbol.toStringTag]: '@aistack/muxer',
      [serviceCapabilities]: ['@libp2p/stream-multiplexing']
    } as unknown as StreamMuxerFactory
  }
}
