import { Uint8ArrayList } from 'uint8arraylist'
import { CONTROL_DECODE_LIMITS } from './limits.js'
import { Control } from './pb/task.js'
import type { Connection, Logger, PeerId, Stream, StreamMessageEvent } from '@libp2p/interface'

export interface StreamOpener {
  openStream(peer: PeerId, protocol: string, options?: { signal?: AbortSignal }): Promise<Stream>
}

export interface ChannelsInit {
  self: PeerId
  protocol: string
  maxFrameBytes: number
  connectionManager: StreamOpener
  log: Logger
  onMessage(peer: PeerId, message: Control): void
  /** a frame could not be read: 'oversize' or 'malformed' */
  onBadFrame(peer: PeerId, reason: 'oversize' | 'malformed'): void
}

function varint (n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Uint8Array.from(out)
}

export class FrameTooLargeError extends Error {
  static override name = 'FrameTooLargeError'
  override name = 'FrameTooLargeError'
}

/**
 * Splits a byte stream into varint-length-prefixed frames. A chunk that
 * holds whole frames is read in place; the bytes of a frame that spans
 * several chunks are kept as the chunks they came in and joined once, when
 * the frame is complete (joining the partial frame at each chunk cost a
 * 4 MiB frame in 64 KiB chunks some 130 MB of copies).
 */
export class FrameDecoder {
  private pending = new Uint8ArrayList()
  /** bytes the pending frame needs in all (prefix included), once its prefix is known; 0 before */
  private needed = 0
  private readonly maxFrameBytes: number

  constructor (maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes
  }

  push (chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = []
    let buf = chunk
    if (this.pending.byteLength > 0) {
      this.pending.append(chunk)
      if (this.pending.byteLength < this.needed) {
        return frames
      }
      buf = this.pending.subarray()
      this.pending = new Uint8ArrayList()
      this.needed = 0
    }
    let offset = 0
    while (offset < buf.byteLength) {
      let length = 0
      let shift = 1
      let i = offset
      let complete = false
      while (i < buf.byteLength && i - offset < 5) {
        const b = buf[i++]
        length += (b & 0x7f) * shift
        shift *= 128
        if ((b & 0x80) === 0) {
          complete = true
          break
        }
      }
      if (!complete) {
        if (i - offset >= 5) {
          throw new FrameTooLargeError('frame length prefix too long')
        }
        break
      }
      if (length > this.maxFrameBytes) {
        throw new FrameTooLargeError(`frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`)
      }
      if (i + length > buf.byteLength) {
        this.needed = i + length - offset
        break
      }
      frames.push(buf.subarray(i, i + length))
      offset = i + length
    }
    if (offset < buf.byteLength) {
      this.pending.append(buf.slice(offset))
    }
    return frames
  }
}

/**
 * One outbound stream. Frames sent in the same turn of the event loop are
 * written together (one muxer frame, one encryption, one socket write), which
 * makes a busy submitter or worker several times cheaper per message.
 */
class Outbound {
  private readonly stream: Stream
  private draining?: Promise<void>
  private pending: Uint8Array[] = []
  private pendingBytes = 0
  private waiters: Array<PromiseWithResolvers<void>> = []
  private scheduled = false
  /** frames that can wait for the next write (see `sendLazy`) */
  private lazy: Uint8Array[] = []
  private lazyBytes = 0
  private lazyTimer?: ReturnType<typeof setTimeout>

  constructor (stream: Stream) {
    this.stream = stream
  }

  get open (): boolean {
    return this.stream.status === 'open' && this.stream.writeStatus === 'writable'
  }

  /** Queues a frame; resolves once it has been handed to the stream */
  async send (frame: Uint8Array): Promise<void> {
    const prefix = varint(frame.byteLength)
    this.pending.push(prefix, frame)
    this.pendingBytes += prefix.byteLength + frame.byteLength
    const sent = Promise.withResolvers<void>()
    this.waiters.push(sent)
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => { this.flush().catch(() => {}) })
    }
    return sent.promise
  }

  /** Queues a frame that is in no hurry: it goes out with the next write, or after `delayMs` */
  sendLazy (frame: Uint8Array, delayMs: number): void {
    const prefix = varint(frame.byteLength)
    this.lazy.push(prefix, frame)
    this.lazyBytes += prefix.byteLength + frame.byteLength
    this.lazyTimer ??= setTimeout(() => {
      this.lazyTimer = undefined
      if (!this.scheduled) {
        this.scheduled = true
        this.flush().catch(() => {})
      }
    }, delayMs)
  }

  private async flush (): Promise<void> {
    this.scheduled = false
    if (this.draining != null) {
      await this.draining
    }
    // frames queued while waiting for the drain go out now too, in order; lazy ones first
    const parts = this.lazy.length > 0 ? [...this.lazy, ...this.pending] : this.pending
    const size = this.pendingBytes + this.lazyBytes
    const waiters = this.waiters
    this.pending = []
    this.pendingBytes = 0
    this.waiters = []
    this.lazy = []
    this.lazyBytes = 0
    clearTimeout(this.lazyTimer)
    this.lazyTimer = undefined
    if (parts.length === 0) {
      return
    }
    try {
      const data = new Uint8Array(size)
      let offset = 0
      for (const part of parts) {
        data.set(part, offset)
        offset += part.byteLength
      }
      if (!this.stream.send(data)) {
        // rejects if the stream closes first; the next flush then fails on send()
        const draining: Promise<void> = this.stream.onDrain().catch(() => {}).finally(() => {
          if (this.draining === draining) {
            this.draining = undefined
          }
        })
        this.draining = draining
      }
      for (const w of waiters) {
        w.resolve()
      }
    } catch (err) {
      for (const w of waiters) {
        w.reject(err)
      }
    }
  }

  close (): void {
    clearTimeout(this.lazyTimer)
    this.stream.close().catch(() => { this.stream.abort(new Error('closing')) })
  }
}

/**
 * Point-to-point control messages: one long-lived outbound stream per peer
 * carries length-prefixed Control frames; inbound streams are read in a loop.
 * Messages to ourselves are delivered locally.
 */
export class Channels {
  private readonly init: ChannelsInit
  private readonly outbound = new Map<string, Outbound>()
  private readonly opening = new Map<string, Promise<Outbound>>()
  private readonly inbound = new Set<Stream>()

  constructor (init: ChannelsInit) {
    this.init = init
  }

  async send (peer: PeerId, message: Control): Promise<void> {
    if (peer.equals(this.init.self)) {
      queueMicrotask(() => { this.init.onMessage(peer, message) })
      return
    }
    const frame = Control.encode(message)
    const out = this.get(peer)
    // an open stream takes the frame now, so it is queued before what the caller does next
    if (out instanceof Outbound) {
      return out.send(frame)
    }
    await (await out).send(frame)
  }

  /**
   * Sends a message that may wait: it travels with the next message to that
   * peer, or on its own after `delayMs`, sparing a write of its own when
   * traffic flows. Failures are only logged.
   */
  sendLazy (peer: PeerId, message: Control, delayMs: number): void {
    if (peer.equals(this.init.self)) {
      queueMicrotask(() => { this.init.onMessage(peer, message) })
      return
    }
    const frame = Control.encode(message)
    Promise.resolve(this.get(peer))
      .then(out => { out.sendLazy(frame, delayMs) })
      .catch(err => { this.init.log('message to %p failed - %e', peer, err) })
  }

  /** The open stream to the peer, or the promise of one being opened */
  private get (peer: PeerId): Outbound | Promise<Outbound> {
    const key = peer.toString()
    const existing = this.outbound.get(key)
    if (existing?.open === true) {
      return existing
    }
    this.outbound.delete(key)
    let opening = this.opening.get(key)
    if (opening == null) {
      opening = (async () => {
        const stream = await this.init.connectionManager.openStream(peer, this.init.protocol, { signal: AbortSignal.timeout(10_000) })
        const out = new Outbound(stream)
        stream.addEventListener('close', () => {
          if (this.outbound.get(key) === out) {
            this.outbound.delete(key)
          }
        })
        // the remote never writes on this stream: nothing reads it
        this.outbound.set(key, out)
        return out
      })().finally(() => { this.opening.delete(key) })
      this.opening.set(key, opening)
    }
    return opening
  }

  /**
   * Stream handler for the protocol. Frames are read from the stream's
   * 'message' events: each is handled in the turn its bytes arrive, before
   * the muxer's window update for them is written, rather than a few promise
   * jobs later through the stream's async iterator.
   */
  handle = (stream: Stream, connection: Connection): void => {
    const peer = connection.remotePeer
    this.inbound.add(stream)
    const decoder = new FrameDecoder(this.init.maxFrameBytes)
    const onMessage = (evt: StreamMessageEvent): void => {
      let frames: Uint8Array[]
      try {
        frames = decoder.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())
      } catch (err: any) {
        this.init.onBadFrame(peer, 'oversize')
        this.init.log('bad frame from %p - %e', peer, err)
        stream.abort(err)
        return
      }
      for (const frame of frames) {
        let message: Control
        try {
          message = Control.decode(frame, { limits: CONTROL_DECODE_LIMITS })
        } catch {
          this.init.onBadFrame(peer, 'malformed')
          continue
        }
        try {
          this.init.onMessage(peer, message)
        } catch (err: any) {
          this.init.log.error('handling message from %p failed - %e', peer, err)
        }
      }
    }
    stream.addEventListener('message', onMessage)
    // the remote has finished: close our (unused) side too
    stream.addEventListener('remoteCloseWrite', () => {
      stream.close().catch(err => { stream.abort(err) })
    }, { once: true })
    stream.addEventListener('close', (evt) => {
      stream.removeEventListener('message', onMessage)
      this.inbound.delete(stream)
      if (evt.error != null) {
        this.init.log('inbound stream from %p ended - %e', peer, evt.error)
      }
    }, { once: true })
  }

  closeAll (): void {
    for (const out of this.outbound.values()) {
      out.close()
    }
    this.outbound.clear()
    for (const stream of this.inbound) {
      stream.abort(new Error('service stopped'))
    }
    this.inbound.clear()
  }
}
