import crypto from 'node:crypto'
import { HandshakeMessageError } from '../errors.js'

/**
 * Symmetric and X25519 primitives for the handshake, all on node:crypto.
 */

export interface KeyPair {
  publicKey: Uint8Array
  privateKey: Uint8Array
}

// DER wrappers of raw X25519 keys (RFC 8410)
const X25519_PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20])
const X25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00])

export function sha256 (...parts: Uint8Array[]): Uint8Array {
  const h = crypto.createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}

function hmac (key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const m = crypto.createHmac('sha256', key)
  for (const p of parts) m.update(p)
  return m.digest()
}

const ONE = Uint8Array.of(1)
const TWO = Uint8Array.of(2)

/** Noise HKDF with two outputs */
export function hkdf2 (chainingKey: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const temp = hmac(chainingKey, ikm)
  const out1 = hmac(temp, ONE)
  const out2 = hmac(temp, out1, TWO)
  return [out1, out2]
}

function x25519PrivateKeyObject (privateKey: Uint8Array): crypto.KeyObject {
  return crypto.createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, privateKey]), format: 'der', type: 'pkcs8' })
}

export function x25519Generate (): KeyPair {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('x25519', {
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' }
  })
  return {
    publicKey: publicKey.subarray(X25519_SPKI_PREFIX.length),
    privateKey: privateKey.subarray(X25519_PKCS8_PREFIX.length)
  }
}

/** the key pair for a given 32-byte private key (clamping is done by X25519 itself) */
export function x25519FromPrivate (privateKey: Uint8Array): KeyPair {
  const publicKey = crypto.createPublicKey(x25519PrivateKeyObject(privateKey))
    .export({ type: 'spki', format: 'der' })
    .subarray(X25519_SPKI_PREFIX.length)
  return { publicKey, privateKey: Uint8Array.from(privateKey) }
}

/**
 * X25519(privateKey, publicKey). A remote key that yields the all-zero
 * shared secret (a small-order point) is refused.
 */
export function x25519 (privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  if (publicKey.byteLength !== 32) {
    throw new HandshakeMessageError(`X25519 public key must be 32 bytes, got ${publicKey.byteLength}`)
  }
  try {
    return crypto.diffieHellman({
      privateKey: x25519PrivateKeyObject(privateKey),
      publicKey: crypto.createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' })
    })
  } catch (err: any) {
    throw new HandshakeMessageError(`X25519 failed: ${err?.message ?? err}`)
  }
}

/** Noise nonce: 4 zero bytes then the 64-bit counter, little endian */
export function nonceBytes (n: number): Buffer {
  const b = Buffer.alloc(12)
  b.writeUInt32LE(n >>> 0, 4)
  b.writeUInt32LE(Math.floor(n / 0x100000000), 8)
  return b
}

export function aeadEncrypt (key: Uint8Array, n: number, ad: Uint8Array, plaintext: Uint8Array): Buffer {
  const c = crypto.createCipheriv('chacha20-poly1305', key, nonceBytes(n), { authTagLength: 16 })
  c.setAAD(ad, { plaintextLength: plaintext.byteLength })
  const body = c.update(plaintext)
  c.final()
  return Buffer.concat([body, c.getAuthTag()])
}

/** returns undefined when the tag does not verify */
export function aeadDecrypt (key: Uint8Array, n: number, ad: Uint8Array, ciphertext: Uint8Array): Buffer | undefined {
  if (ciphertext.byteLength < 16) return undefined
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
