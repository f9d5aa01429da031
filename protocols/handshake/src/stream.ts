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
  }

  private receive (data: Uint8Array | ByteList): void {
    this.buffer.push(data instanceof Uint8Array ? data : data.subarray())
    while (true) {
      const frame = this.buffer.nextFrame()
      if (frame == null) break
      this.onData(this.receiver.open(frame))
    }
  }

  sendData (data: ByteList): SendResult {
    const out: Uint8Array[] = []
    for (let i = 0; i < data.byteLength; i += NOISE_MSG_MAX_PLAINTEXT) {
      const end = Math.min(i + NOISE_MSG_MAX_PLAINTEXT, data.byteLength)
      this.sender.seal(data.sublist(i, end), out)
    }
    return {
      sentBytes: data.byteLength,
      canSendMore: this.inner.send(out.length === 1 ? out[0] : Buffer.concat(out))
    }
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
  private chunks: Uint8Array[] = []
  private length = 0

  push (chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return
    this.chunks.push(chunk)
    this.length += chunk.byteLength
  }

  private take (n: number): Uint8Array {
    const first = this.chunks[0]
    if (first.byteLength === n) {
      this.chunks.shift()
      this.length -= n
      return first
    }
    if (first.byteLength > n) {
      this.chunks[0] = first.subarray(n)
      this.length -= n
      return first.subarray(0, n)
    }
    const out = Buffer.allocUnsafe(n)
    let off = 0
    while (off < n) {
      const c = this.chunks[0]
      const want = n - off
      if (c.byteLength <= want) {
        out.set(c, off)
        off += c.byteLength
        this.chunks.shift()
      } else {
        out.set(c.subarray(0, want), off)
        this.chunks[0] = c.subarray(want)
        off += want
      }
    }
    this.length -= n
    return out
  }

  /** the next whole frame body, or undefined when more bytes are needed */
  nextFrame (): Uint8Array | undefined {
    if (this.length < 2) return undefined
    const first = this.chunks[0]
    const size = first.byteLength >= 2 ? (first[0] << 8) | first[1] : (first[0] << 8) | this.chunks[1][0]
    if (this.length < 2 + size) return undefined
    this.take(2)
    return this.take(size)
  }
}
