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

export enum QoS {
  INTERACTIVE = 'INTERACTIVE',
  REALTIME = 'REALTIME',
  BULK = 'BULK'
}

enum __QoSValues {
  INTERACTIVE = 0,
  REALTIME = 1,
  BULK = 2
}

export namespace QoS {
  export const codec = (): Codec<QoS> => {
    return enumeration<QoS>(__QoSValues)
  }
}

export enum Kind {
  REQUEST = 'REQUEST',
  RESPONSE = 'RESPONSE',
  PIECE = 'PIECE',
  END = 'END',
  ERROR = 'ERROR'
}

enum __KindValues {
  REQUEST = 0,
  RESPONSE = 1,
  PIECE = 2,
  END = 3,
  ERROR = 4
}

export namespace Kind {
  export const codec = (): Codec<Kind> => {
    return enumeration<Kind>(__KindValues)
  }
}

export enum Compression {
  NONE = 'NONE',
  ZSTD = 'ZSTD'
}

enum __CompressionValues {
  NONE = 0,
  ZSTD = 1
}

export namespace Compression {
  export const codec = (): Codec<Compression> => {
    return enumeration<Compression>(__CompressionValues)
  }
}

export interface Message {
  id: number
  kind: Kind
  payload: Uint8Array
  error?: string
}

export namespace Message {
  let _codec: Codec<Message>

  export const codec = (): Codec<Message> => {
    if (_codec == null) {
      _codec = message<Message>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.id != null && obj.id !== 0)) {
          w.uint32(8)
          w.uint32(obj.id)
        }

        if (obj.kind != null && __KindValues[obj.kind] !== 0) {
          w.uint32(16)
          Kind.codec().encode(obj.kind, w)
        }

        if ((obj.payload != null && obj.payload.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.payload)
        }

        if (obj.error != null) {
          w.uint32(34)
          w.string(obj.error)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          id: 0,
          kind: Kind.REQUEST,
          payload: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.id = reader.uint32()
              break
            }
            case 2: {
              obj.kind = Kind.codec().decode(reader)
              break
            }
            case 3: {
              obj.payload = reader.bytes()
              break
            }
            case 4: {
              obj.error = reader.string()
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

  export const encode = (obj: Partial<Message>): Uint8Array => {
    return encodeMessage(obj, Message.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Message>): Message => {
    return decodeMessage(buf, Message.codec(), opts)
  }
}

export interface MessageList {
  messages: Message[]
}

export namespace MessageList {
  let _codec: Codec<MessageList>

  export const codec = (): Codec<MessageList> => {
    if (_codec == null) {
      _codec = message<MessageList>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.messages != null) {
          for (const value of obj.messages) {
            w.uint32(10)
            Message.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          messages: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.messages != null && obj.messages.length === opts.limits.messages) {
                throw new MaxLengthError('Decode error - map field "messages" had too many elements')
              }

              obj.messages.push(Message.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.messages$
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

  export const encode = (obj: Partial<MessageList>): Uint8Array => {
    return encodeMessage(obj, MessageList.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<MessageList>): MessageList => {
    return decodeMessage(buf, MessageList.codec(), opts)
  }
}

export interface Batch {
  key: string
  qos: QoS
  messages: Message[]
  compression: Compression
  packed?: Uint8Array
  rawBytes: number
}

export namespace Batch {
  let _codec: Codec<Batch>

  export const codec = (): Codec<Batch> => {
    if (_codec == null) {
      _codec = message<Batch>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.key != null && obj.key !== '')) {
          w.uint32(10)
          w.string(obj.key)
        }

        if (obj.qos != null && __QoSValues[obj.qos] !== 0) {
          w.uint32(16)
          QoS.codec().encode(obj.qos, w)
        }

        if (obj.messages != null) {
          for (const value of obj.messages) {
            w.uint32(26)
            Message.codec().encode(value, w)
          }
        }

        if (obj.compression != null && __CompressionValues[obj.compression] !== 0) {
          w.uint32(32)
          Compression.codec().encode(obj.compression, w)
        }

        if (obj.packed != null) {
          w.uint32(42)
          w.bytes(obj.packed)
        }

        if ((obj.rawBytes != null && obj.rawBytes !== 0)) {
          w.uint32(48)
          w.uint32(obj.rawBytes)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          key: '',
          qos: QoS.INTERACTIVE,
          messages: [],
          compression: Compression.NONE,
          rawBytes: 0
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
              obj.qos = QoS.codec().decode(reader)
              break
            }
            case 3: {
              if (opts.limits?.messages != null && obj.messages.length === opts.limits.messages) {
                throw new MaxLengthError('Decode error - map field "messages" had too many elements')
              }

              obj.messages.push(Message.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.messages$
              }))
              break
            }
            case 4: {
              obj.compression = Compression.codec().decode(reader)
              break
            }
            case 5: {
              obj.packed = reader.bytes()
              break
            }
            case 6: {
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

  export const encode = (obj: Partial<Batch>): Uint8Array => {
    return encodeMessage(obj, Batch.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Batch>): Batch => {
    return decodeMessage(buf, Batch.codec(), opts)
  }
}

export interface Credit {
  grant: number
  queueDepth: number
  serviceRate: number
  grantBytes: number
  lanePort: number
}

export namespace Credit {
  let _codec: Codec<Credit>

  export const codec = (): Codec<Credit> => {
    if (_codec == null) {
      _codec = message<Credit>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.grant != null && obj.grant !== 0)) {
          w.uint32(8)
          w.uint32(obj.grant)
        }

        if ((obj.queueDepth != null && obj.queueDepth !== 0)) {
          w.uint32(16)
          w.uint32(obj.queueDepth)
        }

        if ((obj.serviceRate != null && obj.serviceRate !== 0)) {
          w.uint32(24)
          w.uint32(obj.serviceRate)
        }

        if ((obj.grantBytes != null && obj.grantBytes !== 0)) {
          w.uint32(32)
          w.uint32(obj.grantBytes)
        }

        if ((obj.lanePort != null && obj.lanePort !== 0)) {
          w.uint32(40)
          w.uint32(obj.lanePort)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          grant: 0,
          queueDepth: 0,
          serviceRate: 0,
          grantBytes: 0,
          lanePort: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.grant = reader.uint32()
              break
            }
            case 2: {
              obj.queueDepth = reader.uint32()
              break
            }
            case 3: {
              obj.serviceRate = reader.uint32()
              break
            }
            case 4: {
              obj.grantBytes = reader.uint32()
              break
            }
            case 5: {
              obj.lanePort = reader.uint32()
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

  export const encode = (obj: Partial<Credit>): Uint8Array => {
    return encodeMessage(obj, Credit.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Credit>): Credit => {
    return decodeMessage(buf, Credit.codec(), opts)
  }
}

export interface Frame {
  batches: Batch[]
  credit?: Credit
  received?: number
}

export namespace Frame {
  let _codec: Codec<Frame>

  export const codec = (): Codec<Frame> => {
    if (_codec == null) {
      _codec = message<Frame>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.batches != null) {
          for (const value of obj.batches) {
            w.uint32(10)
            Batch.codec().encode(value, w)
          }
        }

        if (obj.credit != null) {
          w.uint32(18)
          Credit.codec().encode(obj.credit, w)
        }

        if (obj.received != null) {
          w.uint32(24)
          w.uint32(obj.received)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          batches: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.batches != null && obj.batches.length === opts.limits.batches) {
                throw new MaxLengthError('Decode error - map field "batches" had too many elements')
              }

              obj.batches.push(Batch.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.batches$
              }))
              break
            }
            case 2: {
              obj.credit = Credit.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.credit
              })
              break
            }
            case 3: {
              obj.received = reader.uint32()
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

  export const encode = (obj: Partial<Frame>): Uint8Array => {
    return encodeMessage(obj, Frame.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Frame>): Frame => {
    return decodeMessage(buf, Frame.codec(), opts)
  }
}
