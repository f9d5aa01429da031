import { zstdAvailable, zstdCompress, zstdDecompress } from './compression.js'
import { TensorError } from './errors.js'
import { DType, Tensor, TensorCompression } from './pb/tensor.js'

export { DType, Tensor, TensorCompression }

/** Element types of the wire format */
export type DTypeName = 'f32' | 'f16' | 'bf16' | 'int8'

const DTYPES: Record<DTypeName, DType> = { f32: DType.F32, f16: DType.F16, bf16: DType.BF16, int8: DType.INT8 }
const NAMES: Record<string, DTypeName> = { [DType.F32]: 'f32', [DType.F16]: 'f16', [DType.BF16]: 'bf16', [DType.INT8]: 'int8' }
const WIDTH: Record<DTypeName, 1 | 2 | 4> = { f32: 4, f16: 2, bf16: 2, int8: 1 }

/** Limits of a decoded tensor */
export const TENSOR_LIMITS = {
  /** elements at most */
  maxElements: 4 * 1024 * 1024,
  maxDims: 8,
  /** tensors of a context a decoder keeps as delta bases */
  bases: 4
} as const

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** IEEE 754 binary32 to binary16, rounding to nearest even */
export function toF16 (v: number): number {
  f32[0] = v
  const x = u32[0]
  const sign = (x >>> 16) & 0x8000
  const e = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (e === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0)
  const exp = e - 127 + 15
  if (exp >= 0x1f) return sign | 0x7c00
  if (exp <= 0) {
    if (exp < -10) return sign
    mant |= 0x800000
    const shift = 14 - exp
    let h = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const half = 1 << (shift - 1)
    if (rem > half || (rem === half && (h & 1) === 1)) h++
    return sign | h
  }
  let h = sign | (exp << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++
  return h
}

/** IEEE 754 binary16 to a number */
export function fromF16 (h: number): number {
  const s = (h & 0x8000) !== 0 ? -1 : 1
  const e = (h >>> 10) & 0x1f
  const m = h & 0x3ff
  if (e === 0) return s * m * 2 ** -24
  if (e === 31) return m !== 0 ? NaN : s * Infinity
  return s * (1 + m / 1024) * 2 ** (e - 15)
}

/** binary32 to bfloat16 (the upper 16 bits), rounding to nearest even */
export function toBf16 (v: number): number {
  f32[0] = v
  const x = u32[0]
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return (x >>> 16) | 0x40
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff
}

export function fromBf16 (b: number): number {
  u32[0] = (b & 0xffff) << 16
  return f32[0]
}

/** Levels: the integers the wire carries for each element */
type Levels = Int8Array | Uint16Array | Uint32Array

function quantise (values: Float32Array, dtype: DTypeName, scale: number): Levels {
  const n = values.length
  switch (dtype) {
    case 'f32':
      return new Uint32Array(Float32Array.from(values).buffer)
    case 'f16': {
      const out = new Uint16Array(n)
      for (let i = 0; i < n; i++) out[i] = toF16(values[i])
      return out
    }
    case 'bf16': {
      const out = new Uint16Array(n)
      for (let i = 0; i < n; i++) out[i] = toBf16(values[i])
      return out
    }
    case 'int8': {
      const out = new Int8Array(n)
      for (let i = 0; i < n; i++) out[i] = Math.max(-127, Math.min(127, Math.round(values[i] / scale)))
      return out
    }
  }
}

function dequantise (levels: Levels, dtype: DTypeName, scale: number): Float32Array {
  const n = levels.length
  const out = new Float32Array(n)
  switch (dtype) {
    case 'f32':
      out.set(new Float32Array(levels.buffer, levels.byteOffset, n))
      break
    case 'f16':
      for (let i = 0; i < n; i++) out[i] = fromF16(levels[i])
      break
    case 'bf16':
      for (let i = 0; i < n; i++) out[i] = fromBf16(levels[i])
      break
    case 'int8':
      for (let i = 0; i < n; i++) out[i] = levels[i] * scale
      break
  }
  return out
}

/** Little-endian bytes of levels (this runs on little-endian hosts only: checked at load) */
function levelBytes (levels: Levels): Uint8Array {
  return new Uint8Array(levels.buffer, levels.byteOffset, levels.byteLength)
}

function levelsOf (bytes: Uint8Array, dtype: DTypeName, n: number): Levels {
  const copy = Uint8Array.from(bytes)
  if (copy.byteLength !== n * WIDTH[dtype]) throw new TensorError(`tensor data is ${copy.byteLength} bytes, its shape needs ${n * WIDTH[dtype]}`)
  switch (WIDTH[dtype]) {
    case 1: return new Int8Array(copy.buffer)
    case 2: return new Uint16Array(copy.buffer)
    default: return new Uint32Array(copy.buffer)
  }
}

/** Element-wise difference (a - b), wrapping at the level width */
function diff (a: Levels, b: Levels): Levels {
  const out = new (a.constructor as any)(a.length) as Levels
  for (let i = 0; i < a.length; i++) out[i] = a[i] - b[i]
  return out
}

/** Element-wise sum (a + b), wrapping at the level width */
function add (a: Levels, b: Levels): Levels {
  const out = new (a.constructor as any)(a.length) as Levels
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i]
  return out
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('@aistack/sembatch tensors need a little-endian host')

export interface TensorEncoderOptions {
  /** default 'int8' */
  dtype?: DTypeName
  /** send deltas against the previous tensor of this context (default true) */
  delta?: boolean
  /** tensor data larger than this is zstd-compressed when that helps (default 128 bytes; Infinity: never) */
  compressThreshold?: number
  /** a full tensor at least every this many (default 64), so a decoder that lost state recovers */
  keyframeEvery?: number
}

/**
 * Encodes the tensors of one context (e.g. one capability's embeddings to
 * one peer) in order. Keeps the last tensor as the base of the next delta;
 * an int8 delta keeps its base's scale, and a tensor outside that range is
 * sent whole with a new scale.
 */
export class TensorEncoder {
  private readonly dtype: DTypeName
  private readonly delta: boolean
  private readonly threshold: number
  private readonly keyframeEvery: number
  private seq = 0
  private last?: { seq: number, levels: Levels, scale: number, shape: string }
  private sinceKey = 0

  constructor (options: TensorEncoderOptions = {}) {
    this.dtype = options.dtype ?? 'int8'
    this.delta = options.delta ?? true
    this.threshold = options.compressThreshold ?? 128
    this.keyframeEvery = options.keyframeEvery ?? 64
  }

  /**
   * @param values the elements, row-major
   * @param shape default `[values.length]`
   * @throws TensorError when the shape does not match or is over the limits
   */
  encode (values: Float32Array | number[], shape: number[] = [values.length]): Uint8Array {
    const v = values instanceof Float32Array ? values : Float32Array.from(values)
    checkShape(shape, v.length)
    const shapeKey = shape.join('x')
    let scale = 0
    const last = this.last
    let useDelta = this.delta && last != null && last.shape === shapeKey && this.sinceKey < this.keyframeEvery
    if (this.dtype === 'int8') {
      let max = 0
      for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i]))
      if (useDelta && last != null && max <= last.scale * 127.49) {
        scale = last.scale
      } else {
        useDelta = false
        scale = max > 0 ? max / 127 : 1
      }
    }
    const levels = quantise(v, this.dtype, scale)
    this.seq = this.seq >= 0xffffffff ? 1 : this.seq + 1
    const data = levelBytes(useDelta && last != null ? diff(levels, last.levels) : levels)
    const tensor: Tensor = {
      shape,
      dtype: DTYPES[this.dtype],
      scale,
      data,
      seq: this.seq,
      base: useDelta ? last?.seq : undefined,
      compression: TensorCompression.RAW,
      rawBytes: 0
    }
    if (data.byteLength > this.threshold && zstdAvailable) {
      const packed = zstdCompress(data, 3)
      if (packed.byteLength < data.byteLength) {
        tensor.data = packed
        tensor.compression = TensorCompression.ZSTD
        tensor.rawBytes = data.byteLength
      }
    }
    this.sinceKey = useDelta ? this.sinceKey + 1 : 0
    this.last = { seq: this.seq, levels, scale, shape: shapeKey }
    return Tensor.encode(tensor)
  }
}

export interface DecodedTensor {
  shape: number[]
  dtype: DTypeName
  data: Float32Array
  seq: number
}

function checkShape (shape: number[], n: number, maxElements: number = TENSOR_LIMITS.maxElements): void {
  if (shape.length === 0 || shape.length > TENSOR_LIMITS.maxDims) throw new TensorError(`a tensor has 1-${TENSOR_LIMITS.maxDims} dimensions`)
  let size = 1
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new TensorError('tensor dimensions are whole numbers')
    size *= d
  }
  if (size > maxElements) throw new TensorError(`tensor of ${size} elements, limit ${maxElements}`)
  if (size !== n) throw new TensorError(`shape ${shape.join('x')} needs ${size} elements, got ${n}`)
}

/**
 * Decodes the tensors of one context, in the order they were encoded;
 * keeps the last few as delta bases.
 *
 * @throws TensorError for a malformed tensor or a delta whose base it does not hold
 */
export class TensorDecoder {
  private readonly bases: Array<{ seq: number, levels: Levels }> = []

  /**
   * @param options.maxElements a smaller bound than `TENSOR_LIMITS.maxElements` on the elements,
   *   checked from the shape before any data is decompressed
   * @param options.maxDims a smaller bound than `TENSOR_LIMITS.maxDims` on the dimensions
   */
  decode (bytes: Uint8Array, options: { maxElements?: number, maxDims?: number } = {}): DecodedTensor {
    const maxDims = Math.min(options.maxDims ?? TENSOR_LIMITS.maxDims, TENSOR_LIMITS.maxDims)
    let t: Tensor
    try {
      t = Tensor.decode(bytes, { limits: { shape: maxDims } })
    } catch (err: any) {
      throw new TensorError(`undecodable tensor: ${String(err?.message ?? err)}`)
    }
    const dtype = NAMES[t.dtype]
    if (dtype == null) throw new TensorError('unknown tensor dtype')
    let n = 1
    for (const d of t.shape) n *= d
    checkShape(t.shape, n, Math.min(options.maxElements ?? TENSOR_LIMITS.maxElements, TENSOR_LIMITS.maxElements))
    let data = t.data
    if (t.compression === TensorCompression.ZSTD) {
      if (t.rawBytes !== n * WIDTH[dtype]) throw new TensorError('compressed tensor size does not match its shape')
      try {
        data = zstdDecompress(data, t.rawBytes)
      } catch (err: any) {
        throw new TensorError(`bad compressed tensor: ${String(err?.message ?? err)}`)
      }
    } else if (t.compression !== TensorCompression.RAW) {
      throw new TensorError('unknown tensor compression')
    }
    if (dtype === 'int8' && !(Number.isFinite(t.scale) && t.scale > 0)) throw new TensorError('an int8 tensor needs a positive scale')
    let levels = levelsOf(data, dtype, n)
    if (t.base != null) {
      const base = this.bases.find(b => b.seq === t.base)
      if (base == null || base.levels.length !== n || base.levels.BYTES_PER_ELEMENT !== levels.BYTES_PER_ELEMENT) {
        throw new TensorError(`delta against tensor ${t.base}, which this decoder does not hold`)
      }
      levels = add(levels, base.levels)
    }
    this.bases.push({ seq: t.seq, levels })
    if (this.bases.length > TENSOR_LIMITS.bases) this.bases.shift()
    return { shape: t.shape, dtype, data: dequantise(levels, dtype, t.scale), seq: t.seq }
  }
}

/** Cosine similarity of two vectors of the same length */
export function cosine (a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i]
    na += a[i] * a[i]
    nb += b[i] * b[i]
  }
  return na === 0 || nb === 0 ? (na === nb ? 1 : 0) : dot / Math.sqrt(na * nb)
}
