import assert from 'node:assert/strict'
import {
  MalformedFrameError, OversizeError, PayloadCompressor, PayloadDecompressor, TensorDecoder, TensorEncoder, TensorError,
  cosine, fromBf16, fromF16, toBf16, toF16
} from '../src/index.js'
import { prng, str, text } from './helpers.js'

function vectors (n: number, dim: number, seed: number): Float32Array[] {
  const rand = prng(seed)
  let v = Float32Array.from({ length: dim }, () => rand() * 2 - 1)
  const out: Float32Array[] = []
  for (let i = 0; i < n; i++) {
    // a slowly changing vector: a few elements move each step
    v = Float32Array.from(v)
    for (let k = 0; k < 8; k++) v[Math.floor(rand() * dim)] += (rand() - 0.5) * 0.2
    out.push(v)
  }
  return out
}

describe('sembatch tensors', () => {
  it('converts f16 and bf16 like IEEE 754 (round to nearest even)', () => {
    assert.equal(toF16(1), 0x3c00)
    assert.equal(toF16(-2), 0xc000)
    assert.equal(toF16(65504), 0x7bff)
    assert.equal(toF16(1e6), 0x7c00)
    assert.equal(toF16(5.960464477539063e-8), 0x0001)
    assert.equal(fromF16(0x3555), 0.333251953125)
    assert.equal(toBf16(1), 0x3f80)
    assert.equal(fromBf16(toBf16(3.140625)), 3.140625)
    assert.ok(Number.isNaN(fromF16(toF16(NaN))))
  })

  for (const dtype of ['f32', 'f16', 'bf16', 'int8'] as const) {
    it(`round-trips ${dtype} tensors with deltas, as close as the type allows`, () => {
      const enc = new TensorEncoder({ dtype })
      const dec = new TensorDecoder()
      const plain = new TensorEncoder({ dtype, delta: false })
      const plainDec = new TensorDecoder()
      let deltaBytes = 0
      let plainBytes = 0
      for (const v of vectors(50, 384, 1)) {
        const bytes = enc.encode(v)
        const pbytes = plain.encode(v)
        deltaBytes += bytes.byteLength
        plainBytes += pbytes.byteLength
        const got = dec.decode(bytes)
        assert.deepEqual(got.shape, [384])
        assert.equal(got.dtype, dtype)
        // a delta reproduces exactly what a whole tensor would (int8 keeps its base's scale, so only close)
        const whole = plainDec.decode(pbytes).data
        if (dtype !== 'int8') assert.ok(got.data.every((x, i) => x === whole[i]), `${dtype} delta differs`)
        if (dtype === 'f32') assert.deepEqual(got.data, v)
        else assert.ok(cosine(got.data, v) > 0.999, `${dtype} cosine ${cosine(got.data, v)}`)
      }
      assert.ok(deltaBytes < plainBytes, `${dtype}: deltas ${deltaBytes} bytes, whole ${plainBytes}`)
    })
  }

  it('refuses a delta whose base it does not hold, bad shapes and garbage, with TensorError only', () => {
    const enc = new TensorEncoder({ dtype: 'f16' })
    const [v1, v2] = vectors(2, 16, 3)
    enc.encode(v1)
    assert.throws(() => new TensorDecoder().decode(enc.encode(v2)), TensorError)
    assert.throws(() => enc.encode(v1, [3, 3]), TensorError)
    const rand = prng(11)
    for (let i = 0; i < 500; i++) {
      const bytes = new TensorEncoder({ dtype: (['f32', 'f16', 'bf16', 'int8'] as const)[i % 4] }).encode(vectors(1, 1 + i % 40, i)[0])
      for (let k = 0; k < 3; k++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256)
      try {
        new TensorDecoder().decode(bytes)
      } catch (err) {
        assert.ok(err instanceof TensorError, String(err))
      }
    }
  })

  it('compresses small similar payloads with a dictionary from the context\'s traffic', () => {
    const c = new PayloadCompressor()
    const d = new PayloadDecompressor()
    let raw = 0
    let packed = 0
    for (let i = 0; i < 300; i++) {
      const payload = text(JSON.stringify({ role: 'user', capability: 'summarise', content: `summarise the build log of job ${i} for the on-call operator`, trace: `00-${i.toString(16).padStart(32, '0')}-01` }))
      const bytes = c.compress(payload)
      assert.equal(str(d.decompress(bytes)), str(payload))
      if (i >= 100) {
        raw += payload.byteLength
        packed += bytes.byteLength
      }
    }
    assert.ok(packed < raw / 3, `${packed} of ${raw}`)
    assert.throws(() => new PayloadDecompressor().decompress(Uint8Array.of(2, 1, 10, 0)), MalformedFrameError)
    assert.throws(() => new PayloadDecompressor().decompress(Uint8Array.of(1, 0xff, 0xff, 0xff, 0x7f)), OversizeError)
  })
})
