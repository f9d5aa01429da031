/**
 * libp2p's ping service (`/ipfs/ping/1.0.0`) with an answering side that
 * cannot miss the end of a ping.
 *
 * @libp2p/ping answers with `for await (const buf of stream)`, which ends on
 * the stream's `remoteCloseWrite` event. A stock pinger sends its 32 bytes and
 * closes its writable end at once; when both arrive before the handler starts
 * reading (the stream is still in protocol negotiation, or the node is busy),
 * the event has fired before the loop listens for it, the loop waits until the
 * ping timeout (10 s), and the stream stays open meanwhile. The pinger, which
 * keeps at most one ping stream per peer (`maxOutboundStreams` 1), then
 * refuses its own next ping with `TooManyOutboundProtocolStreamsError`, and
 * the node refuses a third with `TooManyInboundProtocolStreamsError` (2 per
 * connection, as the ping spec asks). The answer below waits for `end`
 * (emitted once the remote has closed and its buffered bytes were read) or
 * reads `readableEnded` when that has already happened, then closes its side.
 */
import { TimeoutError } from '@libp2p/interface'
import { ping as stockPing } from '@libp2p/ping'
import type { Stream } from '@libp2p/interface'
import type { Ping, PingComponents, PingInit } from '@libp2p/ping'

/** Time one inbound ping stream may stay open, as @libp2p/ping's default (ms) */
const DEFAULT_TIMEOUT_MS = 10_000

/**
 * Echoes what the remote sends on `stream` until it closes its writable end,
 * then closes this side; aborts the stream after `timeoutMs`. Reading pauses
 * while the echo waits for the remote to read (a peer that only sends gets
 * no more than the muxer's window buffered).
 */
export async function answerPing (stream: Stream, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
  const signal = AbortSignal.timeout(timeoutMs)
  const onTimeout = (): void => { stream.abort(new TimeoutError('ping timed out')) }
  signal.addEventListener('abort', onTimeout, { once: true })
  try {
    const ended = new Promise<void>(resolve => {
      stream.addEventListener('end', () => { resolve() }, { once: true })
      stream.addEventListener('close', () => { resolve() }, { once: true })
    })
    stream.addEventListener('drain', () => {
      if (stream.readStatus === 'paused') stream.resume()
    })
    stream.addEventListener('message', evt => {
      if (stream.writeStatus !== 'writable') return
      if (!stream.send(evt.data) && stream.readStatus === 'readable') stream.pause()
    })
    if (!stream.readableEnded && stream.status === 'open') await ended
    if (stream.status === 'open' && stream.writeStatus === 'writable') await stream.close({ signal })
  } catch (err) {
    stream.abort(err as Error)
  } finally {
    signal.removeEventListener('abort', onTimeout)
  }
}

/** `ping()` of @libp2p/ping whose inbound streams are answered by `answerPing` */
export function ping (init: PingInit = {}): (components: PingComponents) => Ping {
  const factory = stockPing(init)
  return components => {
    const service = factory(components) as Ping & { handlePing?: (stream: Stream) => Promise<void> }
    // start() registers `this.handlePing` with the registrar: replace it before that
    if (typeof service.handlePing === 'function') {
      service.handlePing = async (stream: Stream) => answerPing(stream, init.timeout ?? DEFAULT_TIMEOUT_MS)
    }
    return service
  }
}
