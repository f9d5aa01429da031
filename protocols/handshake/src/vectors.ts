import { seededKem } from './kem.js'
import { x25519FromPrivate } from './noise/crypto.js'
import { XXhfsHandshake } from './noise/xxhfs.js'

/**
 * Known-answer vectors of `Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256`.
 * Every input is a run of one repeated byte derived from a base byte B
 * (static keys B+1, B+2; ephemeral X25519 keys B+3, B+4; the 64-byte ML-KEM
 * key generation seed B+5; the 32-byte encapsulation message B+6; empty
 * prologue and payloads), so any implementation can recompute them.
 */
export interface VectorInputs {
  base: number
  staticInitiator: Uint8Array
  staticResponder: Uint8Array
  ephemeralInitiator: Uint8Array
  ephemeralResponder: Uint8Array
  kemSeed: Uint8Array
  encapsulationSeed: Uint8Array
}

export interface VectorOutputs {
  msg_a: string
  msg_b: string
  msg_c: string
  handshake_hash: string
  cs1_k: string
  cs2_k: string
}

export function vectorInputs (base: number): VectorInputs {
  if (!Number.isInteger(base) || base < 0 || base > 0xf9) {
    throw new RangeError('Base byte must be an integer from 0x00 to 0xf9')
  }
  const run = (offset: number, length: number): Uint8Array => new Uint8Array(length).fill(base + offset)
  return {
    base,
    staticInitiator: run(1, 32),
    staticResponder: run(2, 32),
    ephemeralInitiator: run(3, 32),
    ephemeralResponder: run(4, 32),
    kemSeed: run(5, 64),
    encapsulationSeed: run(6, 32)
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** runs both sides of the handshake on the derived inputs and checks that they agree */
export function runVector (base: number): VectorOutputs {
  const v = vectorInputs(base)
  const kem = seededKem(v.kemSeed, v.encapsulationSeed)
  const initiator = new XXhfsHandshake({ initiator: true, s: x25519FromPrivate(v.staticInitiator), e: x25519FromPrivate(v.ephemeralInitiator), kem })
  const responder = new XXhfsHandshake({ initiator: false, s: x25519FromPrivate(v.staticResponder), e: x25519FromPrivate(v.ephemeralResponder), kem })
  const a = initiator.writeMessageA()
  responder.readMessageA(a)
  const b = responder.writeMessageB()
  initiator.readMessageB(b)
  const c = initiator.writeMessageC()
  responder.readMessageC(c)
  const [i1, i2] = initiator.split()
  const [r1, r2] = responder.split()
  const same = (x?: Uint8Array, y?: Uint8Array): boolean => x != null && y != null && Buffer.from(x).equals(y)
  if (!same(initiator.handshakeHash, responder.handshakeHash) || !same(i1.key, r1.key) || !same(i2.key, r2.key)) {
    throw new Error('Initiator and responder disagree')
  }
  return {
    msg_a: hex(a),
    msg_b: hex(b),
    msg_c: hex(c),
    handshake_hash: hex(initiator.handshakeHash),
    cs1_k: hex(i1.key ?? new Uint8Array()),
    cs2_k: hex(i2.key ?? new Uint8Array())
  }
}
