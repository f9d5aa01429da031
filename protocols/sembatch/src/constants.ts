/** Default network id; it prefixes the protocol id */
export const DEFAULT_NETWORK = 'aistack'
export const PROTOCOL_NAME = 'sembatch'
export const PROTOCOL_VERSION = '1.0.0'

/** `/<network>/sembatch/1.0.0` */
export function protocolId (network: string): string {
  return `/${network}/${PROTOCOL_NAME}/${PROTOCOL_VERSION}`
}

/** Quality-of-service classes, in the order they are served */
export const QOS_CLASSES = ['realtime', 'interactive', 'bulk'] as const
export type QosClass = typeof QOS_CLASSES[number]

/**
 * Wire limits. A peer that breaks one has its stream reset (the node lives).
 * docs/protocols/sembatch.md lists them with their reasons.
 */
export const LIMITS = {
  /** largest frame on the wire (length prefix excluded) */
  maxFrameBytes: 4 * 1024 * 1024 + 64 * 1024,
  /** batches in one frame */
  maxBatchesPerFrame: 1024,
  /** messages in one batch */
  maxMessagesPerBatch: 4096,
  /** messages in one frame, all batches together */
  maxMessagesPerFrame: 8192,
  /** context key length in UTF-8 bytes */
  maxKeyBytes: 256,
  /** one message's payload (a request, an answer or a piece) */
  maxPayloadBytes: 4 * 1024 * 1024,
  /** error text of an ERROR message */
  maxErrorBytes: 1024,
  /** a compressed batch may not expand past this */
  maxRawBatchBytes: 4 * 1024 * 1024 + 64 * 1024,
  /** credits: messages and bytes the acceptor grants at most in flight */
  maxCreditMessages: 65_536,
  maxCreditBytes: 256 * 1024 * 1024
} as const

/** Credits an opener has before the first Credit frame (both sides know them) */
export const INITIAL_CREDIT_MESSAGES = 1024
export const INITIAL_CREDIT_BYTES = 16 * 1024 * 1024

/**
 * Longest a message of a class waits for its batch to grow (milliseconds). A
 * message waits at all only when the receiver reports a queue (see
 * docs/protocols/sembatch.md, "Batching rules"); realtime never waits.
 */
export const DEFAULT_LINGER_MS: Record<QosClass, number> = {
  realtime: 0,
  interactive: 1,
  bulk: 5
}

/** A write carries at most this many payload bytes (smaller writes keep realtime traffic from queueing behind bulk) */
export const DEFAULT_MAX_WRITE_BYTES = 64 * 1024
/**
 * A frame carries at most this many message bytes of the bulk class (one
 * larger message goes alone): encoding, compressing and encrypting a frame,
 * and decoding it at the peer, are synchronous steps, and a realtime message
 * that arrives meanwhile waits for the step under way
 */
export const DEFAULT_BULK_WRITE_BYTES = 16 * 1024
/**
 * Bytes of frames written and not yet acknowledged by the peer, at most,
 * before interactive and bulk messages wait (realtime ones never do): it
 * bounds what a realtime message queues behind in the pipe
 */
export const DEFAULT_PIPE_BYTES = 64 * 1024
/** A batch is cut at this many messages */
export const DEFAULT_MAX_BATCH_MESSAGES = 512
/** Batches whose messages take more bytes than this are compressed with zstd (when it makes them smaller) */
export const DEFAULT_COMPRESS_THRESHOLD = 1024
/** Messages queued at the sender for one peer, waiting for credits or the pipe */
export const DEFAULT_MAX_QUEUED = 65_536
/** Bytes of streamed pieces buffered for one request that its reader has not taken */
export const DEFAULT_MAX_BUFFERED_PIECE_BYTES = 16 * 1024 * 1024
/** Requests of one key handled at once by a one-at-a-time handler */
export const DEFAULT_HANDLER_CONCURRENCY = 64
/** Batches of one key handled at once by a batch handler */
export const DEFAULT_BATCH_CONCURRENCY = 2
/** Largest batch handed to a batch handler */
export const DEFAULT_HANDLER_MAX_BATCH = 512
/** Default time a request waits for its answer */
export const DEFAULT_TIMEOUT_MS = 30_000
/** Opening a stream gives up after this long */
export const OPEN_TIMEOUT_MS = 10_000
