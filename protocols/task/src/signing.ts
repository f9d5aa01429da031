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
 * aistack node's) take a faster path on node:crypto key objects built once and
 * cached: one record per task is signed and verified, and this path makes that
 * about twice as cheap. Ed25519 signatures are deterministic, so the fast path
 * yields exactly the bytes `@aistack/handshake`'s `sealRecord` yields (a test
 * checks it), and each side opens the other's records.
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto'
import { openRecord as openEnvelope, payloadTypeOf, sealRecord as sealEnvelope } from '@aistack/handshake'
import { RecordEnvelope } from '@libp2p/peer-record'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { InvalidSignatureError } from './errors.js'
import type { KeyObject } from 'node:crypto'
import type { PeerId, PrivateKey, PublicKey } from '@libp2p/interface'

export interface OpenedRecord {
  signer: PeerId
  publicKey: PublicKey
  payload: Uint8Array
}

const payloadTypes = new Map<string, Uint8Array>()
const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00])
const ED25519_PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20])
const privateKeyObjects = new WeakMap<PrivateKey, KeyObject>()
const publicKeyObjects = new Map<string, KeyObject>()
const MAX_CACHED_PUBLIC_KEYS = 4096

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

/** The bytes a RecordEnvelope signature covers */
function signedData (domain: string, payloadType: Uint8Array, payload: Uint8Array): Uint8Array {
  const d = uint8ArrayFromString(domain)
  const parts = [Uint8Array.from(varint(d.byteLength)), d, Uint8Array.from(varint(payloadType.byteLength)), payloadType, Uint8Array.from(varint(payload.byteLength)), payload]
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.byteLength
  }
  return out
}

function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a, 0)
  out.set(b, a.byteLength)
  return out
}

function ed25519PrivateKeyObject (key: PrivateKey): KeyObject {
  let obj = privateKeyObjects.get(key)
  if (obj == null) {
    obj = createPrivateKey({ key: Buffer.from(concat(ED25519_PKCS8_PREFIX, key.raw.subarray(0, 32))), format: 'der', type: 'pkcs8' })
    privateKeyObjects.set(key, obj)
  }
  return obj
}

function ed25519PublicKeyObject (raw: Uint8Array): KeyObject {
  const id = uint8ArrayToString(raw, 'base64')
  let obj = publicKeyObjects.get(id)
  if (obj == null) {
    obj = createPublicKey({ key: Buffer.from(concat(ED25519_SPKI_PREFIX, raw)), format: 'der', type: 'spki' })
    if (publicKeyObjects.size >= MAX_CACHED_PUBLIC_KEYS) {
      publicKeyObjects.delete(publicKeyObjects.keys().next().value as string)
    }
    publicKeyObjects.set(id, obj)
  }
  return obj
}

export async function sealRecord (privateKey: PrivateKey, domain: string, payload: Uint8Array): Promise<Uint8Array> {
  if (privateKey.type !== 'Ed25519') {
    return sealEnvelope(privateKey, domain, payload)
  }
  const payloadType = payloadTypeFor(domain)
  const signature = new Uint8Array(nodeSign(null, signedData(domain, payloadType, payload), ed25519PrivateKeyObject(privateKey)))
  return new RecordEnvelope({ publicKey: privateKey.publicKey, payloadType, payload, signature }).marshal()
}

/** Verifies a record sealed for `domain`; throws `InvalidSignatureError` for anything that is not one */
export async function openRecord (bytes: Uint8Array, domain: string): Promise<OpenedRecord> {
  let envelope: RecordEnvelope
  try {
    envelope = RecordEnvelope.createFromProtobuf(bytes)
  } catch (err: any) {
    throw new InvalidSignatureError(`not a signed record: ${err?.message ?? err}`)
  }
  if (envelope.publicKey.type !== 'Ed25519') {
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
  let valid: boolean
  try {
    valid = envelope.signature.byteLength > 0 && nodeVerify(null, signedData(domain, payloadType, envelope.payload), ed25519PublicKeyObject(envelope.publicKey.raw), envelope.signature)
  } catch {
    valid = false
  }
  if (!valid) {
    throw new InvalidSignatureError('invalid signature on signed record')
  }
  return {
    signer: peerIdFromPublicKey(envelope.publicKey),
    publicKey: envelope.publicKey,
    payload: envelope.payload
  }
}
