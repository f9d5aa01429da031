/**
 * The one place that signs and opens records. Today a libp2p RecordEnvelope
 * (domain-separated Ed25519 signature); it keeps the shape of the planned
 * `sealRecord`/`openRecord` helpers so switching is a change of this file only.
 */
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { RecordEnvelope } from '@libp2p/peer-record'
import { equals } from 'uint8arrays/equals'
import { fromString } from 'uint8arrays/from-string'
import type { PeerId, PrivateKey, PublicKey } from '@libp2p/interface'

export interface OpenedRecord {
  signer: PeerId
  publicKey: PublicKey
  payload: Uint8Array
}

export class InvalidSignatureError extends Error {
  static override name = 'InvalidSignatureError'
  override name = 'InvalidSignatureError'
}

function payloadType (domain: string): Uint8Array {
  return fromString(`/${domain}/1`)
}

/** Sign `payload` for `domain`; returns the serialised envelope */
export async function sealRecord (privateKey: PrivateKey, domain: string, payload: Uint8Array): Promise<Uint8Array> {
  const envelope = await RecordEnvelope.seal({
    domain,
    codec: payloadType(domain),
    marshal: () => payload,
    equals: () => false
  }, privateKey)
  return envelope.marshal()
}

/** Verify an envelope for `domain`; throws InvalidSignatureError when it does not verify */
export async function openRecord (bytes: Uint8Array, domain: string): Promise<OpenedRecord> {
  let envelope: RecordEnvelope
  try {
    envelope = await RecordEnvelope.openAndCertify(bytes, domain)
  } catch (err: any) {
    throw new InvalidSignatureError(`record envelope does not verify: ${err?.message ?? err}`)
  }
  if (!equals(envelope.payloadType, payloadType(domain))) {
    throw new InvalidSignatureError('record envelope has the wrong payload type')
  }
  return { signer: peerIdFromPublicKey(envelope.publicKey), publicKey: envelope.publicKey, payload: envelope.payload }
}
