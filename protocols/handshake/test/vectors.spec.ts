import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  runVector, vectorInputs, XXhfsHandshake, nodeKem, nobleKem, seededKem, hasNodeMlKem,
  MSG_A_LENGTH, MSG_B_MIN_LENGTH, MSG_C_MIN_LENGTH, PQ_NOISE_SUITE, KemError, HandshakeDecryptError, HandshakeMessageError
} from '../src/index.js'
import { x25519Generate } from '../src/noise/crypto.js'
import type { Kem } from '../src/index.js'

// dist/test/vectors.spec.js -> test/fixtures
const fixture = fileURLToPath(new URL('../../test/fixtures/noise-xxhfs-mlkem768.json', import.meta.url))
const file = JSON.parse(readFileSync(fixture, 'utf8'))

describe('XXhfs known-answer vectors', () => {
  it('uses the suite name of the vector file', () => {
    assert.equal(file.protocol_name, PQ_NOISE_SUITE)
  })

  for (const v of file.vectors) {
    it(`reproduces vector ${String(v.base_byte)}`, () => {
      const out = runVector(Number(v.base_byte))
      assert.equal(out.msg_a.length / 2, v.msg_a_bytes)
      assert.equal(out.msg_b.length / 2, v.msg_b_bytes)
      assert.equal(out.msg_c.length / 2, v.msg_c_bytes)
      assert.equal(out.msg_b.slice(0, 80), v.msg_b_first_40_bytes)
      assert.equal(out.msg_c, v.msg_c)
      assert.equal(out.handshake_hash, v.handshake_hash)
      assert.equal(out.cs1_k, v.cs1_k)
      assert.equal(out.cs2_k, v.cs2_k)
    })
  }

  it('derives the inputs from the base byte', () => {
    const i = vectorInputs(0x10)
    assert.deepEqual([i.staticInitiator[0], i.staticResponder[0], i.ephemeralInitiator[0], i.ephemeralResponder[0], i.kemSeed[0], i.encapsulationSeed[0]], [0x11, 0x12, 0x13, 0x14, 0x15, 0x16])
    assert.equal(i.kemSeed.byteLength, 64)
    assert.equal(i.encapsulationSeed.byteLength, 32)
    assert.throws(() => vectorInputs(0x100), RangeError)
  })
})

const bytes = (b?: Uint8Array): string => Buffer.from(b ?? new Uint8Array(0)).toString('hex')

function handshake (initiatorKem: Kem, responderKem: Kem, payloads = [new Uint8Array(0), Uint8Array.of(1, 2), Uint8Array.of(3)]) {
  const initiator = new XXhfsHandshake({ initiator: true, s: x25519Generate(), kem: initiatorKem })
  const responder = new XXhfsHandshake({ initiator: false, s: x25519Generate(), kem: responderKem })
  const a = initiator.writeMessageA(payloads[0])
  assert.equal(bytes(responder.readMessageA(a)), bytes(payloads[0]))
  const b = responder.writeMessageB(payloads[1])
  assert.equal(bytes(initiator.readMessageB(b)), bytes(payloads[1]))
  const c = initiator.writeMessageC(payloads[2])
  assert.equal(bytes(responder.readMessageC(c)), bytes(payloads[2]))
  return { initiator, responder, a, b, c }
}

describe('XXhfs handshake state', () => {
  const backends: Kem[] = hasNodeMlKem() ? [nodeKem, nobleKem] : [nobleKem]

  it('has node:crypto ML-KEM-768 on this Node.js', () => {
    assert.equal(hasNodeMlKem(), true)
  })

  for (const i of backends) {
    for (const r of backends) {
      it(`completes with a ${i.name} initiator and a ${r.name} responder`, () => {
        const { initiator, responder, a, b, c } = handshake(i, r, [new Uint8Array(0), new Uint8Array(0), new Uint8Array(0)])
        assert.equal(a.byteLength, MSG_A_LENGTH)
        assert.equal(b.byteLength, MSG_B_MIN_LENGTH)
        assert.equal(c.byteLength, MSG_C_MIN_LENGTH)
        assert.equal(bytes(initiator.handshakeHash), bytes(responder.handshakeHash))
        const [i1, i2] = initiator.split()
        const [r1, r2] = responder.split()
        assert.equal(bytes(i1.key), bytes(r1.key))
        assert.equal(bytes(i2.key), bytes(r2.key))
        assert.notEqual(bytes(i1.key), bytes(i2.key))
        const msg = new TextEncoder().encode('hello')
        assert.equal(bytes(r1.decryptWithAd(new Uint8Array(0), i1.encryptWithAd(new Uint8Array(0), msg))), bytes(msg))
        assert.equal(bytes(i2.decryptWithAd(new Uint8Array(0), r2.encryptWithAd(new Uint8Array(0), msg))), bytes(msg))
      })
    }
  }

  it('carries payloads', () => {
    handshake(nobleKem, nobleKem)
  })

  it('makes a fresh ML-KEM key pair for every handshake', () => {
    const one = handshake(nodeKem, nodeKem).a.subarray(32, MSG_A_LENGTH)
    const two = handshake(nodeKem, nodeKem).a.subarray(32, MSG_A_LENGTH)
    assert.notEqual(bytes(one), bytes(two))
  })

  it('refuses short messages', () => {
    const responder = new XXhfsHandshake({ initiator: false, s: x25519Generate(), kem: nodeKem })
    assert.throws(() => responder.readMessageA(new Uint8Array(1215)), { name: 'HandshakeMessageError' })
    const { b } = (() => {
      const i = new XXhfsHandshake({ initiator: true, s: x25519Generate(), kem: nodeKem })
      const r = new XXhfsHandshake({ initiator: false, s: x25519Generate(), kem: nodeKem })
      r.readMessageA(i.writeMessageA())
      const b = r.writeMessageB()
      assert.throws(() => i.readMessageB(b.subarray(0, 1199)), HandshakeMessageError)
      return { b }
    })()
    assert.equal(b.byteLength, 1200)
  })

  it('refuses a tampered KEM ciphertext, static key or payload', () => {
    for (const at of [40, 32 + 1104 + 5, 1199]) {
      const i = new XXhfsHandshake({ initiator: true, s: x25519Generate(), kem: nodeKem })
      const r = new XXhfsHandshake({ initiator: false, s: x25519Generate(), kem: nodeKem })
      r.readMessageA(i.writeMessageA())
      const b = Uint8Array.from(r.writeMessageB())
      b[at] ^= 1
      assert.throws(() => i.readMessageB(b), HandshakeDecryptError)
    }
  })

  it('refuses a tampered ML-KEM public key (the transcripts diverge)', () => {
    const i = new XXhfsHandshake({ initiator: true, s: x25519Generate(), kem: nodeKem })
    const r = new XXhfsHandshake({ initiator: false, s: x25519Generate(), kem: nodeKem })
    const a = Uint8Array.from(i.writeMessageA())
    a[100] ^= 1
    r.readMessageA(a)
    assert.throws(() => i.readMessageB(r.writeMessageB()), HandshakeDecryptError)
  })

  it('refuses a small-order X25519 ephemeral', () => {
    const i = new XXhfsHandshake({ initiator: true, s: x25519Generate(), kem: nodeKem })
    const r = new XXhfsHandshake({ initiator: false, s: x25519Generate(), kem: nodeKem })
    const a = Uint8Array.from(i.writeMessageA())
    a.fill(0, 0, 32)
    r.readMessageA(a)
    assert.throws(() => r.writeMessageB(), HandshakeMessageError)
  })

  it('checks KEM key and ciphertext lengths on both backends', () => {
    for (const kem of [nodeKem, nobleKem]) {
      const kp = kem.generateKeyPair()
      assert.equal(kp.publicKey.byteLength, 1184)
      const { ciphertext, sharedSecret } = kem.encapsulate(kp.publicKey)
      assert.equal(ciphertext.byteLength, 1088)
      assert.equal(bytes(kp.decapsulate(ciphertext)), bytes(sharedSecret))
      assert.throws(() => kp.decapsulate(ciphertext.subarray(0, 1087)), KemError)
      assert.throws(() => kp.decapsulate(new Uint8Array(1089)), KemError)
      assert.throws(() => kem.encapsulate(kp.publicKey.subarray(1)), KemError)
    }
  })

  it('refuses seeds of the wrong length', () => {
    assert.throws(() => seededKem(new Uint8Array(63)), KemError)
    assert.throws(() => seededKem(undefined, new Uint8Array(31)), KemError)
  })
})
