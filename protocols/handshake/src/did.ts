import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { ed25519 } from '@noble/curves/ed25519.js'
import { base58btc } from 'multiformats/bases/base58'
import { InvalidDidError, UnsupportedDidError } from './errors.js'
import type { Ed25519PublicKey, PeerId, PublicKey } from '@libp2p/interface'

/** multicodec ed25519-pub (0xed) as an unsigned varint */
const ED25519_PUB = Uint8Array.of(0xed, 0x01)
/** multicodec x25519-pub (0xec) as an unsigned varint */
const X25519_PUB = Uint8Array.of(0xec, 0x01)
const DID_KEY_PREFIX = 'did:key:'
const MAX_DID_LENGTH = 256

function multibaseKey (codec: Uint8Array, key: Uint8Array): string {
  const bytes = new Uint8Array(codec.byteLength + key.byteLength)
  bytes.set(codec)
  bytes.set(key, codec.byteLength)
  return base58btc.encode(bytes)
}

/** `did:key:z6Mk…` of an Ed25519 public key (a libp2p key or its 32 raw bytes) */
export function didFromPublicKey (publicKey: PublicKey | Uint8Array): string {
  let raw: Uint8Array
  if (publicKey instanceof Uint8Array) {
    raw = publicKey
  } else {
    if (publicKey.type !== 'Ed25519') throw new UnsupportedDidError(`did:key here is Ed25519 only, got a ${publicKey.type} key`)
    raw = publicKey.raw
  }
  if (raw.byteLength !== 32) throw new UnsupportedDidError(`An Ed25519 public key is 32 bytes, got ${raw.byteLength}`)
  return DID_KEY_PREFIX + multibaseKey(ED25519_PUB, raw)
}

/** the did:key of an Ed25519 peer ID (its public key is inlined in the ID) */
export function didFromPeerId (peerId: PeerId): string {
  if (peerId.type !== 'Ed25519' || peerId.publicKey == null) {
    throw new UnsupportedDidError(`did:key here needs an Ed25519 peer ID, got ${peerId.type}`)
  }
  return didFromPublicKey(peerId.publicKey)
}

/** splits a did:key into its multibase value and decoded bytes */
function parseDidKey (did: string): { value: string, bytes: Uint8Array } {
  if (typeof did !== 'string' || did.length > MAX_DID_LENGTH) throw new InvalidDidError('A DID is a string of at most 256 characters')
  if (!did.startsWith('did:')) throw new InvalidDidError(`Not a DID: "${did.slice(0, 40)}"`)
  const fragment = did.indexOf('#')
  const bare = fragment >= 0 ? did.slice(0, fragment) : did
  if (!bare.startsWith(DID_KEY_PREFIX)) {
    const method = bare.split(':')[1] ?? ''
    if (!/^[a-z0-9]+$/.test(method)) throw new InvalidDidError(`Malformed DID method in "${did.slice(0, 40)}"`)
    throw new UnsupportedDidError(`Unsupported DID method "${method}"; only did:key`)
  }
  const value = bare.slice(DID_KEY_PREFIX.length)
  if (!value.startsWith('z')) throw new InvalidDidError('did:key value must be base58btc multibase (prefix "z")')
  let bytes: Uint8Array
  try {
    bytes = base58btc.decode(value)
  } catch {
    throw new InvalidDidError('did:key value is not valid base58btc')
  }
  return { value, bytes }
}

/** the Ed25519 public key of a did:key */
export function publicKeyFromDid (did: string): Ed25519PublicKey {
  const { bytes } = parseDidKey(did)
  if (bytes.byteLength < 2) throw new InvalidDidError('did:key value too short')
  if (bytes[0] !== ED25519_PUB[0] || bytes[1] !== ED25519_PUB[1]) {
    throw new UnsupportedDidError(`Unsupported did:key multicodec 0x${bytes[0].toString(16)}${bytes[1].toString(16).padStart(2, '0')}; only ed25519-pub`)
  }
  const raw = bytes.subarray(2)
  if (raw.byteLength !== 32) throw new InvalidDidError(`An ed25519-pub did:key carries 32 bytes, got ${raw.byteLength}`)
  if (!ed25519.utils.isValidPublicKey(raw)) throw new InvalidDidError('did:key is not a valid Ed25519 point')
  const key = publicKeyFromRaw(raw)
  if (key.type !== 'Ed25519') throw new InvalidDidError('did:key is not an Ed25519 key')
  return key
}

/** the libp2p peer ID of a did:key */
export function peerIdFromDid (did: string): PeerId {
  return peerIdFromPublicKey(publicKeyFromDid(did))
}

/** true when the string is a did:key this package can use */
export function isDid (did: string): boolean {
  try {
    publicKeyFromDid(did)
    return true
  } catch {
    return false
  }
}

export interface VerificationMethod {
  id: string
  type: string
  controller: string
  publicKeyMultibase: string
}

export interface DidDocument {
  '@context': string[]
  id: string
  verificationMethod: VerificationMethod[]
  authentication: string[]
  assertionMethod: string[]
  capabilityDelegation: string[]
  capabilityInvocation: string[]
  keyAgreement: string[]
}

/**
 * The DID document of a did:key (Ed25519), as the did:key method derives
 * it: one Ed25519VerificationKey2020 for authentication, assertion and
 * capabilities, and the X25519 key derived from it for key agreement.
 */
export function didDocument (did: string): DidDocument {
  const publicKey = publicKeyFromDid(did)
  const { value } = parseDidKey(did)
  const id = DID_KEY_PREFIX + value
  const vm = `${id}#${value}`
  const x25519 = multibaseKey(X25519_PUB, ed25519.utils.toMontgomery(publicKey.raw))
  const ka = `${id}#${x25519}`
  return {
    '@context': [
      'https://www.w3.org/ns/did/v1',
      'https://w3id.org/security/suites/ed25519-2020/v1',
      'https://w3id.org/security/suites/x25519-2020/v1'
    ],
    id,
    verificationMethod: [
      { id: vm, type: 'Ed25519VerificationKey2020', controller: id, publicKeyMultibase: value },
      { id: ka, type: 'X25519KeyAgreementKey2020', controller: id, publicKeyMultibase: x25519 }
    ],
    authentication: [vm],
    assertionMethod: [vm],
    capabilityDelegation: [vm],
    capabilityInvocation: [vm],
    keyAgreement: [ka]
  }
}
