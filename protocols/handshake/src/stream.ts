import crypto from 'node:crypto'
import { AbstractMessageStream } from '@libp2p/utils'
import { NOISE_MSG_MAX_PLAINTEXT, TAG_LENGTH } from './constants.js'
import { HandshakeDecryptError } from './errors.js'
import { aeadKey, SMALL_MESSAGE, smallOpen, smallSeal, writeNonce } from './noise/crypto.js'
import type { AbortOptions, MessageStream, StreamMessageEvent, StreamCloseEvent } from '@libp2p/interface'
import type { SendResult } from '@libp2p/utils'

/** the byte list type of the libp2p stream API */
type ByteList = Parameters<AbstractMessageStream['sendData']>[0]

const EMPTY = new Uint8Array(0)
/** pieces of a write shorter than this are joined with their neighbours before the socket */
const JOIN_BELOW = 2048
// with ~2^53 frames per direction, a connection can never wrap the nonce
const MAX_NONCE = Number.MAX_SAFE_INTEGER

/**
 * One direction of the transport phase: ChaChaPoly on node:crypto with an
 * empty associated data and a counter nonce.
 */
export class TransportCipher {
  /** raw key for the WebAssembly path (frames under SMALL_MESSAGE bytes) */
  private readonly key: Uint8Array
  /** the same key imported once into node:crypto */
  private readonly keyObject: crypto.KeyObject
  /** the nonce of the current frame, rewritten in place (both AEADs copy it) */
  private readonly nonce = Buffer.alloc(12)
  private n = 0

  constructor (key: Uint8Array) {
    this.key = key
    this.keyObject = aeadKey(key)
  }

  private next (): Buffer {
    if (this.n >= MAX_NONCE) throw new Error('Nonce exhausted; a new handshake is needed')
    return writeNonce(this.nonce, this.n++)
  }

  /** encrypts one frame body and appends `len(2) || ciphertext || tag` to `out` */
  seal (plaintext: Uint8Array | ByteList, out: Uint8Array[]): void {
    const header = Buffer.allocUnsafe(2)
    header.writeUInt16BE(plaintext.byteLength + TAG_LENGTH)
    out.push(header)
    const nonce = this.next()
    if (plaintext.byteLength < SMALL_MESSAGE) {
      out.push(smallSeal(this.key, nonce, plaintext instanceof Uint8Array ? plaintext : plaintext.subarray()))
      return
    }
    const c = crypto.createCipheriv('chacha20-poly1305', this.keyObject, nonce, { authTagLength: TAG_LENGTH })
    c.setAAD(EMPTY, { plaintextLength: plaintext.byteLength })
    if (plaintext instanceof Uint8Array) {
      out.push(c.update(plaintext))
    } else {
      for (const part of plaintext) out.push(c.update(part))
    }
    c.final()
    out.push(c.getAuthTag())
  }

  open (frame: Uint8Array): Uint8Array {
    if (frame.byteLength < TAG_LENGTH) throw new HandshakeDecryptError('Transport frame shorter than its tag')
    const nonce = this.next()
    let plaintext: Uint8Array | undefined
    if (frame.byteLength < SMALL_MESSAGE) {
      plaintext = smallOpen(this.key, nonce, frame)
    } else {
      const d = crypto.createDecipheriv('chacha20-poly1305', this.keyObject, nonce, { authTagLength: TAG_LENGTH })
      const body = frame.subarray(0, frame.byteLength - TAG_LENGTH)
      d.setAAD(EMPTY, { plaintextLength: body.byteLength })
      d.setAuthTag(frame.subarray(body.byteLength))
      plaintext = d.update(body)
      try {
        d.final()
      } catch {
        plaintext = undefined
      }
    }
    if (plaintext == null) throw new HandshakeDecryptError('Transport frame failed to authenticate')
    return plaintext
  }

  /**
   * Decrypts one frame body that arrived in several pieces (`parts`, in
   * order, not copied) and appends its plaintext to `out`, in one or more
   * pieces; nothing is appended unless the tag verifies.
   */
  openParts (parts: Uint8Array[], out: Uint8Array[]): void {
    let length = 0
    for (const part of parts) length += part.byteLength
    if (parts.length === 1 || length < SMALL_MESSAGE) {
      out.push(this.open(parts.length === 1 ? parts[0] : Buffer.concat(parts, length)))
      return
    }
    const bodyLength = length - TAG_LENGTH
    const d = crypto.createDecipheriv('chacha20-poly1305', this.keyObject, this.next(), { authTagLength: TAG_LENGTH })
    d.setAAD(EMPTY, { plaintextLength: bodyLength })
    const tag = Buffer.allocUnsafe(TAG_LENGTH)
    const plaintext: Uint8Array[] = []
    let offset = 0
    for (const part of parts) {
      const end = offset + part.byteLength
      if (offset < bodyLength) {
        plaintext.push(d.update(end <= bodyLength ? part : part.subarray(0, bodyLength - offset)))
      }
      if (end > bodyLength) {
        const from = Math.max(offset, bodyLength)
        tag.set(part.subarray(from - offset), from - bodyLength)
      }
      offset = end
    }
    d.setAuthTag(tag)
    try {
      d.final()
    } catch {
      throw new HandshakeDecryptError('Transport frame failed to authenticate')
    }
    for (const piece of plaintext) out.push(piece)
  }
}

/**
 * The secured connection handed back to the libp2p upgrader: plaintext in,
 * Noise transport frames (2-byte big-endian length, at most 65535 bytes)
 * out, as in libp2p's /noise.
 */
export class EncryptedStream extends AbstractMessageStream {
  private readonly inner: MessageStream
  private readonly sender: TransportCipher
  private readonly receiver: TransportCipher
  private readonly buffer = new ByteQueue()

  constructor (inner: MessageStream, sender: TransportCipher, receiver: TransportCipher) {
    super({
      log: inner.log,
      inactivityTimeout: inner.inactivityTimeout,
      maxReadBufferLength: inner.maxReadBufferLength,
      direction: inner.direction
    })
    this.inner = inner
    this.sender = sender
    this.receiver = receiver

    inner.addEventListener('message', (evt: StreamMessageEvent) => {
      try {
        this.receive(evt.data)
      } catch (err: any) {
        this.log.error('closing secured connection: %s', err?.message ?? err)
        this.abort(err)
      }
    })
    inner.addEventListener('close', (evt: StreamCloseEvent) => {
      if (evt.error != null) {
        if (evt.local === true) {
          this.abort(evt.error)
        } else {
          this.onRemoteReset()
        }
      } else {
        this.onTransportClosed()
      }
    })
    inner.addEventListener('drain', () => {
      this.safeDispatchEvent('drain')
    })
    inner.addEventListener('remoteCloseWrite', () => {
      this.onRemoteCloseWrite()
    })
    if (inner.status !== 'open') {
      // its close event has been and gone; this stream closes with it
      this.onTransportClosed()
    }
  }

  private receive (data: Uint8Array | ByteList): void {
    if (data instanceof Uint8Array) {
      this.buffer.push(data)
    } else {
      for (const chunk of data) this.buffer.push(chunk)
    }
    // frames are decrypted from the received chunks in place (a frame split
    // across chunks is not joined first), then handed on in one go
    const plaintext: Uint8Array[] = []
    try {
      while (true) {
        const frame = this.buffer.nextFrame()
        if (frame == null) break
        this.receiver.openParts(frame, plaintext)
      }
    } finally {
      // what authenticated before a bad frame is still delivered, as one
      // message (a frame that arrived in two reads decrypts to two pieces)
      if (plaintext.length === 1 || data instanceof Uint8Array) {
        for (const piece of plaintext) this.onData(piece)
      } else if (plaintext.length > 1) {
        // an empty byte list of the stream API's kind
        const list = data.sublist(0, 0)
        for (const piece of plaintext) list.append(piece)
        this.onData(list)
      }
    }
  }

  sendData (data: ByteList): SendResult {
    const out: Uint8Array[] = []
    for (let i = 0; i < data.byteLength; i += NOISE_MSG_MAX_PLAINTEXT) {
      const end = Math.min(i + NOISE_MSG_MAX_PLAINTEXT, data.byteLength)
      this.sender.seal(data.sublist(i, end), out)
    }
    if (out.length === 1) {
      return { sentBytes: data.byteLength, canSendMore: this.inner.send(out[0]) }
    }
    // the large ciphertexts go down as they are (copying 64 KiB per write cost a third of the
    // sealing time); only runs of small pieces (lengths, tags, short frames) are joined, so
    // that the socket sees a few writes rather than three per frame
    const list = data.sublist(0, 0)
    let run: Uint8Array[] = []
    const flushRun = (): void => {
      if (run.length === 1) list.append(run[0])
      else if (run.length > 1) list.append(Buffer.concat(run))
      run = []
    }
    for (const piece of out) {
      if (piece.byteLength < JOIN_BELOW) {
        run.push(piece)
      } else {
        flushRun()
        list.append(piece)
      }
    }
    flushRun()
    return { sentBytes: data.byteLength, canSendMore: this.inner.send(list) }
  }

  sendReset (err: Error): void {
    this.inner.abort(err)
  }

  sendPause (): void {
    this.inner.pause()
  }

  sendResume (): void {
    this.inner.resume()
  }

  async close (options?: AbortOptions): Promise<void> {
    await this.inner.close(options)
  }
}

/** received bytes waiting to form whole frames (2-byte big-endian length prefix) */
class ByteQueue {
  private readonly chunks: Uint8Array[] = []
  private length = 0

  push (chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return
    this.chunks.push(chunk)
    this.length += chunk.byteLength
  }

  /** removes the next `n` bytes (n <= length) and returns them as views of the received chunks */
  private take (n: number): Uint8Array[] {
    const parts: Uint8Array[] = []
    this.length -= n
    while (n > 0) {
      const c = this.chunks[0]
      if (c.byteLength <= n) {
        parts.push(c)
        this.chunks.shift()
        n -= c.byteLength
      } else {
        parts.push(c.subarray(0, n))
        this.chunks[0] = c.subarray(n)
        n = 0
      }
    }
    return parts
  }

  /** the next whole frame body as one or more pieces, or undefined when more bytes are needed */
  nextFrame (): Uint8Array[] | undefined {
    if (this.length < 2) return undefined
    const first = this.chunks[0]
    const size = first.byteLength >= 2 ? (first[0] << 8) | first[1] : (first[0] << 8) | this.chunks[1][0]
    if (this.length < 2 + size) return undefined
    this.take(2)
    return this.take(size)
  }
}
