/* eslint-disable import/export */
/* eslint-disable complexity */
/* eslint-disable @typescript-eslint/no-namespace */
/* eslint-disable @typescript-eslint/no-unnecessary-boolean-literal-compare */
/* eslint-disable @typescript-eslint/no-empty-interface */
/* eslint-disable import/consistent-type-specifier-style */
/* eslint-disable @typescript-eslint/no-unused-vars */

import { decodeMessage, encodeMessage, MaxLengthError, message } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface CapabilityStats {
  name: string
  inFlight: number
  capacity: number
  queueDepth: number
  requests: bigint
  errors: bigint
  p50Us: number
  p95Us: number
  p99Us: number
  rateMilliPerMin: number
}

export namespace CapabilityStats {
  let _codec: Codec<CapabilityStats>

  export const codec = (): Codec<CapabilityStats> => {
    if (_codec == null) {
      _codec = message<CapabilityStats>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.name != null && obj.name !== '')) {
          w.uint32(10)
          w.string(obj.name)
        }

        if ((obj.inFlight != null && obj.inFlight !== 0)) {
          w.uint32(16)
          w.uint32(obj.inFlight)
        }

        if ((obj.capacity != null && obj.capacity !== 0)) {
          w.uint32(24)
          w.uint32(obj.capacity)
        }

        if ((obj.queueDepth != null && obj.queueDepth !== 0)) {
          w.uint32(32)
          w.uint32(obj.queueDepth)
        }

        if ((obj.requests != null && obj.requests !== 0n)) {
          w.uint32(40)
          w.uint64(obj.requests)
        }

        if ((obj.errors != null && obj.errors !== 0n)) {
          w.uint32(48)
          w.uint64(obj.errors)
        }

        if ((obj.p50Us != null && obj.p50Us !== 0)) {
          w.uint32(56)
          w.uint32(obj.p50Us)
        }

        if ((obj.p95Us != null && obj.p95Us !== 0)) {
          w.uint32(64)
          w.uint32(obj.p95Us)
        }

        if ((obj.p99Us != null && obj.p99Us !== 0)) {
          w.uint32(72)
          w.uint32(obj.p99Us)
        }

        if ((obj.rateMilliPerMin != null && obj.rateMilliPerMin !== 0)) {
          w.uint32(80)
          w.uint32(obj.rateMilliPerMin)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          name: '',
          inFlight: 0,
          capacity: 0,
          queueDepth: 0,
          requests: 0n,
          errors: 0n,
          p50Us: 0,
          p95Us: 0,
          p99Us: 0,
          rateMilliPerMin: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.name = reader.string()
              break
            }
            case 2: {
              obj.inFlight = reader.uint32()
              break
            }
            case 3: {
              obj.capacity = reader.uint32()
              break
            }
            case 4: {
              obj.queueDepth = reader.uint32()
              break
            }
            case 5: {
              obj.requests = reader.uint64()
              break
            }
            case 6: {
              obj.errors = reader.uint64()
              break
            }
            case 7: {
              obj.p50Us = reader.uint32()
              break
            }
            case 8: {
              obj.p95Us = reader.uint32()
              break
            }
            case 9: {
              obj.p99Us = reader.uint32()
              break
            }
            case 10: {
              obj.rateMilliPerMin = reader.uint32()
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

  export const encode = (obj: Partial<CapabilityStats>): Uint8Array => {
    return encodeMessage(obj, CapabilityStats.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<CapabilityStats>): CapabilityStats => {
    return decodeMessage(buf, CapabilityStats.codec(), opts)
  }
}

export interface GpuStats {
  index: number
  name: string
  utilization: number
  memoryUsedMib: number
  memoryTotalMib: number
}

export namespace GpuStats {
  let _codec: Codec<GpuStats>

  export const codec = (): Codec<GpuStats> => {
    if (_codec == null) {
      _codec = message<GpuStats>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.index != null && obj.index !== 0)) {
          w.uint32(8)
          w.uint32(obj.index)
        }

        if ((obj.name != null && obj.name !== '')) {
          w.uint32(18)
          w.string(obj.name)
        }

        if ((obj.utilization != null && obj.utilization !== 0)) {
          w.uint32(24)
          w.uint32(obj.utilization)
        }

        if ((obj.memoryUsedMib != null && obj.memoryUsedMib !== 0)) {
          w.uint32(32)
          w.uint32(obj.memoryUsedMib)
        }

        if ((obj.memoryTotalMib != null && obj.memoryTotalMib !== 0)) {
          w.uint32(40)
          w.uint32(obj.memoryTotalMib)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          index: 0,
          name: '',
          utilization: 0,
          memoryUsedMib: 0,
          memoryTotalMib: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.index = reader.uint32()
              break
            }
            case 2: {
              obj.name = reader.string()
              break
            }
            case 3: {
              obj.utilization = reader.uint32()
              break
            }
            case 4: {
              obj.memoryUsedMib = reader.uint32()
              break
            }
            case 5: {
              obj.memoryTotalMib = reader.uint32()
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

  export const encode = (obj: Partial<GpuStats>): Uint8Array => {
    return encodeMessage(obj, GpuStats.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<GpuStats>): GpuStats => {
    return decodeMessage(buf, GpuStats.codec(), opts)
  }
}

export interface TelemetryRecord {
  seq: bigint
  baseSeq: bigint
  full: boolean
  timeMs: bigint
  intervalMs: number
  cpuPermille?: number
  rssBytes?: bigint
  heapUsedBytes?: bigint
  memUsedPermille?: number
  eventLoopP99Us?: number
  connections?: number
  bytesInPerSec?: bigint
  bytesOutPerSec?: bigint
  capabilitiesSet: boolean
  capabilities: CapabilityStats[]
  gpusSet: boolean
  gpus: GpuStats[]
  alertsSet: boolean
  alerts: string[]
  version?: string
  heartbeatMs?: number
  format: number
  neighbours: Uint8Array
}

export namespace TelemetryRecord {
  let _codec: Codec<TelemetryRecord>

  export const codec = (): Codec<TelemetryRecord> => {
    if (_codec == null) {
      _codec = message<TelemetryRecord>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(8)
          w.uint64(obj.seq)
        }

        if ((obj.baseSeq != null && obj.baseSeq !== 0n)) {
          w.uint32(16)
          w.uint64(obj.baseSeq)
        }

        if ((obj.full != null && obj.full !== false)) {
          w.uint32(24)
          w.bool(obj.full)
        }

        if ((obj.timeMs != null && obj.timeMs !== 0n)) {
          w.uint32(32)
          w.uint64(obj.timeMs)
        }

        if ((obj.intervalMs != null && obj.intervalMs !== 0)) {
          w.uint32(40)
          w.uint32(obj.intervalMs)
        }

        if (obj.cpuPermille != null) {
          w.uint32(48)
          w.uint32(obj.cpuPermille)
        }

        if (obj.rssBytes != null) {
          w.uint32(56)
          w.uint64(obj.rssBytes)
        }

        if (obj.heapUsedBytes != null) {
          w.uint32(64)
          w.uint64(obj.heapUsedBytes)
        }

        if (obj.memUsedPermille != null) {
          w.uint32(72)
          w.uint32(obj.memUsedPermille)
        }

        if (obj.eventLoopP99Us != null) {
          w.uint32(80)
          w.uint32(obj.eventLoopP99Us)
        }

        if (obj.connections != null) {
          w.uint32(88)
          w.uint32(obj.connections)
        }

        if (obj.bytesInPerSec != null) {
          w.uint32(96)
          w.uint64(obj.bytesInPerSec)
        }

        if (obj.bytesOutPerSec != null) {
          w.uint32(104)
          w.uint64(obj.bytesOutPerSec)
        }

        if ((obj.capabilitiesSet != null && obj.capabilitiesSet !== false)) {
          w.uint32(112)
          w.bool(obj.capabilitiesSet)
        }

        if (obj.capabilities != null) {
          for (const value of obj.capabilities) {
            w.uint32(122)
            CapabilityStats.codec().encode(value, w)
          }
        }

        if ((obj.gpusSet != null && obj.gpusSet !== false)) {
          w.uint32(128)
          w.bool(obj.gpusSet)
        }

        if (obj.gpus != null) {
          for (const value of obj.gpus) {
            w.uint32(138)
            GpuStats.codec().encode(value, w)
          }
        }

        if ((obj.alertsSet != null && obj.alertsSet !== false)) {
          w.uint32(144)
          w.bool(obj.alertsSet)
        }

        if (obj.alerts != null) {
          for (const value of obj.alerts) {
            w.uint32(154)
            w.string(value)
          }
        }

        if (obj.version != null) {
          w.uint32(162)
          w.string(obj.version)
        }

        if (obj.heartbeatMs != null) {
          w.uint32(168)
          w.uint32(obj.heartbeatMs)
        }

        if ((obj.format != null && obj.format !== 0)) {
          w.uint32(176)
          w.uint32(obj.format)
        }

        if ((obj.neighbours != null && obj.neighbours.byteLength > 0)) {
          w.uint32(186)
          w.bytes(obj.neighbours)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          seq: 0n,
          baseSeq: 0n,
          full: false,
          timeMs: 0n,
          intervalMs: 0,
          capabilitiesSet: false,
          capabilities: [],
          gpusSet: false,
          gpus: [],
          alertsSet: false,
          alerts: [],
          format: 0,
          neighbours: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.seq = reader.uint64()
              break
            }
            case 2: {
              obj.baseSeq = reader.uint64()
              break
            }
            case 3: {
              obj.full = reader.bool()
              break
            }
            case 4: {
              obj.timeMs = reader.uint64()
              break
            }
            case 5: {
              obj.intervalMs = reader.uint32()
              break
            }
            case 6: {
              obj.cpuPermille = reader.uint32()
              break
            }
            case 7: {
              obj.rssBytes = reader.uint64()
              break
            }
            case 8: {
              obj.heapUsedBytes = reader.uint64()
              break
            }
            case 9: {
              obj.memUsedPermille = reader.uint32()
              break
            }
            case 10: {
              obj.eventLoopP99Us = reader.uint32()
              break
            }
            case 11: {
              obj.connections = reader.uint32()
              break
            }
            case 12: {
              obj.bytesInPerSec = reader.uint64()
              break
            }
            case 13: {
              obj.bytesOutPerSec = reader.uint64()
              break
            }
            case 14: {
              obj.capabilitiesSet = reader.bool()
              break
            }
            case 15: {
              if (opts.limits?.capabilities != null && obj.capabilities.length === opts.limits.capabilities) {
                throw new MaxLengthError('Decode error - map field "capabilities" had too many elements')
              }

              obj.capabilities.push(CapabilityStats.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.capabilities$
              }))
              break
            }
            case 16: {
              obj.gpusSet = reader.bool()
              break
            }
            case 17: {
              if (opts.limits?.gpus != null && obj.gpus.length === opts.limits.gpus) {
                throw new MaxLengthError('Decode error - map field "gpus" had too many elements')
              }

              obj.gpus.push(GpuStats.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.gpus$
              }))
              break
            }
            case 18: {
              obj.alertsSet = reader.bool()
              break
            }
            case 19: {
              if (opts.limits?.alerts != null && obj.alerts.length === opts.limits.alerts) {
                throw new MaxLengthError('Decode error - map field "alerts" had too many elements')
              }

              obj.alerts.push(reader.string())
              break
            }
            case 20: {
              obj.version = reader.string()
              break
            }
            case 21: {
              obj.heartbeatMs = reader.uint32()
              break
            }
            case 22: {
              obj.format = reader.uint32()
              break
            }
            case 23: {
              obj.neighbours = reader.bytes()
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

  export const encode = (obj: Partial<TelemetryRecord>): Uint8Array => {
    return encodeMessage(obj, TelemetryRecord.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TelemetryRecord>): TelemetryRecord => {
    return decodeMessage(buf, TelemetryRecord.codec(), opts)
  }
}
