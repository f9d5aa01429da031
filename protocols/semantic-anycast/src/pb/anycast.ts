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

export interface Attributes {
  cost?: number
  maxConcurrency?: number
  region?: string
  privacy?: string
}

export namespace Attributes {
  let _codec: Codec<Attributes>

  export const codec = (): Codec<Attributes> => {
    if (_codec == null) {
      _codec = message<Attributes>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.cost != null) {
          w.uint32(9)
          w.double(obj.cost)
        }

        if (obj.maxConcurrency != null) {
          w.uint32(16)
          w.uint32(obj.maxConcurrency)
        }

        if (obj.region != null) {
          w.uint32(26)
          w.string(obj.region)
        }

        if (obj.privacy != null) {
          w.uint32(34)
          w.string(obj.privacy)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {}

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.cost = reader.double()
              break
            }
            case 2: {
              obj.maxConcurrency = reader.uint32()
              break
            }
            case 3: {
              obj.region = reader.string()
              break
            }
            case 4: {
              obj.privacy = reader.string()
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

  export const encode = (obj: Partial<Attributes>): Uint8Array => {
    return encodeMessage(obj, Attributes.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Attributes>): Attributes => {
    return decodeMessage(buf, Attributes.codec(), opts)
  }
}

export interface CapabilityRecord {
  network: string
  name: string
  description: string
  tags: string[]
  examples: string[]
  model: string
  dim: number
  vector: Uint8Array
  scale: number
  attributes?: Attributes
  owner: string
  seq: bigint
  expiresAt: bigint
  tombstone: boolean
}

export namespace CapabilityRecord {
  let _codec: Codec<CapabilityRecord>

  export const codec = (): Codec<CapabilityRecord> => {
    if (_codec == null) {
      _codec = message<CapabilityRecord>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.network != null && obj.network !== '')) {
          w.uint32(10)
          w.string(obj.network)
        }

        if ((obj.name != null && obj.name !== '')) {
          w.uint32(18)
          w.string(obj.name)
        }

        if ((obj.description != null && obj.description !== '')) {
          w.uint32(26)
          w.string(obj.description)
        }

        if (obj.tags != null) {
          for (const value of obj.tags) {
            w.uint32(34)
            w.string(value)
          }
        }

        if (obj.examples != null) {
          for (const value of obj.examples) {
            w.uint32(42)
            w.string(value)
          }
        }

        if ((obj.model != null && obj.model !== '')) {
          w.uint32(50)
          w.string(obj.model)
        }

        if ((obj.dim != null && obj.dim !== 0)) {
          w.uint32(56)
          w.uint32(obj.dim)
        }

        if ((obj.vector != null && obj.vector.byteLength > 0)) {
          w.uint32(66)
          w.bytes(obj.vector)
        }

        if ((obj.scale != null && obj.scale !== 0)) {
          w.uint32(77)
          w.float(obj.scale)
        }

        if (obj.attributes != null) {
          w.uint32(82)
          Attributes.codec().encode(obj.attributes, w)
        }

        if ((obj.owner != null && obj.owner !== '')) {
          w.uint32(90)
          w.string(obj.owner)
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(96)
          w.uint64(obj.seq)
        }

        if ((obj.expiresAt != null && obj.expiresAt !== 0n)) {
          w.uint32(104)
          w.uint64(obj.expiresAt)
        }

        if ((obj.tombstone != null && obj.tombstone !== false)) {
          w.uint32(112)
          w.bool(obj.tombstone)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          network: '',
          name: '',
          description: '',
          tags: [],
          examples: [],
          model: '',
          dim: 0,
          vector: uint8ArrayAlloc(0),
          scale: 0,
          owner: '',
          seq: 0n,
          expiresAt: 0n,
          tombstone: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.network = reader.string()
              break
            }
            case 2: {
              obj.name = reader.string()
              break
            }
            case 3: {
              obj.description = reader.string()
              break
            }
            case 4: {
              if (opts.limits?.tags != null && obj.tags.length === opts.limits.tags) {
                throw new MaxLengthError('Decode error - map field "tags" had too many elements')
              }

              obj.tags.push(reader.string())
              break
            }
            case 5: {
              if (opts.limits?.examples != null && obj.examples.length === opts.limits.examples) {
                throw new MaxLengthError('Decode error - map field "examples" had too many elements')
              }

              obj.examples.push(reader.string())
              break
            }
            case 6: {
              obj.model = reader.string()
              break
            }
            case 7: {
              obj.dim = reader.uint32()
              break
            }
            case 8: {
              obj.vector = reader.bytes()
              break
            }
            case 9: {
              obj.scale = reader.float()
              break
            }
            case 10: {
              obj.attributes = Attributes.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.attributes
              })
              break
            }
            case 11: {
              obj.owner = reader.string()
              break
            }
            case 12: {
              obj.seq = reader.uint64()
              break
            }
            case 13: {
              obj.expiresAt = reader.uint64()
              break
            }
            case 14: {
              obj.tombstone = reader.bool()
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

  export const encode = (obj: Partial<CapabilityRecord>): Uint8Array => {
    return encodeMessage(obj, CapabilityRecord.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<CapabilityRecord>): CapabilityRecord => {
    return decodeMessage(buf, CapabilityRecord.codec(), opts)
  }
}

export enum VectorEncoding {
  JSON = 'JSON',
  F32 = 'F32',
  F16 = 'F16',
  BF16 = 'BF16',
  INT8 = 'INT8'
}

enum __VectorEncodingValues {
  JSON = 0,
  F32 = 1,
  F16 = 2,
  BF16 = 3,
  INT8 = 4
}

export namespace VectorEncoding {
  export const codec = (): Codec<VectorEncoding> => {
    return enumeration<VectorEncoding>(__VectorEncodingValues)
  }
}

export interface Request {
  kind: Request.Kind
  id: Uint8Array
  deadlineMs: number
  capability: string
  input: Uint8Array
  model: string
  keys: Uint8Array[]
  held?: boolean
  traceparent?: string
  vectors: VectorEncoding
}

export namespace Request {
  export enum Kind {
    INVOKE = 'INVOKE',
    GET_RECORDS = 'GET_RECORDS'
  }

  enum __KindValues {
    INVOKE = 0,
    GET_RECORDS = 1
  }

  export namespace Kind {
    export const codec = (): Codec<Kind> => {
      return enumeration<Kind>(__KindValues)
    }
  }

  let _codec: Codec<Request>

  export const codec = (): Codec<Request> => {
    if (_codec == null) {
      _codec = message<Request>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.kind != null && __KindValues[obj.kind] !== 0) {
          w.uint32(8)
          Request.Kind.codec().encode(obj.kind, w)
        }

        if ((obj.id != null && obj.id.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.id)
        }

        if ((obj.deadlineMs != null && obj.deadlineMs !== 0)) {
          w.uint32(24)
          w.uint32(obj.deadlineMs)
        }

        if ((obj.capability != null && obj.capability !== '')) {
          w.uint32(34)
          w.string(obj.capability)
        }

        if ((obj.input != null && obj.input.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.input)
        }

        if ((obj.model != null && obj.model !== '')) {
          w.uint32(50)
          w.string(obj.model)
        }

        if (obj.keys != null) {
          for (const value of obj.keys) {
            w.uint32(58)
            w.bytes(value)
          }
        }

        if (obj.held != null) {
          w.uint32(64)
          w.bool(obj.held)
        }

        if (obj.traceparent != null) {
          w.uint32(74)
          w.string(obj.traceparent)
        }

        if (obj.vectors != null && __VectorEncodingValues[obj.vectors] !== 0) {
          w.uint32(80)
          VectorEncoding.codec().encode(obj.vectors, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          kind: Kind.INVOKE,
          id: uint8ArrayAlloc(0),
          deadlineMs: 0,
          capability: '',
          input: uint8ArrayAlloc(0),
          model: '',
          keys: [],
          vectors: VectorEncoding.JSON
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.kind = Request.Kind.codec().decode(reader)
              break
            }
            case 2: {
              obj.id = reader.bytes()
              break
            }
            case 3: {
              obj.deadlineMs = reader.uint32()
              break
            }
            case 4: {
              obj.capability = reader.string()
              break
            }
            case 5: {
              obj.input = reader.bytes()
              break
            }
            case 6: {
              obj.model = reader.string()
              break
            }
            case 7: {
              if (opts.limits?.keys != null && obj.keys.length === opts.limits.keys) {
                throw new MaxLengthError('Decode error - map field "keys" had too many elements')
              }

              obj.keys.push(reader.bytes())
              break
            }
            case 8: {
              obj.held = reader.bool()
              break
            }
            case 9: {
              obj.traceparent = reader.string()
              break
            }
            case 10: {
              obj.vectors = VectorEncoding.codec().decode(reader)
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

  export const encode = (obj: Partial<Request>): Uint8Array => {
    return encodeMessage(obj, Request.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Request>): Request => {
    return decodeMessage(buf, Request.codec(), opts)
  }
}

export interface SpanAttribute {
  key: string
  value: string
}

export namespace SpanAttribute {
  let _codec: Codec<SpanAttribute>

  export const codec = (): Codec<SpanAttribute> => {
    if (_codec == null) {
      _codec = message<SpanAttribute>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.key != null && obj.key !== '')) {
          w.uint32(10)
          w.string(obj.key)
        }

        if ((obj.value != null && obj.value !== '')) {
          w.uint32(18)
          w.string(obj.value)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          key: '',
          value: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.key = reader.string()
              break
            }
            case 2: {
              obj.value = reader.string()
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

  export const encode = (obj: Partial<SpanAttribute>): Uint8Array => {
    return encodeMessage(obj, SpanAttribute.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SpanAttribute>): SpanAttribute => {
    return decodeMessage(buf, SpanAttribute.codec(), opts)
  }
}

export interface Span {
  spanId: string
  parentId: string
  peerId: string
  name: string
  startMs: number
  durationMs: number
  error: boolean
  attributes: SpanAttribute[]
}

export namespace Span {
  let _codec: Codec<Span>

  export const codec = (): Codec<Span> => {
    if (_codec == null) {
      _codec = message<Span>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.spanId != null && obj.spanId !== '')) {
          w.uint32(10)
          w.string(obj.spanId)
        }

        if ((obj.parentId != null && obj.parentId !== '')) {
          w.uint32(18)
          w.string(obj.parentId)
        }

        if ((obj.peerId != null && obj.peerId !== '')) {
          w.uint32(26)
          w.string(obj.peerId)
        }

        if ((obj.name != null && obj.name !== '')) {
          w.uint32(34)
          w.string(obj.name)
        }

        if ((obj.startMs != null && obj.startMs !== 0)) {
          w.uint32(41)
          w.double(obj.startMs)
        }

        if ((obj.durationMs != null && obj.durationMs !== 0)) {
          w.uint32(49)
          w.double(obj.durationMs)
        }

        if ((obj.error != null && obj.error !== false)) {
          w.uint32(56)
          w.bool(obj.error)
        }

        if (obj.attributes != null) {
          for (const value of obj.attributes) {
            w.uint32(66)
            SpanAttribute.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          spanId: '',
          parentId: '',
          peerId: '',
          name: '',
          startMs: 0,
          durationMs: 0,
          error: false,
          attributes: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.spanId = reader.string()
              break
            }
            case 2: {
              obj.parentId = reader.string()
              break
            }
            case 3: {
              obj.peerId = reader.string()
              break
            }
            case 4: {
              obj.name = reader.string()
              break
            }
            case 5: {
              obj.startMs = reader.double()
              break
            }
            case 6: {
              obj.durationMs = reader.double()
              break
            }
            case 7: {
              obj.error = reader.bool()
              break
            }
            case 8: {
              if (opts.limits?.attributes != null && obj.attributes.length === opts.limits.attributes) {
                throw new MaxLengthError('Decode error - map field "attributes" had too many elements')
              }

              obj.attributes.push(SpanAttribute.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.attributes$
              }))
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

  export const encode = (obj: Partial<Span>): Uint8Array => {
    return encodeMessage(obj, Span.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Span>): Span => {
    return decodeMessage(buf, Span.codec(), opts)
  }
}

export interface Response {
  id: Uint8Array
  status: Response.Status
  output: Uint8Array
  error: string
  records: Uint8Array[]
  inflight: number
  capacity: number
  spans: Span[]
  tensors: Uint8Array[]
}

export namespace Response {
  export enum Status {
    OK = 'OK',
    ERROR = 'ERROR',
    OVERLOADED = 'OVERLOADED',
    NOT_FOUND = 'NOT_FOUND',
    TIMEOUT = 'TIMEOUT',
    BAD_REQUEST = 'BAD_REQUEST',
    TOO_LARGE = 'TOO_LARGE'
  }

  enum __StatusValues {
    OK = 0,
    ERROR = 1,
    OVERLOADED = 2,
    NOT_FOUND = 3,
    TIMEOUT = 4,
    BAD_REQUEST = 5,
    TOO_LARGE = 6
  }

  export namespace Status {
    export const codec = (): Codec<Status> => {
      return enumeration<Status>(__StatusValues)
    }
  }

  let _codec: Codec<Response>

  export const codec = (): Codec<Response> => {
    if (_codec == null) {
      _codec = message<Response>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.id != null && obj.id.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.id)
        }

        if (obj.status != null && __StatusValues[obj.status] !== 0) {
          w.uint32(16)
          Response.Status.codec().encode(obj.status, w)
        }

        if ((obj.output != null && obj.output.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.output)
        }

        if ((obj.error != null && obj.error !== '')) {
          w.uint32(34)
          w.string(obj.error)
        }

        if (obj.records != null) {
          for (const value of obj.records) {
            w.uint32(42)
            w.bytes(value)
          }
        }

        if ((obj.inflight != null && obj.inflight !== 0)) {
          w.uint32(48)
          w.uint32(obj.inflight)
        }

        if ((obj.capacity != null && obj.capacity !== 0)) {
          w.uint32(56)
          w.uint32(obj.capacity)
        }

        if (obj.spans != null) {
          for (const value of obj.spans) {
            w.uint32(66)
            Span.codec().encode(value, w)
          }
        }

        if (obj.tensors != null) {
          for (const value of obj.tensors) {
            w.uint32(74)
            w.bytes(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          id: uint8ArrayAlloc(0),
          status: Status.OK,
          output: uint8ArrayAlloc(0),
          error: '',
          records: [],
          inflight: 0,
          capacity: 0,
          spans: [],
          tensors: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.id = reader.bytes()
              break
            }
            case 2: {
              obj.status = Response.Status.codec().decode(reader)
              break
            }
            case 3: {
              obj.output = reader.bytes()
              break
            }
            case 4: {
              obj.error = reader.string()
              break
            }
            case 5: {
              if (opts.limits?.records != null && obj.records.length === opts.limits.records) {
                throw new MaxLengthError('Decode error - map field "records" had too many elements')
              }

              obj.records.push(reader.bytes())
              break
            }
            case 6: {
              obj.inflight = reader.uint32()
              break
            }
            case 7: {
              obj.capacity = reader.uint32()
              break
            }
            case 8: {
              if (opts.limits?.spans != null && obj.spans.length === opts.limits.spans) {
                throw new MaxLengthError('Decode error - map field "spans" had too many elements')
              }

              obj.spans.push(Span.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.spans$
              }))
              break
            }
            case 9: {
              if (opts.limits?.tensors != null && obj.tensors.length === opts.limits.tensors) {
                throw new MaxLengthError('Decode error - map field "tensors" had too many elements')
              }

              obj.tensors.push(reader.bytes())
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

  export const encode = (obj: Partial<Response>): Uint8Array => {
    return encodeMessage(obj, Response.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Response>): Response => {
    return decodeMessage(buf, Response.codec(), opts)
  }
}
