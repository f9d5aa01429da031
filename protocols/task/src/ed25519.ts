/**
 * Ed25519 signatures for the records on the way of every task.
 *
 * libsodium (through `sodium-native`, which ships prebuilt binaries) signs in
 * about half the time of node:crypto's OpenSSL and verifies in about half, and
 * one signature and one check lie on each task's round trip. Where its binary
 * does not load, node:crypto does the same work. Ed25519 signatures are
 * deterministic, so both give the same bytes, and each checks the other's.
 */
import { createRequire } from 'node:module'
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'

export interface Ed25519 {
  readonly name: 'libsodium' | 'node:crypto'
  /** `secretKey`: 64 bytes, the seed then the public key (libp2p's `raw`) */
  sign: (data: Uint8Array, secretKey: Uint8Array) => Uint8Array
  /** false for any signature that does not check, including malformed ones */
  verify: (signature: Uint8Array, data: Uint8Array, publicKey: Uint8Array) => boolean
}

interface Sodium {
  crypto_sign_detached: (signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array) => void
  crypto_sign_verify_detached: (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean
}

const SIGNATURE_BYTES = 64
const PUBLIC_KEY_BYTES = 32
const SECRET_KEY_BYTES = 64
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00])
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20])

/**
 * node:crypto wants key objects, and building one costs as much as a
 * signature: they are kept for as long as the key's bytes are (the callers
 * hold on to the same arrays)
 */
function keyCache (make: (key: Uint8Array) => KeyObject): (key: Uint8Array) => KeyObject {
  const cache = new WeakMap<Uint8Array, KeyObject>()
  return key => {
    let object = cache.get(key)
    if (object == null) {
      object = make(key)
      cache.set(key, object)
    }
    return object
  }
}

export function nodeCryptoEd25519 (): Ed25519 {
  const privateKey = keyCache(key => createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, key.subarray(0, 32)]), format: 'der', type: 'pkcs8' }))
  const publicKey = keyCache(key => createPublicKey({ key: Buffer.concat([SPKI_PREFIX, key]), format: 'der', type: 'spki' }))
  return {
    name: 'node:crypto',
    sign: (data, secretKey) => {
      const signature = nodeSign(null, data, privateKey(secretKey))
      return new Uint8Array(signature.buffer, signature.byteOffset, signature.byteLength)
    },
    verify: (signature, data, key) => {
      if (signature.byteLength !== SIGNATURE_BYTES || key.byteLength !== PUBLIC_KEY_BYTES) {
        return false
      }
      try {
        return nodeVerify(null, data, publicKey(key), signature)
      } catch {
        return false
      }
    }
  }
}

/** libsodium's Ed25519, or undefined where `sodium-native` does not load */
export function sodiumEd25519 (): Ed25519 | undefined {
  let sodium: Sodium
  try {
    sodium = createRequire(import.meta.url)('sodium-native')
  } catch {
    return undefined
  }
  return {
    name: 'libsodium',
    sign: (data, secretKey) => {
      if (secretKey.byteLength !== SECRET_KEY_BYTES) {
        throw new TypeError(`an Ed25519 secret key is ${SECRET_KEY_BYTES} bytes, not ${secretKey.byteLength}`)
      }
      const signature = new Uint8Array(SIGNATURE_BYTES)
      sodium.crypto_sign_detached(signature, data, secretKey)
      return signature
    },
    verify: (signature, data, key) => {
      if (signature.byteLength !== SIGNATURE_BYTES || key.byteLength !== PUBLIC_KEY_BYTES) {
        return false
      }
      try {
        return sodium.crypto_sign_verify_detached(signature, data, key)
      } catch {
        return false
      }
    }
  }
}

/** The implementation records are signed and checked with: libsodium where it loads */
export const ed25519: Ed25519 = sodiumEd25519() ?? nodeCryptoEd25519()
