/* eslint-disable import/export */
/* eslint-disable complexity */
/* eslint-disable @typescript-eslint/no-namespace */
/* eslint-disable @typescript-eslint/no-unnecessary-boolean-literal-compare */
/* eslint-disable @typescript-eslint/no-empty-interface */
/* eslint-disable import/consistent-type-specifier-style */
/* eslint-disable @typescript-eslint/no-unused-vars */

import { decodeMessage, encodeMessage, enumeration, MaxLengthError, MaxSizeError, message } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface TaskBody {
  id: string
  capability?: string
  query?: string
  requirements: Map<string, string>
  deadline: bigint
  timeoutMs: number
  payload?: Uint8Array
  payloadSize: number
  to?: Uint8Array
  parent?: string
  index: number
  traceparent?: string
}

export namespace TaskBody {
  export interface TaskBody$requirementsEntry {
    key: string
    value: string
  }

  export namespace TaskBody$requirementsEntry {
    let _codec: Codec<TaskBody$requirementsEntry>

    export const codec = (): Codec<TaskBody$requirementsEntry> => {
      if (_codec == null) {
        _codec = message<TaskBody$requirementsEntry>((obj, w, opts = {}) => {
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

    export const encode = (obj: Partial<TaskBody$requirementsEntry>): Uint8Array => {
      return encodeMessage(obj, TaskBody$requirementsEntry.codec())
    }

    export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskBody$requirementsEntry>): TaskBody$requirementsEntry => {
      return decodeMessage(buf, TaskBody$requirementsEntry.codec(), opts)
    }
  }

  let _codec: Codec<TaskBody>

  export const codec = (): Codec<TaskBody> => {
    if (_codec == null) {
      _codec = message<TaskBody>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.id != null && obj.id !== '')) {
          w.uint32(10)
          w.string(obj.id)
        }

        if (obj.capability != null) {
          w.uint32(18)
          w.string(obj.capability)
        }

        if (obj.query != null) {
          w.uint32(26)
          w.string(obj.query)
        }

        if (obj.requirements != null && obj.requirements.size !== 0) {
          for (const [key, value] of obj.requirements.entries()) {
            w.uint32(34)
            TaskBody.TaskBody$requirementsEntry.codec().encode({ key, value }, w)
          }
        }

        if ((obj.deadline != null && obj.deadline !== 0n)) {
          w.uint32(40)
          w.uint64(obj.deadline)
        }

        if ((obj.timeoutMs != null && obj.timeoutMs !== 0)) {
          w.uint32(48)
          w.uint32(obj.timeoutMs)
        }

        if (obj.payload != null) {
          w.uint32(58)
          w.bytes(obj.payload)
        }

        if ((obj.payloadSize != null && obj.payloadSize !== 0)) {
          w.uint32(64)
          w.uint32(obj.payloadSize)
        }

        if (obj.to != null) {
          w.uint32(74)
          w.bytes(obj.to)
        }

        if (obj.parent != null) {
          w.uint32(82)
          w.string(obj.parent)
        }

        if ((obj.index != null && obj.index !== 0)) {
          w.uint32(88)
          w.uint32(obj.index)
        }

        if (obj.traceparent != null) {
          w.uint32(98)
          w.string(obj.traceparent)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          id: '',
          requirements: new Map<string, string>(),
          deadline: 0n,
          timeoutMs: 0,
          payloadSize: 0,
          index: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.id = reader.string()
              break
            }
            case 2: {
              obj.capability = reader.string()
              break
            }
            case 3: {
              obj.query = reader.string()
              break
            }
            case 4: {
              if (opts.limits?.requirements != null && obj.requirements.size === opts.limits.requirements) {
                throw new MaxSizeError('Decode error - map field "requirements" had too many elements')
              }

              const entry = TaskBody.TaskBody$requirementsEntry.codec().decode(reader, reader.uint32())
              obj.requirements.set(entry.key, entry.value)
              break
            }
            case 5: {
              obj.deadline = reader.uint64()
              break
            }
            case 6: {
              obj.timeoutMs = reader.uint32()
              break
            }
            case 7: {
              obj.payload = reader.bytes()
              break
            }
            case 8: {
              obj.payloadSize = reader.uint32()
              break
            }
            case 9: {
              obj.to = reader.bytes()
              break
            }
            case 10: {
              obj.parent = reader.string()
              break
            }
            case 11: {
              obj.index = reader.uint32()
              break
            }
            case 12: {
              obj.traceparent = reader.string()
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

  export const encode = (obj: Partial<TaskBody>): Uint8Array => {
    return encodeMessage(obj, TaskBody.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskBody>): TaskBody => {
    return decodeMessage(buf, TaskBody.codec(), opts)
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

export interface AnnouncedTask {
  task?: TaskBody
  round: number
}

export namespace AnnouncedTask {
  let _codec: Codec<AnnouncedTask>

  export const codec = (): Codec<AnnouncedTask> => {
    if (_codec == null) {
      _codec = message<AnnouncedTask>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.task != null) {
          w.uint32(10)
          TaskBody.codec().encode(obj.task, w)
        }

        if ((obj.round != null && obj.round !== 0)) {
          w.uint32(16)
          w.uint32(obj.round)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          round: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.task = TaskBody.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.task
              })
              break
            }
            case 2: {
              obj.round = reader.uint32()
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

  export const encode = (obj: Partial<AnnouncedTask>): Uint8Array => {
    return encodeMessage(obj, AnnouncedTask.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AnnouncedTask>): AnnouncedTask => {
    return decodeMessage(buf, AnnouncedTask.codec(), opts)
  }
}

export interface Announce {
  tasks: AnnouncedTask[]
  issuedAt: bigint
}

export namespace Announce {
  let _codec: Codec<Announce>

  export const codec = (): Codec<Announce> => {
    if (_codec == null) {
      _codec = message<Announce>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.tasks != null) {
          for (const value of obj.tasks) {
            w.uint32(10)
            AnnouncedTask.codec().encode(value, w)
          }
        }

        if ((obj.issuedAt != null && obj.issuedAt !== 0n)) {
          w.uint32(16)
          w.uint64(obj.issuedAt)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          tasks: [],
          issuedAt: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.tasks != null && obj.tasks.length === opts.limits.tasks) {
                throw new MaxLengthError('Decode error - map field "tasks" had too many elements')
              }

              obj.tasks.push(AnnouncedTask.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.tasks$
              }))
              break
            }
            case 2: {
              obj.issuedAt = reader.uint64()
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

  export const encode = (obj: Partial<Announce>): Uint8Array => {
    return encodeMessage(obj, Announce.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Announce>): Announce => {
    return decodeMessage(buf, Announce.codec(), opts)
  }
}

export interface Result {
  taskId: string
  attempt: number
  submitter: Uint8Array
  ok: boolean
  output?: Uint8Array
  error?: string
  code?: string
  spans: Span[]
}

export namespace Result {
  let _codec: Codec<Result>

  export const codec = (): Codec<Result> => {
    if (_codec == null) {
      _codec = message<Result>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.taskId != null && obj.taskId !== '')) {
          w.uint32(10)
          w.string(obj.taskId)
        }

        if ((obj.attempt != null && obj.attempt !== 0)) {
          w.uint32(16)
          w.uint32(obj.attempt)
        }

        if ((obj.submitter != null && obj.submitter.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.submitter)
        }

        if ((obj.ok != null && obj.ok !== false)) {
          w.uint32(32)
          w.bool(obj.ok)
        }

        if (obj.output != null) {
          w.uint32(42)
          w.bytes(obj.output)
        }

        if (obj.error != null) {
          w.uint32(50)
          w.string(obj.error)
        }

        if (obj.code != null) {
          w.uint32(58)
          w.string(obj.code)
        }

        if (obj.spans != null) {
          for (const value of obj.spans) {
            w.uint32(66)
            Span.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          taskId: '',
          attempt: 0,
          submitter: uint8ArrayAlloc(0),
          ok: false,
          spans: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.taskId = reader.string()
              break
            }
            case 2: {
              obj.attempt = reader.uint32()
              break
            }
            case 3: {
              obj.submitter = reader.bytes()
              break
            }
            case 4: {
              obj.ok = reader.bool()
              break
            }
            case 5: {
              obj.output = reader.bytes()
              break
            }
            case 6: {
              obj.error = reader.string()
              break
            }
            case 7: {
              obj.code = reader.string()
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

  export const encode = (obj: Partial<Result>): Uint8Array => {
    return encodeMessage(obj, Result.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Result>): Result => {
    return decodeMessage(buf, Result.codec(), opts)
  }
}

export interface ResultBatch {
  results: Result[]
}

export namespace ResultBatch {
  let _codec: Codec<ResultBatch>

  export const codec = (): Codec<ResultBatch> => {
    if (_codec == null) {
      _codec = message<ResultBatch>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.results != null) {
          for (const value of obj.results) {
            w.uint32(10)
            Result.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          results: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.results != null && obj.results.length === opts.limits.results) {
                throw new MaxLengthError('Decode error - map field "results" had too many elements')
              }

              obj.results.push(Result.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.results$
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

  export const encode = (obj: Partial<ResultBatch>): Uint8Array => {
    return encodeMessage(obj, ResultBatch.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ResultBatch>): ResultBatch => {
    return decodeMessage(buf, ResultBatch.codec(), opts)
  }
}

export interface EventBatch {
  events: Event[]
}

export namespace EventBatch {
  let _codec: Codec<EventBatch>

  export const codec = (): Codec<EventBatch> => {
    if (_codec == null) {
      _codec = message<EventBatch>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.events != null) {
          for (const value of obj.events) {
            w.uint32(10)
            Event.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          events: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.events != null && obj.events.length === opts.limits.events) {
                throw new MaxLengthError('Decode error - map field "events" had too many elements')
              }

              obj.events.push(Event.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.events$
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

  export const encode = (obj: Partial<EventBatch>): Uint8Array => {
    return encodeMessage(obj, EventBatch.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<EventBatch>): EventBatch => {
    return decodeMessage(buf, EventBatch.codec(), opts)
  }
}

export interface Event {
  type: string
  taskId?: string
  at: bigint
  seq: bigint
  data?: string
}

export namespace Event {
  let _codec: Codec<Event>

  export const codec = (): Codec<Event> => {
    if (_codec == null) {
      _codec = message<Event>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.type != null && obj.type !== '')) {
          w.uint32(10)
          w.string(obj.type)
        }

        if (obj.taskId != null) {
          w.uint32(18)
          w.string(obj.taskId)
        }

        if ((obj.at != null && obj.at !== 0n)) {
          w.uint32(24)
          w.uint64(obj.at)
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(32)
          w.uint64(obj.seq)
        }

        if (obj.data != null) {
          w.uint32(42)
          w.string(obj.data)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          type: '',
          at: 0n,
          seq: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.type = reader.string()
              break
            }
            case 2: {
              obj.taskId = reader.string()
              break
            }
            case 3: {
              obj.at = reader.uint64()
              break
            }
            case 4: {
              obj.seq = reader.uint64()
              break
            }
            case 5: {
              obj.data = reader.string()
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

  export const encode = (obj: Partial<Event>): Uint8Array => {
    return encodeMessage(obj, Event.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Event>): Event => {
    return decodeMessage(buf, Event.codec(), opts)
  }
}

export interface Control {
  type: Control.Type
  taskId: string
  attempt: number
  ref?: string
  task?: TaskBody
  leaseMs: number
  free: number
  progress?: number
  message?: string
  record?: Uint8Array
  payload?: Uint8Array
  reason?: string
}

export namespace Control {
  export enum Type {
    ANNOUNCE = 'ANNOUNCE',
    OFFER = 'OFFER',
    ASSIGN = 'ASSIGN',
    DECLINE = 'DECLINE',
    PROGRESS = 'PROGRESS',
    RESULT = 'RESULT',
    ACK = 'ACK',
    CANCEL = 'CANCEL',
    FETCH = 'FETCH',
    PAYLOAD = 'PAYLOAD'
  }

  enum __TypeValues {
    ANNOUNCE = 0,
    OFFER = 1,
    ASSIGN = 2,
    DECLINE = 3,
    PROGRESS = 4,
    RESULT = 5,
    ACK = 6,
    CANCEL = 7,
    FETCH = 8,
    PAYLOAD = 9
  }

  export namespace Type {
    export const codec = (): Codec<Type> => {
      return enumeration<Type>(__TypeValues)
    }
  }

  let _codec: Codec<Control>

  export const codec = (): Codec<Control> => {
    if (_codec == null) {
      _codec = message<Control>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.type != null && __TypeValues[obj.type] !== 0) {
          w.uint32(8)
          Control.Type.codec().encode(obj.type, w)
        }

        if ((obj.taskId != null && obj.taskId !== '')) {
          w.uint32(18)
          w.string(obj.taskId)
        }

        if ((obj.attempt != null && obj.attempt !== 0)) {
          w.uint32(24)
          w.uint32(obj.attempt)
        }

        if (obj.ref != null) {
          w.uint32(34)
          w.string(obj.ref)
        }

        if (obj.task != null) {
          w.uint32(42)
          TaskBody.codec().encode(obj.task, w)
        }

        if ((obj.leaseMs != null && obj.leaseMs !== 0)) {
          w.uint32(48)
          w.uint32(obj.leaseMs)
        }

        if ((obj.free != null && obj.free !== 0)) {
          w.uint32(56)
          w.uint32(obj.free)
        }

        if (obj.progress != null) {
          w.uint32(65)
          w.double(obj.progress)
        }

        if (obj.message != null) {
          w.uint32(74)
          w.string(obj.message)
        }

        if (obj.record != null) {
          w.uint32(82)
          w.bytes(obj.record)
        }

        if (obj.payload != null) {
          w.uint32(90)
          w.bytes(obj.payload)
        }

        if (obj.reason != null) {
          w.uint32(98)
          w.string(obj.reason)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          type: Type.ANNOUNCE,
          taskId: '',
          attempt: 0,
          leaseMs: 0,
          free: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.type = Control.Type.codec().decode(reader)
              break
            }
            case 2: {
              obj.taskId = reader.string()
              break
            }
            case 3: {
              obj.attempt = reader.uint32()
              break
            }
            case 4: {
              obj.ref = reader.string()
              break
            }
            case 5: {
              obj.task = TaskBody.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.task
              })
              break
            }
            case 6: {
              obj.leaseMs = reader.uint32()
              break
            }
            case 7: {
              obj.free = reader.uint32()
              break
            }
            case 8: {
              obj.progress = reader.double()
              break
            }
            case 9: {
              obj.message = reader.string()
              break
            }
            case 10: {
              obj.record = reader.bytes()
              break
            }
            case 11: {
              obj.payload = reader.bytes()
              break
            }
            case 12: {
              obj.reason = reader.string()
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

  export const encode = (obj: Partial<Control>): Uint8Array => {
    return encodeMessage(obj, Control.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Control>): Control => {
    return decodeMessage(buf, Control.codec(), opts)
  }
}

export interface SignedEnvelope {
  publicKey: Uint8Array
  payloadType: Uint8Array
  payload: Uint8Array
  signature: Uint8Array
}

export namespace SignedEnvelope {
  let _codec: Codec<SignedEnvelope>

  export const codec = (): Codec<SignedEnvelope> => {
    if (_codec == null) {
      _codec = message<SignedEnvelope>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.publicKey != null && obj.publicKey.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.publicKey)
        }

        if ((obj.payloadType != null && obj.payloadType.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.payloadType)
        }

        if ((obj.payload != null && obj.payload.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.payload)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.signature)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          publicKey: uint8ArrayAlloc(0),
          payloadType: uint8ArrayAlloc(0),
          payload: uint8ArrayAlloc(0),
          signature: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.publicKey = reader.bytes()
              break
            }
            case 2: {
              obj.payloadType = reader.bytes()
              break
            }
            case 3: {
              obj.payload = reader.bytes()
              break
            }
            case 5: {
              obj.signature = reader.bytes()
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

  export const encode = (obj: Partial<SignedEnvelope>): Uint8Array => {
    return encodeMessage(obj, SignedEnvelope.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedEnvelope>): SignedEnvelope => {
    return decodeMessage(buf, SignedEnvelope.codec(), opts)
  }
}
