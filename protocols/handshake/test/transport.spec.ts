import assert from 'node:assert/strict'
import { createCipheriv, randomBytes } from 'node:crypto'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import { EncryptedStream, TransportCipher } from '../src/stream.js'
import type { MessageStream } from '@libp2p/interface'

/** the byte list type of the libp2p stream API (uint8arraylist 3) */
type ByteList = Exclude<Parameters<TransportCipher['seal']>[0], Uint8Array>

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

/** the Noise transport frame as specified: `len(2) || ChaCha20-Poly1305(k, 0^32 || LE64(n), "", plaintext)` */
function referenceFrame (key: Uint8Array, n: number, plaintext: Uint8Array): Buffer {
  const nonce = Buffer.alloc(12)
  nonce.writeBigUInt64LE(BigInt(n), 4)
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 })
  c.setAAD(new Uint8Array(0), { plaintextLength: plaintext.byteLength })
  const body = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()])
  const header = Buffer.alloc(2)
  header.writeUInt16BE(body.byteLength)
  return Buffer.concat([header, body])
}

/** the reference frames of `data` cut into frames of at most 65519 bytes, nonces from `n` */
function referenceFrames (key: Uint8Array, data: Uint8Array, n = 0): Buffer {
  const out: Buffer[] = []
  for (let i = 0; i < data.byteLength; i += 65519) out.push(referenceFrame(key, n++, data.subarray(i, i + 65519)))
  return Buffer.concat(out)
}

/** cuts `data` into pieces of the given sizes, repeated */
function cut (data: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let i = 0, j = 0; i < data.byteLength; j++) {
    const n = sizes[j % sizes.length]
    out.push(data.subarray(i, i + n))
    i += n
  }
  return out
}

async function collect (stream: MessageStream, bytes: number): Promise<Buffer> {
  const parts: Uint8Array[] = []
  let got = 0
  return await new Promise((resolve, reject) => {
    stream.addEventListener('message', (evt) => {
      parts.push(evt.data.subarray())
      got += evt.data.byteLength
      if (got >= bytes) resolve(Buffer.concat(parts))
    })
    stream.addEventListener('close', (evt) => { reject(evt.error ?? new Error('closed')) })
  })
}

describe('transport wire format', () => {
  const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i * 7 + 1))
  const data = Buffer.from(Array.from({ length: 3 * 65519 + 1000 }, (_, i) => (i * 31 + (i >> 8)) & 0xff))

  it('seals frames exactly like the Noise reference, from bytes and from byte lists', () => {
    for (const size of [0, 1, 1199, 1200, 4096, 65519]) {
      const plaintext = data.subarray(0, size)
      const tx = new TransportCipher(key)
      for (let n = 0; n < 3; n++) {
        const input = n === 1 ? new Uint8ArrayList(...cut(plaintext, [1, 700, 3])) as unknown as ByteList : plaintext
        const out: Uint8Array[] = []
        tx.seal(input, out)
        assert.ok(Buffer.concat(out).equals(referenceFrame(key, n, plaintext)), `size ${size}, nonce ${n}`)
      }
    }
  })

  it('the secured stream writes reference frames and reads them back in any chunking', async () => {
    for (const sizes of [[1, 1, 1, 5, 16, 30000], [2, 3, 65537], [65537], [70000, 5], [17, 65521, 1000]]) {
      const [a, b] = multiaddrConnectionPair()
      const secured = new EncryptedStream(a, new TransportCipher(key), new TransportCipher(key))
      // secured -> raw: what goes on the wire (one write, so frames are cut every 65519 bytes)
      const wire = collect(b, referenceFrames(key, data).byteLength)
      secured.send(data)
      assert.ok((await wire).equals(referenceFrames(key, data)), 'wire')
      // raw -> secured, cut at awkward places (inside headers, bodies and tags)
      const plain = collect(secured, data.byteLength)
      for (const piece of cut(referenceFrames(key, data), sizes)) b.send(piece)
      assert.ok((await plain).equals(data), `chunks ${sizes.join(',')}`)
      await Promise.all([a.close(), b.close()])
    }
  })

  it('a tampered frame aborts the secured stream', async () => {
    for (const size of [100, 60000]) {
      const [a, b] = multiaddrConnectionPair()
      const secured = new EncryptedStream(a, new TransportCipher(key), new TransportCipher(key))
      const closed = new Promise<Error | undefined>((resolve) => {
        secured.addEventListener('close', (evt) => { resolve(evt.error) })
      })
      const frames = referenceFrames(key, data.subarray(0, size))
      frames[frames.byteLength - 1] ^= 1
      for (const piece of cut(frames, [7000])) b.send(piece)
      const err = await closed
      assert.equal(err?.name, 'HandshakeDecryptError')
      await b.close().catch(() => {})
    }
  })
})
