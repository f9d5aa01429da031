/* eslint-disable import/export */
/* eslint-disable complexity */
/* eslint-disable @typescript-eslint/no-namespace */
/* eslint-disable @typescript-eslint/no-unnecessary-boolean-literal-compare */
/* eslint-disable @typescript-eslint/no-empty-interface */
/* eslint-disable import/consistent-type-specifier-style */
/* eslint-disable @typescript-eslint/no-unused-vars */

import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export enum DType {
  F32 = 'F32',
  F16 = 'F16',
  BF16 = 'BF16',
  INT8 = 'INT8'
}

enum __DTypeValues {
  F32 = 0,
  F16 = 1,
  BF16 = 2,
  INT8 = 3
}

export namespace DType {
  export const codec = (): Codec<DType> => {
    return enumeration<DType>(__DTypeValues)
  }
}

export enum TensorCompression {
  RAW = 'RAW',
  ZSTD = 'ZSTD'
}

enum __TensorCompressionValues {
  RAW = 0,
  ZSTD = 1
}

export namespace TensorCompression {
  export const codec = (): Codec<TensorCompression> => {
    return enumeration<TensorCompression>(__TensorCompressionValues)
  }
}

export interface Tensor {
  shape: number[]
  dtype: DType
  scale: number
  data: Uint8Array
  seq: number
  base?: number
  compression: TensorCompression
  rawBytes: number
}

export namespace Tensor {
  let _codec: Codec<Tensor>

  export const codec = (): Codec<Tensor> => {
    if (_codec == null) {
      _codec = message<Tensor>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.shape != null) {
          for (const value of obj.shape) {
            w.uint32(8)
            w.uint32(value)
          }
        }

        if (obj.dtype != null && __DTypeValues[obj.dtype] !== 0) {
          w.uint32(16)
          DType.codec().encode(obj.dtype, w)
        }

        if ((obj.scale != null && obj.scale !== 0)) {
          w.uint32(29)
          w.float(obj.scale)
        }

        if ((obj.data != null && obj.data.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.data)
        }

        if ((obj.seq != null && obj.seq !== 0)) {
          w.uint32(40)
          w.uint32(obj.seq)
        }

        if (obj.base != null) {
          w.uint32(48)
          w.uint32(obj.base)
        }

        if (obj.compression != null && __TensorCompressionValues[obj.compression] !== 0) {
          w.uint32(56)
          TensorCompression.codec().encode(obj.compression, w)
        }

        if ((obj.rawBytes != null && obj.rawBytes !== 0)) {
          w.uint32(64)
          w.uint32(obj.rawBytes)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          shape: [],
          dtype: DType.F32,
          scale: 0,
          data: uint8ArrayAlloc(0),
          seq: 0,
          compression: TensorCompression.RAW,
          rawBytes: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.shape != null && obj.shape.length === opts.limits.shape) {
                throw new MaxLengthError('Decode error - map field "shape" had too many elements')
              }

              obj.shape.push(reader.uint32())
              break
            }
            case 2: {
              obj.dtype = DType.codec().decode(reader)
              break
            }
            case 3: {
              obj.scale = reader.float()
              break
            }
            case 4: {
              obj.data = reader.bytes()
              break
            }
            case 5: {
              obj.seq = reader.uint32()
              break
            }
            case 6: {
              obj.base = reader.uint32()
              break
            }
            case 7: {
              obj.compression = TensorCompression.codec().decode(reader)
              break
            }
            case 8: {
              obj.rawBytes = reader.uint32()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      })
    }

    return _codec
  }

  export const encode = (obj: Partial<Tensor>): Uint8Array => {
    return encodeMessage(obj, Tensor.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Tensor>): Tensor => {
    return decodeMessage(buf, Tensor.codec(), opts)
  }
}
