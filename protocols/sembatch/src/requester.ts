import { AnswerStream } from './answers.js'
import { concat } from './bytes.js'
import { INITIAL_CREDIT_BYTES, INITIAL_CREDIT_MESSAGES } from './constants.js'
import { CreditViolationError, OversizeError, QueueFullError, RemoteError, RequestTimeoutError, StreamResetError } from './errors.js'
import { FrameSplitter, Kind, QoS, decodeFrame, eventBytes, messageLoad } from './frame.js'
import { Outbox } from './outbox.js'
import type { QosClass } from './constants.js'
import type { FrameLimits, Frame } from './frame.js'
import type { OutItem, RemoteState } from './outbox.js'
import type { LinkStream } from './lane/stream.js'
import type { Logger, PeerId, StreamMessageEvent } from '@libp2p/interface'

/** Wire classes in the order their answers are settled */
const QOS_ORDER = [QoS.REALTIME, QoS.INTERACTIVE, QoS.BULK]

export interface LinkSettings {
  limits: FrameLimits
  maxWriteBytes: number
  /** message bytes of the bulk class per frame */
  bulkWriteBytes: number
  /** a turn of the event loop between frames with bulk messages */
  yieldAfterBulk: boolean
  maxBatchMessages: number
  compressThreshold: number
  lingerMs: Record<QosClass, number>
  maxQueued: number
  maxBufferedPieceBytes: number
  pipeBytes: number
}

interface Pending {
  /** whole answer wanted: resolve with it (pieces are joined) */
  resolve?: (answer: Uint8Array) => void
  reject?: (err: Error) => void
  pieces?: Uint8Array[]
  pieceBytes: number
  /** streamed answer wanted */
  answers?: AnswerStream
  timer?: ReturnType<typeof setTimeout>
  onAbort?: () => void
  signal?: AbortSignal
}

export interface RequestOptions {
  qos: QosClass
  timeoutMs: number
  signal?: AbortSignal
}

/**
 * The opener's end of a sembatch stream to one peer: sends requests within
 * the credits the peer granted, matches answers to requests by id.
 */
export class RequesterLink {
  readonly peer: PeerId
  private readonly stream: LinkStream
  private readonly outbox: Outbox
  private readonly splitter: FrameSplitter
  /** bytes of frames with batches read, wrapping at 2^32, and whether the peer should hear of it */
  private receivedBytes = 0
  private ackDue = false
  private readonly settings: LinkSettings
  private readonly log: Logger
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private creditMessages = INITIAL_CREDIT_MESSAGES
  private creditBytes = INITIAL_CREDIT_BYTES
  private readonly remote: RemoteState = { queueDepth: 0, serviceRate: 0 }
  private closedWith?: Error
  private readonly onClosed: (link: RequesterLink) => void
  /** the peer offered its bulk lane on this port */
  private readonly onLaneOffered?: (port: number) => void
  /** the port the peer last offered its bulk lane on (on this stream) */
  laneOffer?: number
  /** a frame from the peer was read on this stream: it took the stream (a lane is used only then) */
  heard = false

  constructor (peer: PeerId, stream: LinkStream, settings: LinkSettings, log: Logger, onClosed: (link: RequesterLink) => void, onLaneOffered?: (port: number) => void) {
    this.peer = peer
    this.onLaneOffered = onLaneOffered
    this.stream = stream
    this.settings = settings
    this.log = log
    this.onClosed = onClosed
    this.splitter = new FrameSplitter(settings.limits.maxFrameBytes)
    this.outbox = new Outbox({
      stream,
      maxWriteBytes: settings.maxWriteBytes,
      bulkWriteBytes: settings.bulkWriteBytes,
      yieldAfterBulk: settings.yieldAfterBulk,
      maxBatchMessages: settings.maxBatchMessages,
      compressThreshold: settings.compressThreshold,
      lingerMs: settings.lingerMs,
      take: this.take,
      remote: () => this.remote,
      pipeBytes: settings.pipeBytes,
      ack: () => {
        if (!this.ackDue) return undefined
        this.ackDue = false
        return this.receivedBytes
      },
      onError: (err) => {
        this.log('writing to %p failed, resetting the stream - %e', this.peer, err)
        this.reset(err)
      }
    })
    stream.addEventListener('message', this.onMessage)
    stream.addEventListener('close', (evt) => {
      this.shut(evt.error ?? new StreamResetError(`stream to ${peer.toString()} closed`))
    }, { once: true })
  }

  get open (): boolean {
    return this.closedWith == null && this.stream.status === 'open' && this.stream.writeStatus === 'writable'
  }

  /** Requests waiting for an answer */
  get inFlight (): number {
    return this.pending.size
  }

  /** What the peer last reported */
  get remoteState (): RemoteState {
    return { ...this.remote }
  }

  get stats (): { frames: number, bytes: number, messages: number } {
    return { frames: this.outbox.frames, bytes: this.outbox.bytes, messages: this.outbox.messages }
  }

  private readonly take = (item: OutItem): boolean => {
    const bytes = item.message.payload.byteLength
    if (this.creditMessages < 1 || this.creditBytes < bytes) return false
    this.creditMessages--
    this.creditBytes -= bytes
    return true
  }

  /** Sends a request; resolves with the whole answer (streamed pieces joined) */
  async request (key: string, payload: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      this.enqueue(key, payload, options, { resolve, reject, pieceBytes: 0 })
    })
  }

  /** Sends a request; the answer's pieces as they arrive */
  requestStream (key: string, payload: Uint8Array, options: RequestOptions): AsyncIterable<Uint8Array> {
    let id = 0
    const answers = new AnswerStream(this.settings.maxBufferedPieceBytes, () => { this.forget(id) })
    id = this.enqueue(key, payload, options, { answers, pieceBytes: 0 })
    return answers
  }

  private enqueue (key: string, payload: Uint8Array, options: RequestOptions, p: Pending): number {
    const fail = (err: Error): number => {
      if (p.answers != null) p.answers.fail(err)
      else p.reject?.(err)
      return 0
    }
    if (this.closedWith != null) return fail(this.closedWith)
    if (payload.byteLength > this.settings.limits.maxPayloadBytes) {
      return fail(new OversizeError(`payload of ${payload.byteLength} bytes, limit ${this.settings.limits.maxPayloadBytes}`))
    }
    if (this.outbox.queued >= this.settings.maxQueued) {
      return fail(new QueueFullError(`${this.outbox.queued} messages queued for ${this.peer.toString()} already`))
    }
    if (options.signal?.aborted === true) return fail(options.signal.reason ?? new Error('aborted'))
    let id = this.nextId
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1
    while (this.pending.has(id)) id = id >= 0xffffffff ? 1 : id + 1
    this.pending.set(id, p)
    p.timer = setTimeout(() => {
      this.settle(id, new RequestTimeoutError(`no answer from ${this.peer.toString()} within ${options.timeoutMs} ms`))
    }, options.timeoutMs)
    if (options.signal != null) {
      p.signal = options.signal
      p.onAbort = () => { this.settle(id, options.signal?.reason ?? new Error('aborted')) }
      options.signal.addEventListener('abort', p.onAbort, { once: true })
    }
    this.outbox.push({ key, qos: options.qos, message: { id, kind: Kind.REQUEST, payload }, credited: true })
    return id
  }

  /** The reader stopped: late pieces of this answer are dropped */
  private forget (id: number): void {
    const p = this.pending.get(id)
    if (p == null) return
    this.pending.delete(id)
    this.cleanup(p)
  }

  private cleanup (p: Pending): void {
    clearTimeout(p.timer)
    if (p.onAbort != null) p.signal?.removeEventListener('abort', p.onAbort)
  }

  /** Ends request `id` with an answer or an error */
  private settle (id: number, result: Uint8Array | Error): void {
    const p = this.pending.get(id)
    if (p == null) return
    this.pending.delete(id)
    this.cleanup(p)
    if (result instanceof Error) {
      if (p.answers != null) p.answers.fail(result)
      else p.reject?.(result)
      return
    }
    if (p.answers != null) {
      if (result.byteLength > 0 || p.pieces == null) p.answers.push(result)
      p.answers.end()
    } else {
      p.resolve?.(result)
    }
  }

  private readonly onMessage = (evt: StreamMessageEvent): void => {
    let frames: Uint8Array[]
    try {
      frames = this.splitter.push(eventBytes(evt.data))
      const decoded = frames.map(bytes => decodeFrame(bytes, 'acceptor', this.settings.limits))
      if (decoded.length > 0) this.heard = true
      for (const frame of decoded) this.onControl(frame)
      // answers of the chunk settle realtime first (a request's messages are all of its class, so they stay in order)
      for (const qos of QOS_ORDER) for (const frame of decoded) this.onAnswers(frame, qos)
      if (this.ackDue) this.outbox.schedule('realtime')
    } catch (err: any) {
      this.log('bad frame from %p - %e', this.peer, err)
      this.reset(err)
    }
  }

  /** Acknowledgements and credits of a frame */
  private onControl (frame: Frame): void {
    if (frame.received != null) this.outbox.onAck(frame.received)
    if (frame.batches.length > 0) {
      this.receivedBytes = (this.receivedBytes + messageLoad(frame)) >>> 0
      this.ackDue = true
    }
    if (frame.credit != null) {
      const c = frame.credit
      this.creditMessages += c.grant
      this.creditBytes += c.grantBytes
      if (this.creditMessages > this.settings.limits.maxCreditMessages || this.creditBytes > this.settings.limits.maxCreditBytes) {
        throw new CreditViolationError('the peer granted more credits than the limit')
      }
      this.remote.queueDepth = c.queueDepth
      this.remote.serviceRate = c.serviceRate
      if (c.lanePort > 0) {
        this.laneOffer = c.lanePort
        this.onLaneOffered?.(c.lanePort)
      }
      if (this.outbox.queued > 0) this.outbox.schedule()
    }
  }

  /** The answers of a frame's batches of class `qos` */
  private onAnswers (frame: Frame, qos: QoS): void {
    for (const batch of frame.batches) {
      if (batch.qos !== qos) continue
      for (const m of batch.messages) {
        const p = this.pending.get(m.id)
        // a late answer to a request given up (timeout, abort): dropped
        if (p == null) continue
        switch (m.kind) {
          case Kind.RESPONSE:
            this.settle(m.id, m.payload)
            break
          case Kind.ERROR:
            this.settle(m.id, new RemoteError(m.error ?? 'remote handler failed'))
            break
          case Kind.PIECE:
            if (p.answers != null) {
              p.answers.push(m.payload)
              if (p.answers.finished) this.forget(m.id)
            } else {
              p.pieceBytes += m.payload.byteLength
              if (p.pieceBytes > this.settings.maxBufferedPieceBytes) {
                this.settle(m.id, new OversizeError(`streamed answer longer than ${this.settings.maxBufferedPieceBytes} bytes`))
              } else {
                (p.pieces ??= []).push(m.payload)
              }
            }
            break
          case Kind.END: {
            if (p.answers != null) {
              this.pending.delete(m.id)
              this.cleanup(p)
              p.answers.end()
            } else {
              this.settle(m.id, joinPieces(p.pieces ?? []))
            }
            break
          }
        }
      }
    }
  }

  /** Fails everything and aborts the stream */
  reset (err: Error): void {
    if (this.closedWith != null) return
    this.stream.abort(err)
    this.shut(err)
  }

  private shut (err: Error): void {
    if (this.closedWith != null) return
    this.closedWith = err instanceof StreamResetError ? err : new StreamResetError(`stream to ${this.peer.toString()} ended: ${err.message}`)
    this.stream.removeEventListener('message', this.onMessage)
    this.outbox.close()
    this.outbox.drop()
    for (const id of [...this.pending.keys()]) this.settle(id, this.closedWith)
    this.onClosed(this)
  }

  /** Closes the stream after the queued messages (no new requests) */
  close (): void {
    if (this.closedWith != null) return
    this.shut(new StreamResetError('sembatch stopped'))
    this.stream.close().catch(err => { this.stream.abort(err) })
  }
}

/** Joins streamed pieces into one answer */
export function joinPieces (pieces: Uint8Array[]): Uint8Array {
  return pieces.length === 1 ? pieces[0] : concat(pieces)
}
