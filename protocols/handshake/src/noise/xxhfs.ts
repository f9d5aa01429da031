import { MLKEM768_CIPHERTEXT_LENGTH, MLKEM768_PUBLIC_KEY_LENGTH, PQ_NOISE_SUITE, TAG_LENGTH, X25519_KEY_LENGTH } from '../constants.js'
import { HandshakeDecryptError, HandshakeMessageError } from '../errors.js'
import { aeadDecrypt, aeadEncrypt, hkdf2, sha256, x25519, x25519Generate } from './crypto.js'
import type { KeyPair } from './crypto.js'
import type { Kem, KemKeyPair } from '../kem.js'

const EMPTY = new Uint8Array(0)
const MAX_NONCE = Number.MAX_SAFE_INTEGER

/** Noise CipherState with ChaChaPoly */
export class CipherState {
  private k?: Uint8Array
  private n = 0

  constructor (k?: Uint8Array) {
    this.k = k
  }

  hasKey (): boolean {
    return this.k != null
  }

  /** the key, for known-answer tests */
  get key (): Uint8Array | undefined {
    return this.k
  }

  encryptWithAd (ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.k == null) return plaintext
    if (this.n >= MAX_NONCE) throw new Error('Nonce exhausted; a new handshake is needed')
    return aeadEncrypt(this.k, this.n++, ad, plaintext)
  }

  decryptWithAd (ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (this.k == null) return ciphertext
    if (this.n >= MAX_NONCE) throw new Error('Nonce exhausted; a new handshake is needed')
    const plaintext = aeadDecrypt(this.k, this.n, ad, ciphertext)
    if (plaintext == null) throw new HandshakeDecryptError('ChaChaPoly authentication failed')
    this.n++
    return plaintext
  }
}

/** Noise SymmetricState with SHA-256 */
export class SymmetricState {
  ck: Uint8Array
  h: Uint8Array
  cs = new CipherState()

  constructor (protocolName: string) {
    const name = new TextEncoder().encode(protocolName)
    if (name.byteLength <= 32) {
      this.h = new Uint8Array(32)
      this.h.set(name)
    } else {
      this.h = sha256(name)
    }
    this.ck = this.h
  }

  mixKey (ikm: Uint8Array): void {
    const [ck, k] = hkdf2(this.ck, ikm)
    this.ck = ck
    this.cs = new CipherState(k)
  }

  mixHash (data: Uint8Array): void {
    this.h = sha256(this.h, data)
  }

  encryptAndHash (plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.cs.encryptWithAd(this.h, plaintext)
    this.mixHash(ciphertext)
    return ciphertext
  }

  decryptAndHash (ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.cs.decryptWithAd(this.h, ciphertext)
    this.mixHash(ciphertext)
    return plaintext
  }

  split (): [CipherState, CipherState] {
    const [k1, k2] = hkdf2(this.ck, EMPTY)
    return [new CipherState(k1), new CipherState(k2)]
  }
}

export interface XXhfsInit {
  initiator: boolean
  /** local static X25519 key pair */
  s: KeyPair
  kem: Kem
  prologue?: Uint8Array
  /** fixed ephemeral X25519 key pair, for known-answer tests only */
  e?: KeyPair
}

function concat (parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts)
}

/**
 * The handshake state of `Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256`:
 *
 * ```
 * -> e, e1
 * <- e, ee, ekem1, s, es
 * -> s, se
 * ```
 *
 * Each instance runs exactly one handshake: a fresh X25519 ephemeral and a
 * fresh ML-KEM-768 key pair are made for it and dropped afterwards.
 */
export class XXhfsHandshake {
  readonly initiator: boolean
  readonly ss: SymmetricState
  private readonly s: KeyPair
  private readonly kem: Kem
  private e?: KeyPair
  private e1?: KemKeyPair
  private re?: Uint8Array
  /** remote static X25519 key, known after message B (initiator) or C (responder) */
  rs?: Uint8Array
  private stage = 0

  constructor (init: XXhfsInit) {
    this.initiator = init.initiator
    this.s = init.s
    this.kem = init.kem
    this.e = init.e
    this.ss = new SymmetricState(PQ_NOISE_SUITE)
    this.ss.mixHash(init.prologue ?? EMPTY)
  }

  /** the handshake hash `h` (channel binding value once the handshake is done) */
  get handshakeHash (): Uint8Array {
    return this.ss.h
  }

  private expect (stage: number, initiator: boolean): void {
    if (this.stage !== stage || this.initiator !== initiator) {
      throw new Error('Handshake message out of order')
    }
    this.stage++
  }

  /** -> e, e1 */
  writeMessageA (payload: Uint8Array = EMPTY): Uint8Array {
    this.expect(0, true)
    this.e ??= x25519Generate()
    this.ss.mixHash(this.e.publicKey)
    this.e1 = this.kem.generateKeyPair()
    const e1 = this.ss.encryptAndHash(this.e1.publicKey)
    return concat([this.e.publicKey, e1, this.ss.encryptAndHash(payload)])
  }

  readMessageA (message: Uint8Array): Uint8Array {
    this.expect(0, false)
    if (message.byteLength < X25519_KEY_LENGTH + MLKEM768_PUBLIC_KEY_LENGTH) {
      throw new HandshakeMessageError(`Message A too short: ${message.byteLength} bytes`)
    }
    this.re = message.slice(0, X25519_KEY_LENGTH)
    this.ss.mixHash(this.re)
    let offset = X25519_KEY_LENGTH
    // no key yet: e1 travels in clear
    this.rkem = this.ss.decryptAndHash(message.subarray(offset, offset + MLKEM768_PUBLIC_KEY_LENGTH))
    offset += MLKEM768_PUBLIC_KEY_LENGTH
    return this.ss.decryptAndHash(message.subarray(offset))
  }

  private rkem?: Uint8Array

  /** <- e, ee, ekem1, s, es */
  writeMessageB (payload: Uint8Array = EMPTY): Uint8Array {
    this.expect(1, false)
    if (this.re == null || this.rkem == null) throw new Error('Message A was not read')
    this.e ??= x25519Generate()
    this.ss.mixHash(this.e.publicKey)
    this.ss.mixKey(x25519(this.e, this.re))
    const { ciphertext, sharedSecret } = this.kem.encapsulate(this.rkem)
    this.rkem = undefined
    const ekem1 = this.ss.encryptAndHash(ciphertext)
    this.ss.mixKey(sharedSecret)
    const s = this.ss.encryptAndHash(this.s.publicKey)
    this.ss.mixKey(x25519(this.s, this.re))
    return concat([this.e.publicKey, ekem1, s, this.ss.encryptAndHash(payload)])
  }

  readMessageB (message: Uint8Array): Uint8Array {
    this.expect(1, true)
    if (this.e == null || this.e1 == null) throw new Error('Message A was not written')
    const kemLength = MLKEM768_CIPHERTEXT_LENGTH + TAG_LENGTH
    const sLength = X25519_KEY_LENGTH + TAG_LENGTH
    if (message.byteLength < X25519_KEY_LENGTH + kemLength + sLength + TAG_LENGTH) {
      throw new HandshakeMessageError(`Message B too short: ${message.byteLength} bytes`)
    }
    this.re = message.slice(0, X25519_KEY_LENGTH)
    this.ss.mixHash(this.re)
    this.ss.mixKey(x25519(this.e, this.re))
    let offset = X25519_KEY_LENGTH
    const ciphertext = this.ss.decryptAndHash(message.subarray(offset, offset + kemLength))
    offset += kemLength
    const sharedSecret = this.e1.decapsulate(ciphertext)
    this.e1 = undefined
    this.ss.mixKey(sharedSecret)
    this.rs = this.ss.decryptAndHash(message.subarray(offset, offset + sLength))
    offset += sLength
    this.ss.mixKey(x25519(this.e, this.rs))
    return this.ss.decryptAndHash(message.subarray(offset))
  }

  /** -> s, se */
  writeMessageC (payload: Uint8Array = EMPTY): Uint8Array {
    this.expect(2, true)
    if (this.re == null) throw new Error('Message B was not read')
    const s = this.ss.encryptAndHash(this.s.publicKey)
    this.ss.mixKey(x25519(this.s, this.re))
    return concat([s, this.ss.encryptAndHash(payload)])
  }

  readMessageC (message: Uint8Array): Uint8Array {
    this.expect(2, false)
    if (this.e == null) throw new Error('Message B was not written')
    const sLength = X25519_KEY_LENGTH + TAG_LENGTH
    if (message.byteLength < sLength + TAG_LENGTH) {
      throw new HandshakeMessageError(`Message C too short: ${message.byteLength} bytes`)
    }
    this.rs = this.ss.decryptAndHash(message.subarray(0, sLength))
    this.ss.mixKey(x25519(this.e, this.rs))
    return this.ss.decryptAndHash(message.subarray(sLength))
  }

  /**
   * The two transport CipherStates: the first encrypts initiator to
   * responder, the second responder to initiator.
   */
  split (): [CipherState, CipherState] {
    if (this.stage !== 3) throw new Error('Handshake is not complete')
    this.e = undefined
    return this.ss.split()
  }
}
