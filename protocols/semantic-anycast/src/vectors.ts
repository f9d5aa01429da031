/**
 * Numeric vectors in INVOKE answers as compact tensors (docs/protocols/semantic-anycast.md,
 * "Vectors in answers"). An asker says in `Request.vectors` how it takes them; the answering
 * node replaces each array of at least `VECTOR_LIMITS.minLength` finite numbers in the output
 * by `{"$tensor": <index>}` and carries the numbers as a sembatch `Tensor` in
 * `Response.tensors[index]`. With `F32` an array goes as a tensor only when every element
 * decodes to the same JSON number (see `f32Number`), so the asker's output is exactly the JSON
 * answer; `F16`, `BF16` and `INT8` are lossy and only used when the asker asks for them.
 */
import { TensorDecoder, TensorEncoder } from '@aistack/sembatch'
import { BadResponseError } from './errors.js'
import { VectorEncoding } from './pb/anycast.js'
import type { DTypeName } from '@aistack/sembatch'

export { VectorEncoding }

/** How an asker takes numeric vectors in answers: JSON numbers or a tensor element type */
export type VectorsName = 'json' | DTypeName

export const VECTOR_ENCODINGS: Record<VectorsName, VectorEncoding> = {
  json: VectorEncoding.JSON,
  f32: VectorEncoding.F32,
  f16: VectorEncoding.F16,
  bf16: VectorEncoding.BF16,
  int8: VectorEncoding.INT8
}

const DTYPE: Partial<Record<VectorEncoding, DTypeName>> = {
  [VectorEncoding.F32]: 'f32',
  [VectorEncoding.F16]: 'f16',
  [VectorEncoding.BF16]: 'bf16',
  [VectorEncoding.INT8]: 'int8'
}

export const VECTOR_LIMITS = {
  /** shorter arrays stay JSON numbers: a tensor's header would eat the gain */
  minLength: 16,
  /** tensors in one response; a response with more is malformed */
  maxTensors: 4096,
  /**
   * numbers the tensors of one response may decode to, beyond the output limit's: this many,
   * plus `numbersPerByte` per byte of tensors received (so a small answer cannot make the asker
   * build millions of numbers); the answering node sends an output past it as plain JSON
   */
  freeNumbers: 65_536,
  numbersPerByte: 4
} as const

/** largest finite binary16 and bfloat16 values */
const F16_MAX = 65504
const BF16_MAX = 3.3895313892515355e38
/** smallest positive binary32 */
const F32_MIN = 1.401298464324817e-45
/** protobuf framing of one `tensors` entry, at most (tag and length) */
export const TENSOR_FRAMING_BYTES = 6

/**
 * The JSON number a binary32 value `y` decodes to: its shortest form of 6
 * significant digits when that is the same binary32 value, else 9 digits
 * (enough for any binary32, IEEE 754 §5.12.2). A number of at most 6
 * significant digits in binary32's normal range comes back unchanged.
 */
export function f32Number (y: number): number {
  // zero and whole numbers binary32 holds exactly: the rule below gives them back as they are
  if (y === 0) return 0
  if (Number.isInteger(y) && Math.abs(y) < 16_777_216) return y
  const short = Number(y.toPrecision(6))
  return Math.fround(short) === y ? short : Number(y.toPrecision(9))
}

/**
 * An output as the bytes of its JSON and its numeric vectors as tensors.
 * Nothing is taken out (`tensors` empty) for `JSON`, when no array
 * qualifies, when the output holds an object with a `$tensor` key of its
 * own (which the asker could not tell from a placeholder), or when its
 * tensors would decode to more numbers than an asker takes for their size
 * (see `VECTOR_LIMITS`).
 *
 * @param output a JSON-serialisable value (as `JSON.stringify` takes it)
 * @returns `json`: the output's JSON text with placeholders
 * @throws what `JSON.stringify` throws for the output (a cycle, a BigInt)
 */
export function packVectors (output: unknown, encoding: VectorEncoding): { json: string, tensors: Uint8Array[] } {
  const plain = (): { json: string, tensors: Uint8Array[] } => ({ json: JSON.stringify(output ?? null), tensors: [] })
  const dtype = DTYPE[encoding]
  if (dtype == null) return plain()
  const tensors: Uint8Array[] = []
  let numbers = 0
  let clash = false
  let json: string
  try {
    json = JSON.stringify(output ?? null, function (_key, value: unknown) {
      if (value == null || typeof value !== 'object') return value
      if (!Array.isArray(value)) {
        if (Object.hasOwn(value, '$tensor')) clash = true
        return value
      }
      if (value.length < VECTOR_LIMITS.minLength || tensors.length >= VECTOR_LIMITS.maxTensors) return value
      const values = copyIfFits(value, dtype)
      if (values == null) return value
      tensors.push(new TensorEncoder({ dtype, delta: false }).encode(values))
      numbers += values.length
      return { $tensor: tensors.length - 1 }
    })
  } catch (err: any) {
    // nesting deeper than the replacer's stack: JSON.stringify alone may still manage
    if (err instanceof RangeError) return plain()
    throw err
  }
  if (clash) return plain()
  const bytes = tensors.reduce((n, t) => n + t.byteLength, 0)
  if (numbers > VECTOR_LIMITS.freeNumbers + VECTOR_LIMITS.numbersPerByte * bytes) return plain()
  return { json, tensors }
}

/**
 * The elements as binary32, read once by index (as `JSON.stringify` reads
 * them), when every one is a number the element type carries (exactly, for
 * f32); undefined otherwise.
 */
function copyIfFits (value: unknown[], dtype: DTypeName): Float32Array | undefined {
  const out = new Float32Array(value.length)
  let max = 0
  for (let i = 0; i < value.length; i++) {
    const x = value[i]
    if (typeof x !== 'number' || !Number.isFinite(Math.fround(x))) return undefined
    if (dtype === 'f32' && f32Number(Math.fround(x)) !== x) return undefined
    if (dtype === 'f16' && Math.abs(x) > F16_MAX) return undefined
    if (dtype === 'bf16' && Math.abs(x) > BF16_MAX) return undefined
    max = Math.max(max, Math.abs(x))
    out[i] = x
  }
  // int8's scale (max / 127) must be a positive binary32
  if (dtype === 'int8' && max > 0 && Math.fround(max / 127) < F32_MIN) return undefined
  return out
}

/**
 * The output of an answer: its JSON with each `{"$tensor": i}` replaced by
 * the numbers of `tensors[i]`.
 *
 * @param expected the encoding the request asked for: tensors of another element type are refused
 * @param maxElements the most numbers the tensors may decode to, counted per placeholder (an
 *   output whose JSON would be over the size limit is refused before it is built); further bounded
 *   by `VECTOR_LIMITS.freeNumbers` plus `numbersPerByte` per byte of tensors
 * @throws BadResponseError when the JSON is malformed, the request asked for no tensors, a
 *   placeholder names no tensor, a tensor is malformed, of another element type, not
 *   one-dimensional or holds a number JSON cannot, or the numbers are over the bound
 */
export function unpackVectors (json: string, tensors: Uint8Array[], expected: VectorEncoding, maxElements: number): unknown {
  let root: unknown
  try {
    root = JSON.parse(json)
  } catch {
    throw new BadResponseError('response output is not JSON')
  }
  if (tensors.length === 0) return root
  const dtype = DTYPE[expected]
  if (dtype == null) throw new BadResponseError('the response holds tensors the request did not ask for')
  const received = tensors.reduce((n, t) => n + t.byteLength, 0)
  const bound = Math.min(maxElements, VECTOR_LIMITS.freeNumbers + VECTOR_LIMITS.numbersPerByte * received)
  let used = 0
  const decoded = new Map<number, number[]>()
  const numbersOf = (index: unknown): number[] => {
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= tensors.length) throw new BadResponseError(`the output names tensor ${String(index)}, the response holds ${tensors.length}`)
    let numbers = decoded.get(index)
    if (numbers == null) {
      numbers = decodeOne(tensors[index], index, dtype, bound - used)
      decoded.set(index, numbers)
    }
    // each place counts: the output holds the numbers once per place
    used += Math.max(1, numbers.length)
    if (used > bound) throw new BadResponseError(`the response's tensors hold more than ${bound} numbers`)
    return numbers
  }
  // an explicit stack, not recursion: the output may nest as deep as JSON.parse allows
  const top = { root }
  const stack: Array<[Record<string | number, unknown>, string | number]> = [[top as Record<string, unknown>, 'root']]
  while (stack.length > 0) {
    const [holder, key] = stack.pop() as [Record<string | number, unknown>, string | number]
    const value = holder[key]
    if (value == null || typeof value !== 'object') continue
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        if (value[i] != null && typeof value[i] === 'object') stack.push([value as unknown as Record<number, unknown>, i])
      }
      continue
    }
    const keys = Object.keys(value)
    if (keys.length === 1 && keys[0] === '$tensor') {
      // a data property, whatever the key (a "__proto__" key must not set a prototype)
      Object.defineProperty(holder, key, { value: numbersOf((value as Record<string, unknown>).$tensor), writable: true, enumerable: true, configurable: true })
      continue
    }
    for (const k of keys) {
      const v = (value as Record<string, unknown>)[k]
      if (v != null && typeof v === 'object') stack.push([value as Record<string, unknown>, k])
    }
  }
  return top.root
}

/** One tensor's numbers as JSON numbers, within `room` numbers */
function decodeOne (bytes: Uint8Array, index: number, dtype: DTypeName, room: number): number[] {
  let tensor: ReturnType<TensorDecoder['decode']>
  try {
    // one dimension, at most `room` elements: both checked before any data is decompressed
    tensor = new TensorDecoder().decode(bytes, { maxElements: room, maxDims: 1 })
  } catch (err: any) {
    throw new BadResponseError(`tensor ${index} is malformed or too large: ${String(err?.message ?? err)}`)
  }
  if (tensor.dtype !== dtype) throw new BadResponseError(`tensor ${index} is ${tensor.dtype}, the request asked for ${dtype}`)
  const out = new Array<number>(tensor.data.length)
  let last = NaN
  let lastNumber = NaN
  for (let i = 0; i < tensor.data.length; i++) {
    const y = tensor.data[i]
    if (y !== last) {
      if (!Number.isFinite(y)) throw new BadResponseError(`tensor ${index} holds ${y}, which JSON cannot`)
      last = y
      lastNumber = f32Number(y)
    }
    out[i] = lastNumber
  }
  return out
}
