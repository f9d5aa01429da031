/**
 * @packageDocumentation
 *
 * Sembatch: one long-lived `/<network>/sembatch/1.0.0` stream per peer that
 * carries request messages batched by context key (e.g. a capability and its
 * model), in three classes (realtime, interactive, bulk), under credits the
 * receiver grants, with whole or streamed answers; plus a compact `Tensor`
 * encoding (f16, bf16, int8, deltas, zstd).
 *
 * @example
 * ```ts
 * const node = await createLibp2p({ services: { sembatch: sembatch() } })
 * node.services.sembatch.handle('echo', payload => payload)
 * const answer = await other.services.sembatch.send(node.peerId, 'echo', bytes, { qos: 'realtime' })
 * ```
 */
import { SembatchService } from './service.js'
import type { SembatchComponents, SembatchInit } from './service.js'

export function sembatch (init: SembatchInit = {}): (components: SembatchComponents) => SembatchService {
  return (components) => new SembatchService(components, init)
}

export { SembatchService }
export type { SembatchComponents, SembatchInit, SendOptions, SembatchStats } from './service.js'
export type { BulkLaneInit, LaneEvent } from './lane/lane.js'
export type { Answer, BatchHandler, HandlerContext, HandlerEntry, HandlerOptions, MessageHandler } from './responder.js'
export * from './constants.js'
export * from './errors.js'
export { decodeFrame, encodeFrame, FrameSplitter, lengthPrefix, withPrefix, Frame, Kind, QoS, Compression, MessageList } from './frame.js'
export type { FrameLimits, FrameSender, Batch, Credit, Message } from './frame.js'
export { zstdAvailable, zstdCompress, zstdDecompress } from './compression.js'
export { TensorEncoder, TensorDecoder, TENSOR_LIMITS, cosine, toF16, fromF16, toBf16, fromBf16, Tensor, DType, TensorCompression } from './tensor.js'
export type { DTypeName, DecodedTensor, TensorEncoderOptions } from './tensor.js'
export { PayloadCompressor, PayloadDecompressor, DICTIONARY_LIMITS } from './dictionary.js'
export type { PayloadCompressorOptions } from './dictionary.js'
