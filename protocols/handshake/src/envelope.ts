import { RecordEnvelope } from '@libp2p/peer-record'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { EnvelopeDomainError, EnvelopeSignatureError, InvalidEnvelopeError } from './errors.js'
import type { PeerId, PrivateKey, PublicKey, Record as Libp2pRecord } from '@libp2p/interface'

export type RecordType = 'capability' | 'task' | 'result' | 'event'

/** the signature domains of one network, one per record type */
export function domainsFor (network = 'aistack'): Readonly<Record<RecordType, string>> {
  if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(network)) throw new RangeError(`Invalid network id "${network}"`)
  return Object.freeze({
    capability: `${network}/1/capability-record`,
    task: `${network}/1/task-record`,
    result: `${network}/1/result-record`,
    event: `${network}/1/event-record`
  })
}

/** the signature domains of the `aistack` network */
export const DOMAINS = domainsFor('aistack')

/** largest envelope `openRecord` accepts unless told otherwise */
export const MAX_ENVELOPE_SIZE = 1024 * 1024

const encoder = new TextEncoder()

/** the envelope payload type of a domain: the domain string in UTF-8 */
export function payloadTypeOf (domain: string): Uint8Array {
  return encoder.encode(domain)
}

class OpaqueRecord implements Libp2pRecord {
  readonly domain: string
  readonly codec: Uint8Array
  private readonly bytes: Uint8Array

  constructor (domain: string, bytes: Uint8Array) {
    this.domain = domain
    this.codec = payloadTypeOf(domain)
    this.bytes = bytes
  }

  marshal (): Uint8Array {
    return this.bytes
  }

  equals (other: Libp2pRecord): boolean {
    return other instanceof OpaqueRecord && other.domain === this.domain && Buffer.from(other.bytes).equals(this.bytes)
  }
}

function checkDomain (domain: string): void {
  if (typeof domain !== 'string' || domain.length === 0 || domain.length > 128) {
    throw new RangeError('A signature domain is a non-empty string of at most 128 characters')
  }
}

/**
 * Signs `payload` in a libp2p signed envelope for `domain` (one of
 * `DOMAINS`) and returns the envelope bytes.
 */
export async function sealRecord (privateKey: PrivateKey, domain: string, payload: Uint8Array): Promise<Uint8Array> {
  checkDomain(domain)
  const envelope = await RecordEnvelope.seal(new OpaqueRecord(domain, payload), privateKey)
  return envelope.marshal()
}

export interface OpenedRecord {
  signer: PeerId
  publicKey: PublicKey
  payload: Uint8Array
}

export interface OpenRecordOptions {
  /** largest envelope accepted, in bytes (default 1 MiB) */
  maxSize?: number
}

/**
 * Verifies an envelope made by `sealRecord` for `domain` and returns its
 * signer and payload. Throws `InvalidEnvelopeError` (not an envelope, too
 * large), `EnvelopeDomainError` (sealed for another record type) or
 * `EnvelopeSignatureError`.
 */
export async function openRecord (bytes: Uint8Array, domain: string, options: OpenRecordOptions = {}): Promise<OpenedRecord> {
  checkDomain(domain)
  const max = options.maxSize ?? MAX_ENVELOPE_SIZE
  if (!(bytes instanceof Uint8Array)) throw new InvalidEnvelopeError('Envelope must be bytes')
  if (bytes.byteLength > max) throw new InvalidEnvelopeError(`Envelope of ${bytes.byteLength} bytes exceeds ${max}`)
  let envelope: RecordEnvelope
  try {
    envelope = RecordEnvelope.createFromProtobuf(bytes)
  } catch (err: any) {
    throw new InvalidEnvelopeError(`Not a signed envelope: ${err?.message ?? err}`)
  }
  if (envelope.signature == null || envelope.signature.byteLength === 0) {
    throw new EnvelopeSignatureError('Envelope has no signature')
  }
  if (!Buffer.from(envelope.payloadType ?? []).equals(payloadTypeOf(domain))) {
    throw new EnvelopeDomainError(`Envelope is a "${Buffer.from(envelope.payloadType ?? []).toString('utf8').slice(0, 64)}", expected "${domain}"`)
  }
  let valid = false
  try {
    valid = await envelope.validate(domain)
  } catch {
    valid = false
  }
  if (!valid) throw new EnvelopeSignatureError(`Envelope signature does not verify for "${domain}"`)
  return {
    signer: peerIdFromPublicKey(envelope.publicKey),
    publicKey: envelope.publicKey,
    payload: envelope.payload
  }
}
