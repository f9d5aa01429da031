/**
 * Gossipsub message ids of the node: 12 bytes instead of gossipsub's default
 * of 44 (the author's protobuf public key and its 8-byte sequence number).
 * Every IHAVE, IWANT and IDONTWANT names messages by id, so for small
 * messages (telemetry records of ~70 B) the id is a large part of the gossip.
 * Every node of a network must use the same function: a node with another
 * one asks for (IWANT) messages it already holds when it hears of them.
 */
import { createHash } from 'node:crypto'
import type { Message } from '@libp2p/gossipsub'

/** Bytes of a message id */
export const MESSAGE_ID_BYTES = 12

/**
 * The first 12 bytes of SHA-256 over the author's peer id (multihash bytes)
 * and the sequence number (8 bytes, big-endian) of a signed message, the same
 * fields gossipsub's StrictSign default uses; for an unsigned message, over
 * its topic and data. 96 bits: a collision among the messages a node holds
 * is out of reach, and forging one to hide another's message takes ~2^96 hashes.
 */
export function shortMessageId (msg: Message): Uint8Array {
  const h = createHash('sha256')
  if (msg.type === 'signed') {
    const seq = Buffer.alloc(8)
    seq.writeBigUInt64BE(BigInt.asUintN(64, msg.sequenceNumber))
    h.update(msg.from.toMultihash().bytes).update(seq)
  } else {
    h.update(msg.topic).update(msg.data)
  }
  return new Uint8Array(h.digest().subarray(0, MESSAGE_ID_BYTES))
}
