import crypto from 'node:crypto'
import { ml_kem768 as mlKem768 } from '@noble/post-quantum/ml-kem.js'
import { MLKEM768_CIPHERTEXT_LENGTH, MLKEM768_ENCAPSULATION_SEED_LENGTH, MLKEM768_PUBLIC_KEY_LENGTH, MLKEM768_SEED_LENGTH } from './constants.js'
import { KemError } from './errors.js'

/** a KEM key pair whose secret half never leaves the backend */
export interface KemKeyPair {
  publicKey: Uint8Array
  decapsulate(ciphertext: Uint8Array): Uint8Array
}

export interface Encapsulation {
  ciphertext: Uint8Array
  sharedSecret: Uint8Array
}

/** an ML-KEM-768 implementation */
export interface Kem {
  readonly name: 'node' | 'noble'
  generateKeyPair(): KemKeyPair
  encapsulate(publicKey: Uint8Array): Encapsulation
}

export type KemChoice = 'auto' | 'node' | 'noble'

// SPKI wrapper of a raw ML-KEM-768 encapsulation key (id-alg-ml-kem-768, 2.16.840.1.101.3.4.4.2)
const MLKEM768_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x82, 0x04, 0xb2, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, 0x02, 0x03, 0x82, 0x04, 0xa1, 0x00
])

function checkPublicKey (publicKey: Uint8Array): void {
  if (publicKey.byteLength !== MLKEM768_PUBLIC_KEY_LENGTH) {
    throw new KemError(`ML-KEM-768 public key must be ${MLKEM768_PUBLIC_KEY_LENGTH} bytes, got ${publicKey.byteLength}`)
  }
}

function checkCiphertext (ciphertext: Uint8Array): void {
  if (ciphertext.byteLength !== MLKEM768_CIPHERTEXT_LENGTH) {
    throw new KemError(`ML-KEM-768 ciphertext must be ${MLKEM768_CIPHERTEXT_LENGTH} bytes, got ${ciphertext.byteLength}`)
  }
}

function message (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

let nodeSupport: boolean | undefined

/** true when node:crypto has ML-KEM-768 (Node 24 with OpenSSL 3.5) */
export function hasNodeMlKem (): boolean {
  if (nodeSupport === undefined) {
    try {
      const c = crypto as any
      if (typeof c.encapsulate !== 'function' || typeof c.decapsulate !== 'function') {
        nodeSupport = false
      } else {
        const { publicKey, privateKey } = crypto.generateKeyPairSync('ml-kem-768' as any)
        const { sharedKey, ciphertext } = c.encapsulate(publicKey)
        nodeSupport = Buffer.from(c.decapsulate(privateKey, ciphertext)).equals(sharedKey)
      }
    } catch {
      nodeSupport = false
    }
  }
  return nodeSupport
}

/** ML-KEM-768 on node:crypto (OpenSSL) */
export const nodeKem: Kem = {
  name: 'node',
  generateKeyPair (): KemKeyPair {
    const c = crypto as any
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ml-kem-768' as any)
    const raw = (publicKey.export({ format: 'der', type: 'spki' }) as Buffer).subarray(MLKEM768_SPKI_PREFIX.length)
    return {
      publicKey: raw,
      decapsulate (ciphertext: Uint8Array): Uint8Array {
        checkCiphertext(ciphertext)
        try {
          return c.decapsulate(privateKey, ciphertext)
        } catch (err) {
          throw new KemError(`ML-KEM-768 decapsulation failed: ${message(err)}`)
        }
      }
    }
  },
  encapsulate (publicKey: Uint8Array): Encapsulation {
    checkPublicKey(publicKey)
    try {
      const key = crypto.createPublicKey({ key: Buffer.concat([MLKEM768_SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' })
      const { sharedKey, ciphertext } = (crypto as any).encapsulate(key)
      return { ciphertext, sharedSecret: sharedKey }
    } catch (err) {
      throw new KemError(`ML-KEM-768 encapsulation failed: ${message(err)}`)
    }
  }
}

function nobleKeyPair (seed?: Uint8Array): KemKeyPair {
  const { publicKey, secretKey } = mlKem768.keygen(seed)
  return {
    publicKey,
    decapsulate (ciphertext: Uint8Array): Uint8Array {
      checkCiphertext(ciphertext)
      try {
        return mlKem768.decapsulate(ciphertext, secretKey)
      } catch (err) {
        throw new KemError(`ML-KEM-768 decapsulation failed: ${message(err)}`)
      }
    }
  }
}

function nobleEncapsulate (publicKey: Uint8Array, seed?: Uint8Array): Encapsulation {
  checkPublicKey(publicKey)
  try {
    const { cipherText, sharedSecret } = mlKem768.encapsulate(publicKey, seed)
    return { ciphertext: cipherText, sharedSecret }
  } catch (err) {
    throw new KemError(`ML-KEM-768 encapsulation failed: ${message(err)}`)
  }
}

/** ML-KEM-768 in JavaScript (@noble/post-quantum) */
export const nobleKem: Kem = {
  name: 'noble',
  generateKeyPair: () => nobleKeyPair(),
  encapsulate: (publicKey) => nobleEncapsulate(publicKey)
}

/**
 * A deterministic ML-KEM-768 for known-answer tests only: key generation from
 * the 64-byte `d || z` seed and encapsulation from the 32-byte message `m`
 * (FIPS 203). Each seed is used once; never use this for connections.
 */
export function seededKem (keygenSeed?: Uint8Array, encapsulationSeed?: Uint8Array): Kem {
  if (keygenSeed != null && keygenSeed.byteLength !== MLKEM768_SEED_LENGTH) {
    throw new KemError(`ML-KEM-768 key generation seed must be ${MLKEM768_SEED_LENGTH} bytes`)
  }
  if (encapsulationSeed != null && encapsulationSeed.byteLength !== MLKEM768_ENCAPSULATION_SEED_LENGTH) {
    throw new KemError(`ML-KEM-768 encapsulation seed must be ${MLKEM768_ENCAPSULATION_SEED_LENGTH} bytes`)
  }
  return {
    name: 'noble',
    generateKeyPair: () => nobleKeyPair(keygenSeed),
    encapsulate: (publicKey) => nobleEncapsulate(publicKey, encapsulationSeed)
  }
}

/** picks a backend: node:crypto when it has ML-KEM-768, else noble */
export function selectKem (choice: KemChoice = 'auto'): Kem {
  if (choice === 'noble') return nobleKem
  if (choice === 'node') {
    if (!hasNodeMlKem()) throw new KemError('node:crypto has no ML-KEM-768 (needs Node.js 24 with OpenSSL 3.5)')
    return nodeKem
  }
  if (choice === 'auto') return hasNodeMlKem() ? nodeKem : nobleKem
  throw new KemError(`Unknown ML-KEM backend "${String(choice)}"`)
}
