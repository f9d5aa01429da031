import { OversizeError } from './errors.js'

/**
 * The pieces of one streamed answer as they arrive, read as an async
 * iterable. Holds at most `maxBufferedBytes` of pieces not yet read; past
 * that the answer fails (the reader is too slow), rather than memory growing.
 */
export class AnswerStream implements AsyncIterable<Uint8Array> {
  private readonly pieces: Uint8Array[] = []
  private buffered = 0
  private done = false
  private error?: Error
  private wake?: () => void
  private readonly maxBufferedBytes: number
  private readonly onCancel: () => void

  constructor (maxBufferedBytes: number, onCancel: () => void) {
    this.maxBufferedBytes = maxBufferedBytes
    this.onCancel = onCancel
  }

  get finished (): boolean {
    return this.done
  }

  push (piece: Uint8Array): void {
    if (this.done) return
    this.buffered += piece.byteLength
    if (this.buffered > this.maxBufferedBytes) {
      this.fail(new OversizeError(`more than ${this.maxBufferedBytes} bytes of streamed answer waiting to be read`))
      this.onCancel()
      return
    }
    this.pieces.push(piece)
    this.wakeUp()
  }

  end (): void {
    this.done = true
    this.wakeUp()
  }

  fail (err: Error): void {
    if (this.done) return
    this.error = err
    this.done = true
    this.wakeUp()
  }

  private wakeUp (): void {
    const w = this.wake
    this.wake = undefined
    w?.()
  }

  async * [Symbol.asyncIterator] (): AsyncGenerator<Uint8Array> {
    try {
      while (true) {
        if (this.pieces.length > 0) {
          const piece = this.pieces.shift() as Uint8Array
          this.buffered -= piece.byteLength
          yield piece
          continue
        }
        if (this.error != null) throw this.error
        if (this.done) return
        await new Promise<void>(resolve => { this.wake = resolve })
      }
    } finally {
      if (!this.done) {
        this.done = true
        this.onCancel()
      }
    }
  }
}
