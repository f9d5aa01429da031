import { StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import type { ToLane } from './messages.js'
import type { MessageStreamEvents, MessageStreamStatus, MessageStreamWriteStatus, Stream } from '@libp2p/interface'

/**
 * What a sembatch link needs of a stream: a libp2p `Stream`, or a
 * `LaneStream` whose bytes a bulk lane worker carries.
 */
export type LinkStream = Pick<Stream, 'status' | 'writeStatus' | 'send' | 'onDrain' | 'close' | 'abort' | 'addEventListener' | 'removeEventListener'>

/**
 * The node's thread's end of a stream carried by the bulk lane worker. It
 * behaves as a libp2p stream for a sembatch link: `send` hands the bytes to
 * the worker (transferred, not copied) and returns false while more than
 * `highWater` bytes are handed over and not yet written there; 'message'
 * events bring what the worker read, and tell it they were consumed.
 */
export class LaneStream extends TypedEventEmitter<MessageStreamEvents> implements LinkStream {
  readonly id: number
  status: MessageStreamStatus = 'open'
  writeStatus: MessageStreamWriteStatus = 'writable'
  private readonly post: (msg: ToLane, transfer?: ArrayBuffer[]) => void
  private readonly highWater: number
  /** bytes handed to the worker and not yet written by it */
  private unwritten = 0
  private drainWaiters: Array<{ resolve: () => void, reject: (err: Error) => void }> = []
  private closeWaiters: Array<() => void> = []

  constructor (id: number, post: (msg: ToLane, transfer?: ArrayBuffer[]) => void, highWater: number) {
    super()
    this.id = id
    this.post = post
    this.highWater = highWater
  }

  send (data: Uint8Array | { subarray(): Uint8Array }): boolean {
    if (this.writeStatus !== 'writable') throw new Error(`the lane stream is ${this.writeStatus}`)
    const view = data instanceof Uint8Array ? data : data.subarray()
    // transferred to the worker: a buffer of its own, so nothing else loses its bytes
    const bytes = view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer ? view : view.slice()
    this.unwritten += bytes.byteLength
    this.post({ op: 'send', id: this.id, chunks: [bytes] }, [bytes.buffer as ArrayBuffer])
    return this.unwritten <= this.highWater
  }

  async onDrain (options?: { signal?: AbortSignal }): Promise<void> {
    if (this.unwritten <= this.highWater) return
    if (this.status !== 'open') throw new Error(`the lane stream is ${this.status}`)
    await new Promise<void>((resolve, reject) => {
      this.drainWaiters.push({ resolve, reject })
      options?.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }, { once: true })
    })
  }

  async close (): Promise<void> {
    if (this.status !== 'open') return
    this.status = 'closing'
    this.writeStatus = 'closing'
    this.post({ op: 'close', id: this.id })
    await new Promise<void>(resolve => this.closeWaiters.push(resolve))
  }

  abort (err: Error): void {
    if (this.status === 'closed' || this.status === 'aborted') return
    this.post({ op: 'abort', id: this.id, reason: String(err.message) })
    this.ended('aborted', err, true)
  }

  /**
   * The worker read bytes of this stream. They are handed on one chunk per
   * turn of the event loop, so what else arrives (a realtime message on the
   * node's own connection) waits for one chunk's work at most.
   */
  onData (chunks: Uint8Array[]): void {
    this.incoming.push(...chunks)
    if (this.delivering == null) this.delivering = setImmediate(this.deliver)
  }

  private readonly incoming: Uint8Array[] = []
  private delivering?: ReturnType<typeof setImmediate>
  /** bytes delivered that the worker has not heard of (told when the queue empties, or each MiB) */
  private consumed = 0
  private readonly deliver = (): void => {
    this.delivering = undefined
    const chunk = this.incoming.shift()
    if (chunk == null) return
    if (this.incoming.length > 0) this.delivering = setImmediate(this.deliver)
    if (this.status === 'open' || this.status === 'closing') this.dispatchEvent(new StreamMessageEvent(chunk))
    this.consumed += chunk.byteLength
    if (this.incoming.length === 0 || this.consumed >= 1024 * 1024) {
      this.post({ op: 'consumed', id: this.id, bytes: this.consumed })
      this.consumed = 0
    }
  }

  /** The worker wrote bytes of this stream */
  onWritten (bytes: number): void {
    this.unwritten -= bytes
    if (this.unwritten <= this.highWater && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters
      this.drainWaiters = []
      for (const w of waiters) w.resolve()
      this.safeDispatchEvent('drain')
    }
  }

  onRemoteCloseWrite (): void {
    this.safeDispatchEvent('remoteCloseWrite')
  }

  /** The worker's stream closed (an error when it was reset or failed) */
  onClosed (reason?: string): void {
    this.ended(reason == null ? 'closed' : 'reset', reason == null ? undefined : new Error(`lane stream: ${reason}`), false)
  }

  private ended (status: MessageStreamStatus, err: Error | undefined, local: boolean): void {
    if (this.status === 'closed' || this.status === 'aborted' || this.status === 'reset') return
    this.status = status
    this.writeStatus = 'closed'
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const w of waiters) w.reject(err ?? new Error('the lane stream closed'))
    for (const w of this.closeWaiters.splice(0)) w()
    this.dispatchEvent(new StreamCloseEvent(local, err))
  }
}
