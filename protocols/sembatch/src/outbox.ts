import { QOS_CLASSES } from './constants.js'
import { Compression, encodePrefixedFrame, qosOf } from './frame.js'
import type { QosClass } from './constants.js'
import type { Batch, Credit, Message } from './frame.js'
import type { LinkStream } from './lane/stream.js'

/** One message waiting to be written */
export interface OutItem {
  key: string
  qos: QosClass
  message: Message
  /** true for requests: they spend credits */
  credited: boolean
}

/** What the peer at the other end last reported about its queue */
export interface RemoteState {
  queueDepth: number
  /** answers per second */
  serviceRate: number
}

export interface OutboxInit {
  stream: LinkStream
  /** payload bytes per write, at most (one message larger than this goes alone) */
  maxWriteBytes: number
  /** message bytes of the bulk class per frame, at most (one larger message goes alone); default `maxWriteBytes` */
  bulkWriteBytes?: number
  /** after a frame with bulk messages, let the event loop take a turn before the next frame (default false) */
  yieldAfterBulk?: boolean
  maxBatchMessages: number
  compressThreshold: number
  /** longest wait of each class for its batch to grow, milliseconds */
  lingerMs: Record<QosClass, number>
  /** spends the credits of a request; false when there are not enough (it then waits) */
  take?: (item: OutItem) => boolean
  /** credits and queue state to send with the next frame, if any */
  credit?: () => Credit | undefined
  /** the receiver's last report, which sets how long messages linger */
  remote?: () => RemoteState
  /** message bytes (payloads plus MESSAGE_OVERHEAD each, before compression) written and not yet acknowledged, at most, before interactive and bulk messages wait */
  pipeBytes: number
  /** the acknowledgement to send with the next frame, if due */
  ack?: () => number | undefined
  onError: (err: Error) => void
}

const CLASS_INDEX: Record<QosClass, number> = { realtime: 0, interactive: 1, bulk: 2 }
/** framing overhead of one message in a batch, roughly */
export const MESSAGE_OVERHEAD = 12

/**
 * The writing half of a sembatch stream: messages queue by class, and are
 * written in frames that group them into batches by context key, realtime
 * first. When the pipe is idle a message is written at once (in the same
 * turn of the event loop as the call, so the calls of one turn share a
 * frame). While the stream waits for a drain, or while the receiver reports
 * a queue, messages of the interactive and bulk classes wait (at most their
 * class's linger) and their batches grow. Realtime messages never wait, even
 * for a drain.
 */
export class Outbox {
  private readonly init: OutboxInit
  private readonly queues: OutItem[][] = [[], [], []]
  private readonly heads = [0, 0, 0]
  /** messages queued, all classes */
  queued = 0
  private scheduled = false
  private draining = false
  private timer?: ReturnType<typeof setTimeout>
  /** the next frame after a bulk one, once the event loop had its turn */
  private yielding?: ReturnType<typeof setImmediate>
  /** the last frame written carried bulk messages */
  private wroteBulk = false
  private closed = false
  private drainWaiters: Array<() => void> = []
  /** frames and bytes written, for statistics */
  frames = 0
  bytes = 0
  messages = 0
  /** message bytes (payload plus MESSAGE_OVERHEAD each) written, and acknowledged by the peer (both wrap at 2^32) */
  private written = 0
  private acked = 0

  constructor (init: OutboxInit) {
    this.init = init
  }

  push (item: OutItem): void {
    if (this.closed) return
    this.queues[CLASS_INDEX[item.qos]].push(item)
    this.queued++
    this.schedule(item.qos)
  }

  /** Bytes written that the peer has not acknowledged reading */
  get inPipe (): number {
    return (this.written - this.acked) >>> 0
  }

  /** The peer read this many bytes of our frames (cumulative, wrapping) */
  onAck (received: number): void {
    this.acked = received >>> 0
    if (this.queued > 0) this.schedule('interactive')
  }

  /** Resolves when the stream has room again (for producers of streamed answers) */
  async ready (): Promise<void> {
    if (!this.draining || this.closed) return
    await new Promise<void>(resolve => this.drainWaiters.push(resolve))
  }

  /** Requests a write soon: at once when idle, after a linger while the receiver is busy */
  schedule (cls: QosClass = 'realtime'): void {
    if (this.scheduled || this.closed) return
    // a turn of the event loop is under way between bulk frames: only realtime cuts in
    if (this.yielding != null && cls !== 'realtime') return
    if ((this.draining || this.inPipe >= this.init.pipeBytes) && cls !== 'realtime' && this.queues[0].length === this.heads[0]) return
    const linger = this.lingerFor(cls)
    if (linger <= 0 || this.queued >= this.targetBatch(linger)) {
      this.scheduled = true
      clearTimeout(this.timer)
      this.timer = undefined
      queueMicrotask(this.flush)
      return
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined
      if (!this.scheduled) {
        this.scheduled = true
        this.flush()
      }
    }, linger)
  }

  /**
   * How long a message of the class may wait: nothing for realtime or when
   * the receiver reports an empty queue; otherwise the time the receiver
   * needs for its queue, bounded by the class's linger.
   */
  lingerFor (cls: QosClass): number {
    const bound = this.init.lingerMs[cls]
    if (bound <= 0 || this.init.remote == null) return 0
    const { queueDepth, serviceRate } = this.init.remote()
    if (queueDepth <= 0 || serviceRate <= 0) return 0
    return Math.min(bound, (queueDepth / serviceRate) * 1000)
  }

  /** Messages worth a frame of their own at once: what the receiver serves in `lingerMs` */
  targetBatch (lingerMs: number): number {
    const rate = this.init.remote?.().serviceRate ?? 0
    return Math.max(8, Math.min(this.init.maxBatchMessages, Math.round(rate * lingerMs / 1000)))
  }

  private readonly flush = (): void => {
    this.scheduled = false
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.yielding != null) {
      clearImmediate(this.yielding)
      this.yielding = undefined
    }
    if (this.closed) return
    try {
      let more = true
      while (more) {
        more = this.writeOne()
        if (more && this.wroteBulk && this.init.yieldAfterBulk === true) {
          // what arrived meanwhile (answers, realtime messages) is handled before the next bulk frame
          this.yielding = setImmediate(this.resume)
          return
        }
      }
    } catch (err: any) {
      this.fail(err)
    }
  }

  private readonly resume = (): void => {
    this.yielding = undefined
    if (this.scheduled) return
    this.scheduled = true
    this.flush()
  }

  /** Writes one frame; false when there is nothing more to write now */
  private writeOne (): boolean {
    const batches: Batch[] = []
    const open = new Map<string, Batch>()
    let budget = this.init.maxWriteBytes
    let count = 0
    let load = 0
    let blocked = false
    let bulk = false
    const bulkHead = this.heads[2]
    for (let c = 0; c < 3 && !blocked; c++) {
      // realtime messages travel in a frame of their own: a small frame, never compressed
      // with bulk bytes, that the receiver decodes as soon as its own bytes arrive
      if (c > 0 && count > 0) break
      if (c > 0) {
        // interactive and bulk go only while the pipe has room: what is queued in the
        // pipe ahead of a realtime message is what it waits for
        const room = this.init.pipeBytes - this.inPipe
        if (this.draining || room <= 0) break
        budget = Math.min(budget, room)
        // bulk frames are smaller: each synchronous step (encode, compress, encrypt, and the
        // peer's decode) is short, so a realtime message never waits long for its turn
        if (c === 2 && this.init.bulkWriteBytes != null) {
          budget = Math.min(budget, this.init.bulkWriteBytes - load)
          if (budget <= 0 && count > 0) break
        }
      }
      const queue = this.queues[c]
      let head = this.heads[c]
      while (head < queue.length && count < this.init.maxBatchMessages) {
        const item = queue[head]
        const size = item.message.payload.byteLength + MESSAGE_OVERHEAD
        if (count > 0 && size > budget) break
        if (item.credited && this.init.take != null && !this.init.take(item)) {
          // no credits: nothing else that needs them goes either, in any class
          blocked = true
          break
        }
        const mapKey = `${c}\u0000${item.key}`
        let batch = open.get(mapKey)
        if (batch == null) {
          batch = { key: item.key, qos: qosOf(QOS_CLASSES[c]), messages: [], compression: Compression.NONE, rawBytes: 0 }
          open.set(mapKey, batch)
          batches.push(batch)
        }
        batch.messages.push(item.message)
        budget -= size
        load += size
        count++
        head++
      }
      this.heads[c] = head
      this.compact(c)
      if (c === 2) bulk = head > bulkHead
    }
    this.queued -= count
    this.wroteBulk = bulk
    const credit = this.init.credit?.()
    const received = this.init.ack?.()
    if (batches.length === 0 && credit == null && received == null) return false
    const data = encodePrefixedFrame({ batches, credit, received }, this.init.compressThreshold)
    this.frames++
    this.messages += count
    this.bytes += data.byteLength
    if (batches.length > 0) this.written = (this.written + load) >>> 0
    const ok = this.init.stream.send(data)
    if (!ok) {
      this.draining = true
      this.init.stream.onDrain().then(() => {
        this.draining = false
        const waiters = this.drainWaiters
        this.drainWaiters = []
        for (const w of waiters) w()
        this.schedule()
      }, (err: Error) => { this.fail(err) })
      return false
    }
    return this.queued > 0 && !blocked && batches.length > 0
  }

  private compact (c: number): void {
    const head = this.heads[c]
    const queue = this.queues[c]
    if (head === queue.length) {
      queue.length = 0
      this.heads[c] = 0
    } else if (head > 1024 && head * 2 > queue.length) {
      queue.splice(0, head)
      this.heads[c] = 0
    }
  }

  /** Queued items that were not written, oldest first (to fail their requests) */
  drop (): OutItem[] {
    const out: OutItem[] = []
    for (let c = 0; c < 3; c++) {
      out.push(...this.queues[c].slice(this.heads[c]))
      this.queues[c] = []
      this.heads[c] = 0
    }
    this.queued = 0
    return out
  }

  private fail (err: Error): void {
    if (this.closed) return
    this.init.onError(err)
  }

  close (): void {
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.yielding != null) clearImmediate(this.yielding)
    this.yielding = undefined
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const w of waiters) w()
  }
}
