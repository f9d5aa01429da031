import crypto from 'node:crypto'
import { ChaCha20Poly1305, newInstance } from '@chainsafe/as-chacha20poly1305'
import { HandshakeMessageError } from '../errors.js'

/**
 * Symmetric and X25519 primitives for the handshake, all on node:crypto.
 */

export interface KeyPair {
  publicKey: Uint8Array
  privateKey: Uint8Array
  /** the private key as a node:crypto KeyObject, made once and reused */
  keyObject?: crypto.KeyObject
}

// DER wrappers of raw X25519 keys (RFC 8410)
const X25519_PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20])
const X25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00])

export function sha256 (...parts: Uint8Array[]): Uint8Array {
  const h = crypto.createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}

/** Noise HKDF with two outputs: RFC 5869 HKDF-SHA-256, salt `ck`, empty info */
export function hkdf2 (chainingKey: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const out = new Uint8Array(crypto.hkdfSync('sha256', ikm, chainingKey, EMPTY, 64))
  return [out.subarray(0, 32), out.subarray(32, 64)]
}

const EMPTY = new Uint8Array(0)

function x25519PrivateKeyObject (privateKey: Uint8Array): crypto.KeyObject {
  return crypto.createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, privateKey]), format: 'der', type: 'pkcs8' })
}

export function x25519Generate (): KeyPair {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('x25519')
  return {
    publicKey: publicKey.export({ type: 'spki', format: 'der' }).subarray(X25519_SPKI_PREFIX.length),
    privateKey: privateKey.export({ type: 'pkcs8', format: 'der' }).subarray(X25519_PKCS8_PREFIX.length),
    keyObject: privateKey
  }
}

/** the key pair for a given 32-byte private key (clamping is done by X25519 itself) */
export function x25519FromPrivate (privateKey: Uint8Array): KeyPair {
  const keyObject = x25519PrivateKeyObject(privateKey)
  const publicKey = crypto.createPublicKey(keyObject)
    .export({ type: 'spki', format: 'der' })
    .subarray(X25519_SPKI_PREFIX.length)
  return { publicKey, privateKey: Uint8Array.from(privateKey), keyObject }
}

/**
 * X25519(local private key, remote public key). A remote key that yields the
 * all-zero shared secret (a small-order point) is refused.
 */
export function x25519 (local: KeyPair, publicKey: Uint8Array): Uint8Array {
  if (publicKey.byteLength !== 32) {
    throw new HandshakeMessageError(`X25519 public key must be 32 bytes, got ${publicKey.byteLength}`)
  }
  try {
    return crypto.diffieHellman({
      privateKey: (local.keyObject ??= x25519PrivateKeyObject(local.privateKey)),
      publicKey: crypto.createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' })
    })
  } catch (err: any) {
    throw new HandshakeMessageError(`X25519 failed: ${err?.message ?? err}`)
  }
}

/** Noise nonce: 4 zero bytes then the 64-bit counter, little endian */
export function nonceBytes (n: number): Buffer {
  return writeNonce(Buffer.alloc(12), n)
}

/** writes the Noise nonce of counter `n` into a 12-byte buffer (its first 4 bytes stay zero) and returns it */
export function writeNonce (nonce: Buffer, n: number): Buffer {
  nonce.writeUInt32LE(n >>> 0, 4)
  nonce.writeUInt32LE(Math.floor(n / 0x100000000), 8)
  return nonce
}

/**
 * A ChaCha20-Poly1305 key imported into node:crypto once. Given raw bytes,
 * `createCipheriv` imports the key again on every call, which costs about as
 * much as encrypting a 16 KiB frame; with a KeyObject a cipher costs ~2 µs.
 */
export function aeadKey (key: Uint8Array): crypto.KeyObject {
  return crypto.createSecretKey(key)
}

/**
 * ChaCha20-Poly1305. node:crypto (OpenSSL) is much faster on large messages
 * but has a fixed cost per call of tens of microseconds, so messages under
 * `SMALL_MESSAGE` bytes (handshake fields, muxer control frames) go to a
 * WebAssembly implementation instead. Both produce identical bytes.
 */
export const SMALL_MESSAGE = 1200

let wasm: ChaCha20Poly1305 | undefined
function small (): ChaCha20Poly1305 {
  wasm ??= new ChaCha20Poly1305(newInstance())
  return wasm
}

/** WebAssembly ChaCha20-Poly1305 with an empty associated data, for messages under `SMALL_MESSAGE` bytes: `ciphertext || tag` */
export function smallSeal (key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Uint8Array {
  return small().seal(key, nonce, plaintext, EMPTY)
}

/** the counterpart of `smallSeal`; undefined when the tag does not verify */
export function smallOpen (key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array): Uint8Array | undefined {
  return small().open(key, nonce, ciphertext, EMPTY) ?? undefined
}

/** encrypts and returns `ciphertext || tag` */
export function aeadEncrypt (key: Uint8Array, n: number, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  if (plaintext.byteLength < SMALL_MESSAGE && ad.byteLength <= 32) {
    return small().seal(key, nonceBytes(n), plaintext, ad)
  }
  const c = crypto.createCipheriv('chacha20-poly1305', key, nonceBytes(n), { authTagLength: 16 })
  c.setAAD(ad, { plaintextLength: plaintext.byteLength })
  const body = c.update(plaintext)
  c.final()
  return Buffer.concat([body, c.getAuthTag()])
}

/** returns undefined when the tag does not verify */
export function aeadDecrypt (key: Uint8Array, n: number, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | undefined {
  if (ciphertext.byteLength < 16) return undefined
  if (ciphertext.byteLength < SMALL_MESSAGE && ad.byteLength <= 32) {
    return small().open(key, nonceBytes(n), ciphertext, ad) ?? undefined
  }
  const d = crypto.createDecipheriv('chacha20-poly1305', key, nonceBytes(n), { authTagLength: 16 })
  const body = ciphertext.subarray(0, ciphertext.byteLength - 16)
  d.setAAD(ad, { plaintextLength: body.byteLength })
  d.setAuthTag(ciphertext.subarray(ciphertext.byteLength - 16))
  const out = d.update(body)
  try {
    d.final()
  } catch {
    return undefined
  }
  return out
}
