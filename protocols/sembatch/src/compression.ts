import * as zlib from 'node:zlib'
import { OversizeError, MalformedFrameError } from './errors.js'

/**
 * zstd (RFC 8878) from node:zlib (Node 22.15 / 23.8 and later). Where the
 * running Node has none, `zstdAvailable` is false: the sender then never
 * compresses and a compressed batch from a peer is refused as malformed.
 */
const z = zlib as unknown as {
  zstdCompressSync?: (buf: Uint8Array, options?: Record<string, unknown>) => Buffer
  zstdDecompressSync?: (buf: Uint8Array, options?: Record<string, unknown>) => Buffer
  constants: Record<string, number>
}

export const zstdAvailable = typeof z.zstdCompressSync === 'function' && typeof z.zstdDecompressSync === 'function'

/** Compression level used for batches: fast, as a message channel needs */
export const DEFAULT_ZSTD_LEVEL = 3

/**
 * Compresses `data` into one zstd frame.
 *
 * @throws Error when the running Node has no zstd
 */
export function zstdCompress (data: Uint8Array, level = DEFAULT_ZSTD_LEVEL): Uint8Array {
  if (z.zstdCompressSync == null) throw new Error('this Node has no zstd in node:zlib (Node 22.15 or later has)')
  const params: Record<number, number> = {}
  const levelParam = z.constants.ZSTD_c_compressionLevel
  if (levelParam != null) params[levelParam] = level
  return z.zstdCompressSync(data, { params })
}

/**
 * Decompresses one zstd frame, refusing output past `maxBytes` (a
 * decompression bomb stops there, it is never fully inflated).
 *
 * @throws OversizeError past `maxBytes`; MalformedFrameError for bad input or no zstd
 */
export function zstdDecompress (data: Uint8Array, maxBytes: number): Uint8Array {
  if (z.zstdDecompressSync == null) throw new MalformedFrameError('compressed batch, but this node has no zstd')
  try {
    return z.zstdDecompressSync(data, { maxOutputLength: maxBytes })
  } catch (err: any) {
    if (err?.code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw new OversizeError(`compressed batch expands past ${maxBytes} bytes`)
    }
    throw new MalformedFrameError(`bad zstd data: ${String(err?.message ?? err)}`)
  }
}
