import { zstdCompress, zstdDecompress, zstdAvailable } from './compression.js'
import { LIMITS } from './constants.js'
import { MalformedFrameError, OversizeError } from './errors.js'
import { writer } from 'protons-runtime'
import { concat } from './bytes.js'
import { Compression, Frame, Kind, MessageList, QoS } from './pb/sembatch.js'
import type { QosClass } from './constants.js'
import type { Batch, Credit, Message } from './pb/sembatch.js'

export { Compression, Frame, Kind, MessageList, QoS }
export type { Batch, Credit, Message }

/** Wire limits a decoder applies; `LIMITS` by default */
export type FrameLimits = typeof LIMITS

/** Which side wrote a frame: the opener sends requests, the acceptor answers and credits */
export type FrameSender = 'opener' | 'acceptor'

const QOS_BY_CLASS: Record<QosClass, QoS> = { realtime: QoS.REALTIME, interactive: QoS.INTERACTIVE, bulk: QoS.BULK }
const CLASS_BY_QOS: Record<string, QosClass> = { [QoS.REALTIME]: 'realtime', [QoS.INTERACTIVE]: 'interactive', [QoS.BULK]: 'bulk' }

export function qosOf (cls: QosClass): QoS {
  return QOS_BY_CLASS[cls]
}

/** The class of a wire QoS value, undefined for an unknown one */
export function classOf (qos: QoS): QosClass | undefined {
  return CLASS_BY_QOS[qos]
}

const encoder = new TextEncoder()

/**
 * Encodes a frame; batches with more than `compressThreshold` bytes of
 * messages are compressed with zstd when that makes them smaller.
 * Pass `Infinity` (or run on a Node without zstd) to never compress.
 */
export function encodeFrame (frame: Frame, compressThreshold = Infinity): Uint8Array {
  return Frame.encode(compressBatches(frame, compressThreshold))
}

/**
 * `withPrefix(encodeFrame(frame, compressThreshold))` in one buffer: the
 * payloads are copied once.
 */
export function encodePrefixedFrame (frame: Frame, compressThreshold = Infinity): Uint8Array {
  const w = writer()
  Frame.codec().encode(compressBatches(frame, compressThreshold), w, { lengthDelimited: true })
  return w.finish()
}

function compressBatches (frame: Frame, compressThreshold: number): Frame {
  if (compressThreshold === Infinity || !zstdAvailable) return frame
  return { ...frame, batches: frame.batches.map(b => compressBatch(b, compressThreshold)) }
}

function compressBatch (batch: Batch, threshold: number): Batch {
  let size = 0
  for (const m of batch.messages) size += m.payload.byteLength + 8
  if (size < threshold) return batch
  const raw = MessageList.encode({ messages: batch.messages })
  const packed = zstdCompress(raw)
  if (packed.byteLength >= raw.byteLength) return batch
  return { key: batch.key, qos: batch.qos, messages: [], compression: Compression.ZSTD, packed, rawBytes: raw.byteLength }
}

/**
 * Decodes and checks one frame (without its length prefix) written by
 * `from`: sizes and counts against `limits`, the kinds of messages that side
 * may send, compressed batches unpacked (bounded by `rawBytes` and the
 * limit). Exported for fuzzing.
 *
 * @throws MalformedFrameError or OversizeError; nothing else
 */
export function decodeFrame (bytes: Uint8Array, from: FrameSender, limits: FrameLimits = LIMITS): Frame {
  if (bytes.byteLength > limits.maxFrameBytes) throw new OversizeError(`frame of ${bytes.byteLength} bytes exceeds ${limits.maxFrameBytes}`)
  let frame: Frame
  try {
    // the nested limit stops decoding at the batch limit, before a frame of empty messages
    // (2 bytes each) becomes millions of objects
    frame = Frame.decode(bytes, { limits: { batches: limits.maxBatchesPerFrame, batches$: { messages: limits.maxMessagesPerBatch } } })
  } catch (err: any) {
    throw new MalformedFrameError(`undecodable frame: ${String(err?.message ?? err)}`)
  }
  if (frame.credit != null && from === 'opener') throw new MalformedFrameError('credit frame from the opener')
  let total = 0
  for (const batch of frame.batches) {
    if (batch.key.length === 0) throw new MalformedFrameError('batch without a context key')
    if (batch.key.length > limits.maxKeyBytes || encoder.encode(batch.key).byteLength > limits.maxKeyBytes) {
      throw new OversizeError(`context key longer than ${limits.maxKeyBytes} bytes`)
    }
    if (classOf(batch.qos) == null) throw new MalformedFrameError('unknown QoS class')
    if (batch.compression === Compression.ZSTD) {
      if (batch.packed == null || batch.messages.length > 0) throw new MalformedFrameError('compressed batch without packed data, or with loose messages')
      if (batch.rawBytes > limits.maxRawBatchBytes) throw new OversizeError(`compressed batch claims ${batch.rawBytes} bytes, limit ${limits.maxRawBatchBytes}`)
      const raw = zstdDecompress(batch.packed, batch.rawBytes)
      if (raw.byteLength !== batch.rawBytes) throw new MalformedFrameError('compressed batch size differs from rawBytes')
      try {
        batch.messages = MessageList.decode(raw, { limits: { messages: limits.maxMessagesPerBatch } }).messages
      } catch (err: any) {
        throw new MalformedFrameError(`undecodable compressed batch: ${String(err?.message ?? err)}`)
      }
      batch.packed = undefined
      batch.compression = Compression.NONE
    } else if (batch.compression !== Compression.NONE) {
      throw new MalformedFrameError('unknown compression')
    } else if (batch.packed != null) {
      throw new MalformedFrameError('packed data in an uncompressed batch')
    }
    if (batch.messages.length === 0) throw new MalformedFrameError('empty batch')
    if (batch.messages.length > limits.maxMessagesPerBatch) throw new OversizeError(`batch of ${batch.messages.length} messages, limit ${limits.maxMessagesPerBatch}`)
    total += batch.messages.length
    if (total > limits.maxMessagesPerFrame) throw new OversizeError(`frame of more than ${limits.maxMessagesPerFrame} messages`)
    for (const m of batch.messages) {
      if (m.payload.byteLength > limits.maxPayloadBytes) throw new OversizeError(`payload of ${m.payload.byteLength} bytes, limit ${limits.maxPayloadBytes}`)
      if (m.error != null && m.error.length > limits.maxErrorBytes) throw new OversizeError(`error text longer than ${limits.maxErrorBytes}`)
      const isRequest = m.kind === Kind.REQUEST
      if (from === 'opener' ? !isRequest : (isRequest || !(m.kind in KINDS))) {
        throw new MalformedFrameError(`message kind ${String(m.kind)} from the ${from}`)
      }
    }
  }
  if (frame.credit != null) {
    const c = frame.credit
    if (c.grant > limits.maxCreditMessages || c.grantBytes > limits.maxCreditBytes) throw new MalformedFrameError('credit grant over the limit')
    if (c.lanePort > 65_535) throw new MalformedFrameError('lane port over 65535')
  }
  return frame
}

const KINDS: Record<string, true> = { [Kind.RESPONSE]: true, [Kind.PIECE]: true, [Kind.END]: true, [Kind.ERROR]: true }

/** Bytes of a frame's messages as the pipe limit counts them: payloads plus 12 each, before compression */
export function messageLoad (frame: Frame): number {
  let load = 0
  for (const b of frame.batches) for (const m of b.messages) load += m.payload.byteLength + 12
  return load
}

/** A varint length prefix (unsigned LEB128, as protobuf and @libp2p/utils' length-prefixed streams use) */
export function lengthPrefix (n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Uint8Array.from(out)
}

/**
 * Splits a byte stream into varint-length-prefixed frames. Exported for fuzzing.
 * The pieces of a frame that arrives in many are kept as they came and joined
 * once, when the whole frame is there: a peer that sends a large frame in
 * small pieces costs one copy of it, not one per piece.
 *
 * @throws OversizeError for a frame past `maxFrameBytes` or a prefix longer than 5 bytes
 */
export class FrameSplitter {
  /** the bytes of an incomplete frame (a prefix at least begun), in the pieces they came in */
  private parts: Uint8Array[] = []
  private partBytes = 0
  /** bytes the incomplete frame takes in all, its prefix included, once its prefix is complete (else 0) */
  private need = 0
  private readonly maxFrameBytes: number

  constructor (maxFrameBytes: number = LIMITS.maxFrameBytes) {
    this.maxFrameBytes = maxFrameBytes
  }

  /** Bytes held, waiting for the rest of a frame */
  get pending (): number {
    return this.partBytes
  }

  push (chunk: Uint8Array): Uint8Array[] {
    if (chunk.byteLength === 0) return []
    let buf = chunk
    if (this.partBytes > 0) {
      this.parts.push(chunk)
      this.partBytes += chunk.byteLength
      if (this.need > 0 && this.partBytes < this.need) return []
      buf = concat(this.parts)
      this.parts = []
      this.partBytes = 0
      this.need = 0
    }
    const frames: Uint8Array[] = []
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
        if (i - offset >= 5) throw new OversizeError('frame length prefix too long')
        break
      }
      if (length > this.maxFrameBytes) throw new OversizeError(`frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`)
      if (i + length > buf.byteLength) {
        this.need = i + length - offset
        break
      }
      frames.push(buf.subarray(i, i + length))
      offset = i + length
    }
    if (offset < buf.byteLength) {
      this.parts = [buf.slice(offset)]
      this.partBytes = buf.byteLength - offset
    }
    return frames
  }
}

/** The bytes of a stream 'message' event as one Uint8Array */
export function eventBytes (data: Uint8Array | { subarray(): Uint8Array }): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray()
}

/** A frame with its length prefix, ready to write */
export function withPrefix (frame: Uint8Array): Uint8Array {
  const prefix = lengthPrefix(frame.byteLength)
  const out = new Uint8Array(prefix.byteLength + frame.byteLength)
  out.set(prefix, 0)
  out.set(frame, prefix.byteLength)
  return out
}
