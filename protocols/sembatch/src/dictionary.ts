import * as zlib from 'node:zlib'
import { concat } from './bytes.js'
import { zstdAvailable } from './compression.js'
import { OversizeError, MalformedFrameError } from './errors.js'

/**
 * Payload compression for a context of many small similar messages: zstd
 * with a dictionary made from that context's recent traffic, carried
 * in-band the first time it is used.
 *
 * node:zlib has no dictionary trainer (zstd's ZDICT_trainFromBuffer), so the
 * dictionary is a raw-content one (RFC 8878 §5: any bytes can serve as a
 * dictionary): the most recent payloads of the context, newest last. For
 * payloads that repeat field names, keys and phrases this does most of what
 * a trained dictionary does.
 *
 * Encoded payload: one mode byte, then
 * - 0 raw: the payload;
 * - 1 zstd: varint raw length, a zstd frame;
 * - 2 dictionary: varint dictionary id, varint raw length, a zstd frame made with that dictionary;
 * - 3 new dictionary: varint id, varint dictionary length, the dictionary (zstd-compressed,
 *   varint raw length first), then as mode 2.
 */
export const DICTIONARY_LIMITS = {
  /** a dictionary's size */
  maxDictionaryBytes: 64 * 1024,
  /** a decoded payload's size */
  maxPayloadBytes: 4 * 1024 * 1024,
  /** dictionaries a decompressor keeps per context */
  keep: 2
} as const

const z = zlib as unknown as {
  zstdCompressSync: (buf: Uint8Array, options?: Record<string, unknown>) => Buffer
  zstdDecompressSync: (buf: Uint8Array, options?: Record<string, unknown>) => Buffer
}

export interface PayloadCompressorOptions {
  /** payloads smaller than this travel raw until a dictionary exists (default 64) */
  threshold?: number
  /** dictionary size (default 16 KiB, at most 64 KiB) */
  dictionaryBytes?: number
  /** payloads seen before the first dictionary (default 32) */
  firstAfter?: number
  /** a new dictionary every this many payloads (default 2048) */
  refreshEvery?: number
  /** zstd level (default 3) */
  level?: number
}

function varint (n: number, out: number[]): void {
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
}

function readVarint (buf: Uint8Array, at: { i: number }): number {
  let n = 0
  let shift = 1
  for (let k = 0; k < 5; k++) {
    if (at.i >= buf.byteLength) throw new MalformedFrameError('truncated varint')
    const b = buf[at.i++]
    n += (b & 0x7f) * shift
    if ((b & 0x80) === 0) return n
    shift *= 128
  }
  throw new MalformedFrameError('varint too long')
}

/** The sending side of one context (encodes payloads in order) */
export class PayloadCompressor {
  private readonly threshold: number
  private readonly dictionaryBytes: number
  private readonly firstAfter: number
  private readonly refreshEvery: number
  private readonly level: number
  private readonly recent: Uint8Array[] = []
  private recentBytes = 0
  private seen = 0
  private sinceDict = 0
  private dict?: { id: number, bytes: Uint8Array }

  constructor (options: PayloadCompressorOptions = {}) {
    this.threshold = options.threshold ?? 64
    this.dictionaryBytes = Math.min(DICTIONARY_LIMITS.maxDictionaryBytes, options.dictionaryBytes ?? 16 * 1024)
    this.firstAfter = options.firstAfter ?? 32
    this.refreshEvery = options.refreshEvery ?? 2048
    this.level = options.level ?? 3
  }

  private zstd (data: Uint8Array, dictionary?: Uint8Array): Uint8Array {
    return z.zstdCompressSync(data, { params: { [zlib.constants.ZSTD_c_compressionLevel]: this.level }, ...(dictionary != null ? { dictionary } : {}) })
  }

  compress (payload: Uint8Array): Uint8Array {
    if (!zstdAvailable) return concat([Uint8Array.of(0), payload])
    const head: number[] = []
    let body: Uint8Array | undefined
    if (this.seen >= this.firstAfter && (this.dict == null || this.sinceDict >= this.refreshEvery)) {
      const bytes = concat(this.recent)
      this.dict = { id: ((this.dict?.id ?? 0) + 1) % 0x7fffffff, bytes }
      this.sinceDict = 0
      const packedDict = this.zstd(bytes)
      head.push(3)
      varint(this.dict.id, head)
      const dictHead: number[] = []
      varint(bytes.byteLength, dictHead)
      varint(dictHead.length + packedDict.byteLength, head)
      body = concat([Uint8Array.from(head), Uint8Array.from(dictHead), packedDict])
      const tail: number[] = []
      varint(payload.byteLength, tail)
      body = concat([body, Uint8Array.from(tail), this.zstd(payload, bytes)])
    } else if (this.dict != null) {
      const packed = this.zstd(payload, this.dict.bytes)
      if (packed.byteLength + 4 < payload.byteLength) {
        head.push(2)
        varint(this.dict.id, head)
        varint(payload.byteLength, head)
        body = concat([Uint8Array.from(head), packed])
      }
    } else if (payload.byteLength >= this.threshold) {
      const packed = this.zstd(payload)
      if (packed.byteLength + 4 < payload.byteLength) {
        head.push(1)
        varint(payload.byteLength, head)
        body = concat([Uint8Array.from(head), packed])
      }
    }
    this.remember(payload)
    return body ?? concat([Uint8Array.of(0), payload])
  }

  private remember (payload: Uint8Array): void {
    this.seen++
    this.sinceDict++
    if (payload.byteLength > this.dictionaryBytes) return
    this.recent.push(payload)
    this.recentBytes += payload.byteLength
    while (this.recentBytes > this.dictionaryBytes) this.recentBytes -= (this.recent.shift() as Uint8Array).byteLength
  }
}

/** The receiving side of one context (decodes payloads in the order they were encoded) */
export class PayloadDecompressor {
  private readonly dicts: Array<{ id: number, bytes: Uint8Array }> = []

  /**
   * @throws MalformedFrameError for bad input or an unknown dictionary; OversizeError past the limits
   */
  decompress (data: Uint8Array): Uint8Array {
    if (data.byteLength === 0) throw new MalformedFrameError('empty payload')
    const mode = data[0]
    const at = { i: 1 }
    if (mode === 0) return data.subarray(1)
    let dictionary: Uint8Array | undefined
    if (mode === 3) {
      const id = readVarint(data, at)
      const length = readVarint(data, at)
      const end = at.i + length
      if (end > data.byteLength) throw new MalformedFrameError('truncated dictionary')
      const rawLength = readVarint(data, at)
      if (rawLength > DICTIONARY_LIMITS.maxDictionaryBytes) throw new OversizeError(`dictionary of ${rawLength} bytes, limit ${DICTIONARY_LIMITS.maxDictionaryBytes}`)
      dictionary = this.inflate(data.subarray(at.i, end), rawLength)
      at.i = end
      this.dicts.push({ id, bytes: dictionary })
      if (this.dicts.length > DICTIONARY_LIMITS.keep) this.dicts.shift()
    } else if (mode === 2) {
      const id = readVarint(data, at)
      dictionary = this.dicts.find(d => d.id === id)?.bytes
      if (dictionary == null) throw new MalformedFrameError(`payload compressed with dictionary ${id}, which this side does not hold`)
    } else if (mode !== 1) {
      throw new MalformedFrameError(`unknown payload compression mode ${mode}`)
    }
    const rawLength = readVarint(data, at)
    if (rawLength > DICTIONARY_LIMITS.maxPayloadBytes) throw new OversizeError(`payload of ${rawLength} bytes, limit ${DICTIONARY_LIMITS.maxPayloadBytes}`)
    return this.inflate(data.subarray(at.i), rawLength, dictionary)
  }

  private inflate (data: Uint8Array, rawLength: number, dictionary?: Uint8Array): Uint8Array {
    let out: Uint8Array
    try {
      out = z.zstdDecompressSync(data, { maxOutputLength: Math.max(1, rawLength), ...(dictionary != null ? { dictionary } : {}) })
    } catch (err: any) {
      throw new MalformedFrameError(`bad zstd data: ${String(err?.message ?? err)}`)
    }
    if (out.byteLength !== rawLength) throw new MalformedFrameError('decompressed size differs from the stated one')
    return out
  }
}
