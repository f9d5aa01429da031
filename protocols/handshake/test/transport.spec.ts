import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { TransportCipher } from '../src/stream.js'

function frames (cipher: TransportCipher, data: Uint8Array): Buffer[] {
  const out: Uint8Array[] = []
  cipher.seal(data, out)
  // header, body (+ tag)
  const all = Buffer.concat(out)
  assert.equal(all.readUInt16BE(0), all.byteLength - 2)
  return [all.subarray(2)]
}

describe('transport phase', () => {
  const key = randomBytes(32)

  for (const size of [0, 12, 1199, 1200, 65519]) {
    it(`round-trips a ${size}-byte frame`, () => {
      const tx = new TransportCipher(key)
      const rx = new TransportCipher(key)
      for (let i = 0; i < 3; i++) {
        const data = randomBytes(size)
        const [frame] = frames(tx, data)
        assert.equal(frame.byteLength, size + 16)
        assert.equal(Buffer.compare(Buffer.from(rx.open(frame)), data), 0)
      }
    })
  }

  it('refuses tampered, replayed, reordered and short frames', () => {
    for (const size of [10, 5000]) {
      const tx = new TransportCipher(key)
      const f1 = frames(tx, randomBytes(size))[0]
      const f2 = frames(tx, randomBytes(size))[0]
      const tampered = Buffer.from(f1)
      tampered[3] ^= 1
      assert.throws(() => new TransportCipher(key).open(tampered), { name: 'HandshakeDecryptError' })
      assert.throws(() => new TransportCipher(key).open(f2), { name: 'HandshakeDecryptError' }) // out of order
      const rx = new TransportCipher(key)
      rx.open(f1)
      assert.throws(() => rx.open(f1), { name: 'HandshakeDecryptError' }) // replay
      assert.throws(() => new TransportCipher(key).open(f1.subarray(0, 15)), { name: 'HandshakeDecryptError' })
    }
  })
})
