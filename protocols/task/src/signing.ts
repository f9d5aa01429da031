/**
 * Signed records. Every record that outlives a connection (announcements,
 * results, events) goes through these two functions.
 *
 * The envelopes are those of `@aistack/handshake` (`sealRecord`/`openRecord`):
 * a libp2p RecordEnvelope whose payload type is the domain string and whose
 * signature covers domain, payload type and payload, with the per-network
 * domains of `domainsFor(network)` (`<network>/1/task-record`,
 * `<network>/1/result-record`, `<network>/1/event-record`). Records are
 * handed to the handshake's functions, except that Ed25519 keys (every
 * aistack node's) take a faster path: `./ed25519.js` (libsodium where it
 * loads) on the raw keys, reading and writing the envelope protobuf directly,
 * with signers cached with their peer id. Results are signed and verified on
 * the way of every task. Ed25519 signatures are deterministic, so the fast
 * path yields exactly the bytes `@aistack/handshake`'s `sealRecord` yields (a
 * test checks it), and each side opens the other's records.
 */
import { openRecord as openEnvelope, payloadTypeOf, sealRecord as sealEnvelope } from '@aistack/handshake'
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { ed25519 } from './ed25519.js'
import { InvalidSignatureError } from './errors.js'
import { SignedEnvelope } from './pb/task.js'
import type { PeerId, PrivateKey, PublicKey } from '@libp2p/interface'

export interface OpenedRecord {
  signer: PeerId
  publicKey: PublicKey
  payload: Uint8Array
}

const payloadTypes = new Map<string, Uint8Array>()
/** per domain: the bytes a signature covers before the payload's length and the payload */
const signedPrefixes = new Map<string, Uint8Array>()
/** our own keys' public key protobufs, which every envelope we seal carries */
const ownPublicKeys = new WeakMap<PrivateKey, Uint8Array>()
/** Ed25519 signers seen, by their public key protobuf: their key and who they are */
const signers = new Map<string, Signer>()
const MAX_CACHED_SIGNERS = 4096

/** The envelope payload type of a domain (the handshake's: the domain in UTF-8), cached */
function payloadTypeFor (domain: string): Uint8Array {
  let type = payloadTypes.get(domain)
  if (type == null) {
    type = payloadTypeOf(domain)
    payloadTypes.set(domain, type)
  }
  return type
}

function varint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return out
}

/** The bytes a RecordEnvelope signature covers: varint-prefixed domain, payload type and payload */
function signedData (domain: string, payloadType: Uint8Array, payload: Uint8Array): Uint8Array {
  let prefix = signedPrefixes.get(domain)
  if (prefix == null) {
    const d = uint8ArrayFromString(domain)
    prefix = Uint8Array.from([...varint(d.byteLength), ...d, ...varint(payloadType.byteLength), ...payloadType])
    signedPrefixes.set(domain, prefix)
  }
  const length = varint(payload.byteLength)
  const out = new Uint8Array(prefix.byteLength + length.length + payload.byteLength)
  out.set(prefix, 0)
  out.set(length, prefix.byteLength)
  out.set(payload, prefix.byteLength + length.length)
  return out
}

function ownPublicKey (key: PrivateKey): Uint8Array {
  let publicKey = ownPublicKeys.get(key)
  if (publicKey == null) {
    publicKey = publicKeyToProtobuf(key.publicKey)
    ownPublicKeys.set(key, publicKey)
  }
  return publicKey
}

interface Signer {
  publicKey: PublicKey
  peerId: PeerId
}

/** The signer of an Ed25519 record, from its public key protobuf; undefined for other key types */
function ed25519Signer (publicKeyProtobuf: Uint8Array): Signer | undefined {
  const id = Buffer.from(publicKeyProtobuf.buffer, publicKeyProtobuf.byteOffset, publicKeyProtobuf.byteLength).toString('hex')
  let signer = signers.get(id)
  if (signer == null) {
    const publicKey = publicKeyFromProtobuf(publicKeyProtobuf)
    if (publicKey.type !== 'Ed25519') {
      return undefined
    }
    signer = { publicKey, peerId: peerIdFromPublicKey(publicKey) }
    if (signers.size >= MAX_CACHED_SIGNERS) {
      signers.delete(signers.keys().next().value as string)
    }
    signers.set(id, signer)
  }
  return signer
}

export async function sealRecord (privateKey: PrivateKey, domain: string, payload: Uint8Array): Promise<Uint8Array> {
  if (privateKey.type !== 'Ed25519') {
    return sealEnvelope(privateKey, domain, payload)
  }
  const payloadType = payloadTypeFor(domain)
  const signature = ed25519.sign(signedData(domain, payloadType, payload), privateKey.raw)
  return SignedEnvelope.encode({ publicKey: ownPublicKey(privateKey), payloadType, payload, signature })
}

/** A record's parts and its Ed25519 signer (undefined for other key types), not verified yet */
export interface ReadRecord {
  bytes: Uint8Array
  envelope: SignedEnvelope
  signer?: Signer
}

/**
 * Verifies a record sealed for `domain`, given as bytes or as `readRecord`
 * read it; throws `InvalidSignatureError` for anything that is not one
 */
export async function openRecord (record: Uint8Array | ReadRecord, domain: string): Promise<OpenedRecord> {
  const { bytes, envelope, signer } = record instanceof Uint8Array ? readRecord(record) : record
  if (signer == null) {
    try {
      return await openEnvelope(bytes, domain, { maxSize: Infinity })
    } catch (err: any) {
      throw new InvalidSignatureError(String(err?.message ?? err))
    }
  }
  const payloadType = payloadTypeFor(domain)
  if (!uint8ArrayEquals(envelope.payloadType, payloadType)) {
    throw new InvalidSignatureError('signed record has the wrong payload type')
  }
  if (!ed25519.verify(envelope.signature, signedData(domain, payloadType, envelope.payload), signer.publicKey.raw)) {
    throw new InvalidSignatureError('invalid signature on signed record')
  }
  return {
    signer: signer.peerId,
    publicKey: signer.publicKey,
    payload: envelope.payload
  }
}

/**
 * A record's parts and its Ed25519 signer, NOT verified: for a look at what a
 * record holds before its signature is checked (`openRecord` takes what this
 * returns, and checks it)
 */
export function readRecord (bytes: Uint8Array): ReadRecord {
  try {
    const envelope = SignedEnvelope.decode(bytes)
    return { bytes, envelope, signer: ed25519Signer(envelope.publicKey) }
  } catch (err: any) {
    throw new InvalidSignatureError(`not a signed record: ${err?.message ?? err}`)
  }
}
