/**
 * Signed records. Every record that outlives a connection (announcements,
 * results, events) goes through these two functions, so the envelope format
 * can change in one place.
 */
import { RecordEnvelope } from '@libp2p/peer-record'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { InvalidSignatureError } from './errors.js'
import type { PeerId, PrivateKey, PublicKey } from '@libp2p/interface'

export interface OpenedRecord {
  signer: PeerId
  publicKey: PublicKey
  payload: Uint8Array
}

const codecs = new Map<string, Uint8Array>()

function codecFor (domain: string): Uint8Array {
  let codec = codecs.get(domain)
  if (codec == null) {
    codec = uint8ArrayFromString(`/${domain}`)
    codecs.set(domain, codec)
  }
  return codec
}

export async function sealRecord (privateKey: PrivateKey, domain: string, payload: Uint8Array): Promise<Uint8Array> {
  const codec = codecFor(domain)
  const envelope = await RecordEnvelope.seal({
    domain,
    codec,
    marshal: () => payload,
    equals: () => false
  }, privateKey)
  return envelope.marshal()
}

export async function openRecord (bytes: Uint8Array, domain: string): Promise<OpenedRecord> {
  let envelope: RecordEnvelope
  try {
    envelope = await RecordEnvelope.openAndCertify(bytes, domain)
  } catch (err: any) {
    throw new InvalidSignatureError(`invalid signed record: ${err?.message ?? err}`)
  }
  if (!uint8ArrayEquals(envelope.payloadType, codecFor(domain))) {
    throw new InvalidSignatureError('signed record has the wrong payload type')
  }
  return {
    signer: peerIdFromPublicKey(envelope.publicKey),
    publicKey: envelope.publicKey,
    payload: envelope.payload
  }
}
