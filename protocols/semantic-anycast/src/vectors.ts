/**
 * Numeric vectors in INVOKE answers as compact tensors (docs/protocols/semantic-anycast.md,
 * "Vectors in answers"). An asker says in `Request.vectors` how it takes them; the answering
 * node replaces each array of at least `VECTOR_LIMITS.minLength` finite numbers in the output
 * by `{"$tensor": <index>}` and carries the numbers as a sembatch `Tensor` in
 * `Response.tensors[index]`. With `F32` an array goes as a tensor only when every element
 * decodes to the same JSON number (see `f32Number`), so the asker's output is exactly the JSON
 * answer; `F16`, `BF16` and `INT8` are lossy and only used when the asker asks for them.
 */
import { Tensor, TensorDecoder, TensorEncoder } from '@aistack/sembatch'
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
  maxTensors: 4096
} as const

/** largest finite binary16 value */
const F16_MAX = 65504

/**
 * The JSON number a binary32 value `y` decodes to: its shortest form of 6
 * significant digits when that is the same binary32 value, else 9 digits
 * (enough for any binary32, IEEE 754 §5.12.2). A number of at most 6
 * significant digits that fits a binary32's range comes back unchanged.
 */
export function f32Number (y: number): number {
  const short = Number(y.toPrecision(6))
  return Math.fround(short) === y ? short : Number(y.toPrecision(9))
}

/**
 * An output as the bytes of its JSON and its numeric vectors as tensors.
 * Nothing is taken out (`tensors` empty) for `JSON`, when no array
 * qualifies, or when the output holds an object with a `$tensor` key of its
 * own (which the asker could not tell from a placeholder).
 *
 * @param output a JSON-serialisable value (as `JSON.stringify` takes it)
 * @returns `json`: the output's JSON text with placeholders
 */
export function packVectors (output: unknown, encoding: VectorEncoding): { json: string, tensors: Uint8Array[] } {
  const dtype = DTYPE[encoding]
  if (dtype == null) return { json: JSON.stringify(output ?? null), tensors: [] }
  const tensors: Uint8Array[] = []
  let clash = false
  const json = JSON.stringify(output ?? null, function (_key, value: unknown) {
    if (value == null || typeof value !== 'object') return value
    if (!Array.isArray(value)) {
      if (Object.hasOwn(value, '$tensor')) clash = true
      return value
    }
    if (value.length < VECTOR_LIMITS.minLength || tensors.length >= VECTOR_LIMITS.maxTensors || !fits(value, dtype)) return value
    const encoder = new TensorEncoder({ dtype, delta: false })
    tensors.push(encoder.encode(Float32Array.from(value as number[])))
    return { $tensor: tensors.length - 1 }
  })
  if (clash) return { json: JSON.stringify(output ?? null), tensors: [] }
  return { json, tensors }
}

/** Whether every element is a number the element type carries (exactly, for f32) */
function fits (values: unknown[], dtype: DTypeName): boolean {
  for (const x of values) {
    if (typeof x !== 'number' || !Number.isFinite(x)) return false
    if (dtype === 'f32' && f32Number(Math.fround(x)) !== x) return false
    if (dtype === 'f16' && Math.abs(x) > F16_MAX) return false
  }
  return true
}

/**
 * The output of an answer: its JSON with each `{"$tensor": i}` replaced by
 * the numbers of `tensors[i]`.
 *
 * @param maxElements the most numbers all tensors may decode to (an output
 *   whose JSON would be over the size limit is refused before it is built)
 * @throws BadResponseError when the JSON is malformed, a placeholder names no
 *   tensor, a tensor is malformed or not one-dimensional, or the numbers are over `maxElements`
 */
export function unpackVectors (json: string, tensors: Uint8Array[], maxElements: number): unknown {
  let budget = maxElements
  const reviver = function (_key: string, value: any): unknown {
    if (value == null || typeof value !== 'object' || Array.isArray(value)) return value
    const keys = Object.keys(value)
    if (keys.length !== 1 || keys[0] !== '$tensor') return value
    const index = value.$tensor
    if (!Number.isInteger(index) || index < 0 || index >= tensors.length) throw new BadResponseError(`the output names tensor ${String(index)}, the response holds ${tensors.length}`)
    const bytes = tensors[index]
    let shape: number[]
    try {
      shape = Tensor.decode(bytes, { limits: { shape: 1 } }).shape
    } catch (err: any) {
      throw new BadResponseError(`tensor ${String(index)} is malformed: ${String(err?.message ?? err)}`)
    }
    if (shape.length !== 1) throw new BadResponseError(`tensor ${String(index)} is not one-dimensional`)
    budget -= shape[0]
    if (budget < 0) throw new BadResponseError(`the response's tensors hold more than ${maxElements} numbers`)
    try {
      return Array.from(new TensorDecoder().decode(bytes).data, f32Number)
    } catch (err: any) {
      throw new BadResponseError(`tensor ${String(index)} is malformed: ${String(err?.message ?? err)}`)
    }
  }
  try {
    return JSON.parse(json, reviver)
  } catch (err: any) {
    if (err instanceof BadResponseError) throw err
    throw new BadResponseError('response output is not JSON')
  }
}
