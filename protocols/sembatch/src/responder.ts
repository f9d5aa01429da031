import { INITIAL_CREDIT_BYTES, INITIAL_CREDIT_MESSAGES, QOS_CLASSES } from './constants.js'
import { CreditViolationError, UnknownContextKeyError } from './errors.js'
import { FrameSplitter, Kind, classOf, decodeFrame, eventBytes, messageLoad } from './frame.js'
import { Outbox } from './outbox.js'
import type { QosClass } from './constants.js'
import type { Credit, Frame, Message } from './frame.js'
import type { LinkSettings } from './requester.js'
import type { LinkStream } from './lane/stream.js'
import type { Logger, PeerId, StreamMessageEvent } from '@libp2p/interface'

/** What a handler learns about the request it serves */
export interface HandlerContext {
  peer: PeerId
  key: string
  qos: QosClass
  /** aborted when the stream ends */
  signal: AbortSignal
}

/** A whole answer, or its pieces as they are produced */
export type Answer = Uint8Array | AsyncIterable<Uint8Array>

/** Answers one request */
export type MessageHandler = (payload: Uint8Array, context: HandlerContext) => Answer | Promise<Answer>

/**
 * Answers a batch of requests of one context key at once: one answer (or
 * Error) per payload, in the same order. `context.qos` is the class of the
 * batch (a batch never mixes classes).
 */
export type BatchHandler = (payloads: Uint8Array[], context: HandlerContext) => Array<Uint8Array | Error> | Promise<Array<Uint8Array | Error>>

export interface HandlerOptions {
  /** requests (or batches, for a batch handler) of this key handled at once per stream */
  concurrency?: number
  /** largest batch handed to a batch handler */
  maxBatch?: number
}

export type HandlerEntry =
  | { batch: false, fn: MessageHandler, concurrency: number, maxBatch: number }
  | { batch: true, fn: BatchHandler, concurrency: number, maxBatch: number }

export interface ResponderSettings extends LinkSettings {
  /** messages and bytes this side lets the opener have in flight */
  creditMessages: number
  creditBytes: number
  lookup: (key: string) => HandlerEntry | undefined
  /** the port of this node's bulk lane once it listens (offered once per stream); none on a lane's own streams */
  lanePort?: () => number | undefined
  /** send a first frame (credits and queue state) at once, so the opener knows the stream was taken (lane streams) */
  greet?: boolean
  /** the opener sent bulk-class requests on this stream: the lane starts, and its port is offered once it listens */
  onBulk?: () => Promise<unknown>
}

interface Queued {
  message: Message
  key: string
}

const encoder = new TextEncoder()

/**
 * The acceptor's end of a sembatch stream: takes requests in the credits it
 * granted, queues them by class (realtime first) and key, hands them to the
 * key's handler (whole batches to a batch handler), and writes the answers
 * back with returned credits and the state of its queue.
 */
export class ResponderLink {
  readonly peer: PeerId
  private readonly stream: LinkStream
  private readonly settings: ResponderSettings
  private readonly log: Logger
  private readonly outbox: Outbox
  private readonly splitter: FrameSplitter
  /** bytes of frames with batches read, wrapping at 2^32, and whether the peer should hear of it */
  private receivedBytes = 0
  private ackDue = false
  /** per class, per key, requests waiting */
  private readonly queues: Array<Map<string, Queued[]>> = [new Map(), new Map(), new Map()]
  private readonly running = new Map<string, number>()
  private waiting = 0
  private active = 0
  /** credits granted and not yet used or returned */
  private outstandingMessages = 0
  private outstandingBytes = 0
  private windowMessages = INITIAL_CREDIT_MESSAGES
  private windowBytes = INITIAL_CREDIT_BYTES
  private returnMessages = 0
  private returnBytes = 0
  private reportDue = true
  /** the lane port was sent on this stream, and bulk requests were seen on it */
  private laneOffered = false
  private bulkSeen = false
  private readonly controller = new AbortController()
  private closed = false
  private rateCount = 0
  private rateSince = performance.now()
  private serviceRate = 0

  constructor (peer: PeerId, stream: LinkStream, settings: ResponderSettings, log: Logger) {
    this.peer = peer
    this.stream = stream
    this.settings = settings
    this.log = log
    this.splitter = new FrameSplitter(settings.limits.maxFrameBytes)
    // the acceptor may widen the window past the initial credits in its first frame
    this.returnMessages = Math.max(0, settings.creditMessages - INITIAL_CREDIT_MESSAGES)
    this.returnBytes = Math.max(0, settings.creditBytes - INITIAL_CREDIT_BYTES)
    this.windowMessages += this.returnMessages
    this.windowBytes += this.returnBytes
    this.outbox = new Outbox({
      stream,
      maxWriteBytes: settings.maxWriteBytes,
      bulkWriteBytes: settings.bulkWriteBytes,
      yieldAfterBulk: settings.yieldAfterBulk,
      maxBatchMessages: settings.maxBatchMessages,
      compressThreshold: settings.compressThreshold,
      lingerMs: { realtime: 0, interactive: 0, bulk: 0 },
      credit: this.credit,
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
    stream.addEventListener('remoteCloseWrite', () => {
      if (this.active === 0 && this.waiting === 0) this.stream.close().catch(err => { this.stream.abort(err) })
    }, { once: true })
    stream.addEventListener('close', (evt) => {
      if (evt.error != null && !this.closed) this.log('stream from %p ended - %e', this.peer, evt.error)
      this.shut()
    }, { once: true })
    if (this.returnMessages > 0 || this.returnBytes > 0 || settings.greet === true) this.outbox.schedule()
  }

  /** Requests received and not yet answered */
  get queueDepth (): number {
    return this.waiting + this.active
  }

  private readonly credit = (): Credit | undefined => {
    const lanePort = this.laneOffered || !this.bulkSeen ? undefined : this.settings.lanePort?.()
    if (this.returnMessages === 0 && this.returnBytes === 0 && !this.reportDue && lanePort == null) return undefined
    const credit: Credit = {
      grant: this.returnMessages,
      grantBytes: this.returnBytes,
      queueDepth: this.queueDepth,
      serviceRate: Math.round(this.serviceRate),
      lanePort: lanePort ?? 0
    }
    if (lanePort != null) this.laneOffered = true
    this.returnMessages = 0
    this.returnBytes = 0
    this.reportDue = false
    return credit
  }

  private readonly onMessage = (evt: StreamMessageEvent): void => {
    try {
      for (const bytes of this.splitter.push(eventBytes(evt.data))) this.onFrame(decodeFrame(bytes, 'opener', this.settings.limits))
      // every frame of the chunk is queued before any is started, so a realtime request
      // behind bulk ones in the same chunk starts first
      this.dispatch()
      if (this.ackDue) this.outbox.schedule('realtime')
    } catch (err: any) {
      this.log('bad frame from %p - %e', this.peer, err)
      this.reset(err)
    }
  }

  private onFrame (frame: Frame): void {
    if (frame.received != null) this.outbox.onAck(frame.received)
    if (frame.batches.length > 0) {
      this.receivedBytes = (this.receivedBytes + messageLoad(frame)) >>> 0
      this.ackDue = true
    }
    for (const batch of frame.batches) {
      const cls = classOf(batch.qos) as QosClass
      if (cls === 'bulk' && !this.bulkSeen) {
        this.bulkSeen = true
        this.settings.onBulk?.().then(() => { if (!this.closed) this.outbox.schedule() }, () => {})
      }
      const handler = this.settings.lookup(batch.key)
      if (handler == null) throw new UnknownContextKeyError(`no handler for context key "${batch.key.slice(0, 64)}"`)
      const queue = this.queues[QOS_CLASSES.indexOf(cls)]
      let q = queue.get(batch.key)
      if (q == null) {
        q = []
        queue.set(batch.key, q)
      }
      for (const message of batch.messages) {
        this.outstandingMessages++
        this.outstandingBytes += message.payload.byteLength
        if (this.outstandingMessages > this.windowMessages || this.outstandingBytes > this.windowBytes) {
          throw new CreditViolationError(`the peer sent past its credits (${this.windowMessages} messages, ${this.windowBytes} bytes)`)
        }
        q.push({ message, key: batch.key })
        this.waiting++
      }
    }
  }

  /** Starts what the handlers' concurrency allows, realtime first */
  private dispatch (): void {
    for (let c = 0; c < 3; c++) {
      const cls = QOS_CLASSES[c]
      for (const [key, q] of this.queues[c]) {
        const handler = this.settings.lookup(key)
        if (handler == null) {
          // removed while requests waited: they fail one by one
          for (const item of q.splice(0)) {
            this.waiting--
            this.finish(item, { error: new UnknownContextKeyError(`no handler for context key "${key.slice(0, 64)}"`) }, cls)
          }
          this.queues[c].delete(key)
          continue
        }
        while (q.length > 0 && (this.running.get(key) ?? 0) < handler.concurrency) {
          if (handler.batch) {
            const items = q.splice(0, handler.maxBatch)
            this.waiting -= items.length
            this.runBatch(handler.fn, key, cls, items)
          } else {
            const item = q.shift() as Queued
            this.waiting--
            this.runOne(handler.fn, key, cls, item)
          }
        }
        if (q.length === 0) this.queues[c].delete(key)
      }
    }
  }

  private context (key: string, qos: QosClass): { peer: PeerId, key: string, qos: QosClass, signal: AbortSignal } {
    return { peer: this.peer, key, qos, signal: this.controller.signal }
  }

  private started (key: string, n: number): void {
    this.running.set(key, (this.running.get(key) ?? 0) + 1)
    this.active += n
  }

  private ended (key: string, n: number): void {
    const r = (this.running.get(key) ?? 1) - 1
    if (r <= 0) this.running.delete(key)
    else this.running.set(key, r)
    this.active -= n
  }

  private runOne (fn: MessageHandler, key: string, cls: QosClass, item: Queued): void {
    this.started(key, 1)
    let result: Answer | Promise<Answer>
    try {
      result = fn(item.message.payload, this.context(key, cls))
    } catch (err: any) {
      this.ended(key, 1)
      this.finish(item, { error: err }, cls)
      return
    }
    if (result instanceof Uint8Array) {
      this.ended(key, 1)
      this.finish(item, { answer: result }, cls)
      return
    }
    Promise.resolve(result).then(async answer => {
      if (answer instanceof Uint8Array) {
        this.finish(item, { answer }, cls)
      } else if (answer != null && typeof (answer as any)[Symbol.asyncIterator] === 'function') {
        await this.streamAnswer(item, answer, cls)
      } else {
        throw new TypeError('a sembatch handler must answer with a Uint8Array or an async iterable of them')
      }
    }).catch((err: any) => {
      this.finish(item, { error: err }, cls)
    }).finally(() => {
      this.ended(key, 1)
      this.dispatch()
    })
  }

  private async streamAnswer (item: Queued, pieces: AsyncIterable<Uint8Array>, cls: QosClass): Promise<void> {
    const id = item.message.id
    for await (const piece of pieces) {
      if (this.closed) return
      if (!(piece instanceof Uint8Array)) throw new TypeError('a streamed answer\'s pieces must be Uint8Arrays')
      if (piece.byteLength > this.settings.limits.maxPayloadBytes) throw new TypeError(`a piece of ${piece.byteLength} bytes is over the limit of ${this.settings.limits.maxPayloadBytes}`)
      this.outbox.push({ key: item.key, qos: cls, message: { id, kind: Kind.PIECE, payload: piece }, credited: false })
      await this.outbox.ready()
    }
    this.finish(item, { end: true }, cls)
  }

  private runBatch (fn: BatchHandler, key: string, cls: QosClass, items: Queued[]): void {
    this.started(key, items.length)
    let result: ReturnType<BatchHandler>
    try {
      result = fn(items.map(i => i.message.payload), this.context(key, cls))
    } catch (err: any) {
      this.ended(key, items.length)
      for (const item of items) this.finish(item, { error: err }, cls)
      return
    }
    Promise.resolve(result).then(answers => {
      if (!Array.isArray(answers) || answers.length !== items.length) {
        throw new TypeError(`a batch handler must answer with an array of ${items.length} answers`)
      }
      items.forEach((item, i) => {
        const a = answers[i]
        if (a instanceof Uint8Array) this.finish(item, { answer: a }, cls)
        else this.finish(item, { error: a instanceof Error ? a : new TypeError('a batch answer must be a Uint8Array or an Error') }, cls)
      })
    }).catch((err: any) => {
      for (const item of items) this.finish(item, { error: err }, cls)
    }).finally(() => {
      this.ended(key, items.length)
      this.dispatch()
    })
  }

  /** Writes the answer (or error, or end of stream) and returns the request's credits */
  private finish (item: Queued, outcome: { answer?: Uint8Array, error?: any, end?: true }, cls: QosClass): void {
    if (this.closed) return
    const m = item.message
    this.outstandingMessages--
    this.outstandingBytes -= m.payload.byteLength
    this.returnMessages++
    this.returnBytes += m.payload.byteLength
    this.reportDue = true
    this.countServed()
    let message: Message
    if (outcome.answer != null) {
      if (outcome.answer.byteLength > this.settings.limits.maxPayloadBytes) {
        message = { id: m.id, kind: Kind.ERROR, payload: new Uint8Array(0), error: `answer of ${outcome.answer.byteLength} bytes is over the limit of ${this.settings.limits.maxPayloadBytes}` }
      } else {
        message = { id: m.id, kind: Kind.RESPONSE, payload: outcome.answer }
      }
    } else if (outcome.end === true) {
      message = { id: m.id, kind: Kind.END, payload: new Uint8Array(0) }
    } else {
      message = { id: m.id, kind: Kind.ERROR, payload: new Uint8Array(0), error: errorText(outcome.error, this.settings.limits.maxErrorBytes) }
    }
    this.outbox.push({ key: item.key, qos: cls, message, credited: false })
  }

  private countServed (): void {
    this.rateCount++
    const now = performance.now()
    const elapsed = now - this.rateSince
    if (elapsed >= 100) {
      const rate = this.rateCount * 1000 / elapsed
      this.serviceRate = this.serviceRate === 0 ? rate : 0.7 * this.serviceRate + 0.3 * rate
      this.rateCount = 0
      this.rateSince = now
    }
  }

  reset (err: Error): void {
    if (this.closed) return
    this.stream.abort(err)
    this.shut()
  }

  private shut (): void {
    if (this.closed) return
    this.closed = true
    this.stream.removeEventListener('message', this.onMessage)
    this.controller.abort(new Error('stream ended'))
    this.outbox.close()
    for (const q of this.queues) q.clear()
    this.waiting = 0
  }

  close (): void {
    if (this.closed) return
    this.shut()
    this.stream.close().catch(err => { this.stream.abort(err) })
  }
}

/** An error's text for the wire, cut to `max` UTF-8 bytes */
export function errorText (err: any, max: number): string {
  let text = `${String(err?.name ?? 'Error')}: ${String(err?.message ?? err)}`
  while (encoder.encode(text).byteLength > max) text = text.slice(0, Math.floor(text.length * 0.9))
  return text
}
