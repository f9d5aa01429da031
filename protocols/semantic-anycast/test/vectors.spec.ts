import assert from 'node:assert/strict'
import { HashEmbedder } from '@aistack/embeddings'
import { TensorEncoder, cosine } from '@aistack/sembatch'
import { multiaddr } from '@multiformats/multiaddr'
import { pbStream } from '@libp2p/utils'
import { toString as u8ToString } from 'uint8arrays/to-string'
import { fromString as u8FromString } from 'uint8arrays/from-string'
import { LocalInvoker } from '../src/invoke.js'
import { Request, Response } from '../src/pb/anycast.js'
import { VECTOR_LIMITS, VectorEncoding, f32Number, packVectors, unpackVectors } from '../src/vectors.js'
import { TestProvider, createNode, waitFor } from './helpers.js'
import type { TestNode } from './helpers.js'

/** seeded numbers in [-1, 1) */
function random (seed: number): () => number {
  let s = seed
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648
    return s / 1073741824 - 1
  }
}

/** a vector as the builtin embed answers it: unit length, six decimals */
function embedLike (rand: () => number, dim: number): number[] {
  const v = Array.from({ length: dim }, rand)
  const norm = Math.hypot(...v)
  return v.map(x => Math.round(x / norm * 1e6) / 1e6)
}

const bytesOf = (p: { json: string, tensors: Uint8Array[] }): number => p.tensors.reduce((n, t) => n + t.byteLength, u8FromString(p.json).byteLength)

describe('vectors in answers', () => {
  it('f32Number gives back every number of up to six significant digits', () => {
    const rand = random(7)
    for (let i = 0; i < 20_000; i++) {
      const x = Math.round(rand() * 1e6) / 1e6
      assert.equal(f32Number(Math.fround(x)), x)
      // six digits at any scale binary32 holds
      const scaled = Number(`${Math.round(rand() * 1e5)}e${Math.floor((rand() + 1) * 30) - 30}`)
      assert.equal(f32Number(Math.fround(scaled)), scaled)
    }
  })

  it('an embed answer travels as f32 tensors and comes back exactly, in under half the bytes', () => {
    const rand = random(1)
    const output = { model: 'aistack-hybrid-v2', dim: 384, vectors: [embedLike(rand, 384), embedLike(rand, 384), embedLike(rand, 384)] }
    const packed = packVectors(output, VectorEncoding.F32)
    assert.equal(packed.tensors.length, 3)
    assert.deepEqual(JSON.parse(packed.json), { model: 'aistack-hybrid-v2', dim: 384, vectors: [{ $tensor: 0 }, { $tensor: 1 }, { $tensor: 2 }] })
    assert.deepEqual(unpackVectors(packed.json, packed.tensors, VectorEncoding.F32, 1e6), output)
    const json = u8FromString(JSON.stringify(output)).byteLength
    assert.ok(bytesOf(packed) < json / 2, `${bytesOf(packed)} bytes against ${json} as JSON`)
  })

  it('numbers f32 would change stay JSON numbers', () => {
    const rand = random(2)
    // full doubles: no binary32 gives them back
    const precise = Array.from({ length: 64 }, rand)
    const mixed = [...embedLike(rand, 63), 0.1234567891]
    const output = { precise, mixed, huge: Array.from({ length: 32 }, (_, i) => 1e39 * (i + 1)) }
    const packed = packVectors(output, VectorEncoding.F32)
    assert.equal(packed.tensors.length, 0)
    assert.deepEqual(JSON.parse(packed.json), output)
  })

  it('short arrays, mixed arrays and JSON encoding are left alone', () => {
    const rand = random(3)
    const output = { short: embedLike(rand, VECTOR_LIMITS.minLength - 1), words: Array.from({ length: 40 }, (_, i) => `w${i}`), withNull: [...embedLike(rand, 20), null] }
    assert.equal(packVectors(output, VectorEncoding.F32).tensors.length, 0)
    const vector = embedLike(rand, 32)
    assert.equal(packVectors({ vector }, VectorEncoding.JSON).tensors.length, 0)
    assert.equal(packVectors({ vector }, VectorEncoding.JSON).json, JSON.stringify({ vector }))
  })

  it('an output with a $tensor key of its own travels as plain JSON', () => {
    const rand = random(4)
    const output = { note: { $tensor: 0 }, vector: embedLike(rand, 32) }
    const packed = packVectors(output, VectorEncoding.F32)
    assert.equal(packed.tensors.length, 0)
    assert.deepEqual(JSON.parse(packed.json), output)
  })

  it('nested vectors and toJSON values are packed as JSON.stringify would see them', () => {
    const rand = random(5)
    const rows = [embedLike(rand, 16), embedLike(rand, 16)]
    const output = { at: new Date(0), rows, deep: { list: [{ v: rows[0] }] } }
    const packed = packVectors(output, VectorEncoding.F32)
    assert.equal(packed.tensors.length, 3)
    assert.deepEqual(unpackVectors(packed.json, packed.tensors, VectorEncoding.F32, 1e6), JSON.parse(JSON.stringify(output)))
  })

  it('f16, bf16 and int8 are smaller and close', () => {
    const rand = random(6)
    const output = { vectors: [embedLike(rand, 384), embedLike(rand, 384)] }
    const f32 = bytesOf(packVectors(output, VectorEncoding.F32))
    for (const [name, encoding] of [['f16', VectorEncoding.F16], ['bf16', VectorEncoding.BF16], ['int8', VectorEncoding.INT8]] as const) {
      const packed = packVectors(output, encoding)
      assert.equal(packed.tensors.length, 2, name)
      assert.ok(bytesOf(packed) < f32 * 0.6, `${name}: ${bytesOf(packed)} bytes against ${f32} for f32`)
      const back = unpackVectors(packed.json, packed.tensors, encoding, 1e6) as { vectors: number[][] }
      back.vectors.forEach((v, i) => { assert.ok(cosine(v, output.vectors[i]) > 0.999, `${name} cosine ${cosine(v, output.vectors[i])}`) })
    }
    // f16 cannot hold numbers past 65504: those stay JSON
    assert.equal(packVectors({ v: Array.from({ length: 20 }, () => 70_000) }, VectorEncoding.F16).tensors.length, 0)
  })

  it('a malformed answer is refused with BadResponseError, within the output limit', () => {
    const good = new TensorEncoder({ dtype: 'f32', delta: false }).encode(new Float32Array(100))
    const cases: Array<[string, Uint8Array[], number]> = [
      ['{"v":{"$tensor":1}}', [good], 1e6],
      ['{"v":{"$tensor":-1}}', [good], 1e6],
      ['{"v":{"$tensor":0.5}}', [good], 1e6],
      ['{"v":{"$tensor":0}}', [new Uint8Array([0xff, 0xff, 0xff])], 1e6],
      // more numbers than the output could hold as JSON
      ['[{"$tensor":0},{"$tensor":0}]', [good], 150],
      ['{"v":{"$tensor":0}}', [new TensorEncoder({ dtype: 'f32', delta: false }).encode(new Float32Array(16), [4, 4])], 1e6],
      ['{"v":', [good], 1e6]
    ]
    for (const [json, tensors, max] of cases) {
      assert.throws(() => unpackVectors(json, tensors, VectorEncoding.F32, max), (err: Error) => err.name === 'BadResponseError', json)
    }
    // a placeholder-like object with more keys is the output's own
    assert.deepEqual(unpackVectors('{"v":{"$tensor":0,"x":1}}', [good], VectorEncoding.F32, 1e6), { v: { $tensor: 0, x: 1 } })
  })

  it('a hostile answer cannot make the asker build more than its bound, nor numbers JSON cannot hold', () => {
    const f32 = (values: Float32Array, shape?: number[]): Uint8Array => new TensorEncoder({ dtype: 'f32', delta: false }).encode(values, shape)
    const refuse = (json: string, tensors: Uint8Array[], expected: VectorEncoding, max: number, what: string): void => {
      assert.throws(() => unpackVectors(json, tensors, expected, max), (err: Error) => err.name === 'BadResponseError', what)
    }
    const places = (n: number): string => JSON.stringify(Array.from({ length: n }, () => ({ $tensor: 0 })))
    // one tensor named at many places counts at each; an empty one counts one a place
    refuse(places(131_072), [f32(new Float32Array(16))], VectorEncoding.F32, 1e6, 'many places')
    refuse(places(200_000), [f32(new Float32Array(0))], VectorEncoding.F32, 1e5, 'empty tensor at many places')
    assert.equal((unpackVectors(places(1000), [f32(new Float32Array(16))], VectorEncoding.F32, 1e6) as number[][]).length, 1000)
    // two million zeros compress to a few hundred bytes: more numbers than the bytes allow
    const zeros = f32(new Float32Array(2_000_000))
    assert.ok(zeros.byteLength < 1024)
    refuse('{"v":{"$tensor":0}}', [zeros], VectorEncoding.F32, 1e7, 'zstd of zeros')
    // numbers JSON has no form for
    refuse('{"v":{"$tensor":0}}', [f32(Float32Array.from({ length: 16 }, (_, i) => i === 3 ? NaN : i))], VectorEncoding.F32, 1e6, 'NaN')
    refuse('{"v":{"$tensor":0}}', [f32(Float32Array.from({ length: 16 }, (_, i) => i === 3 ? Infinity : i))], VectorEncoding.F32, 1e6, 'Infinity')
    // tensors of another element type than asked for, or to an asker that asked for none
    refuse('{"v":{"$tensor":0}}', [new TensorEncoder({ dtype: 'f16', delta: false }).encode(new Float32Array(16))], VectorEncoding.F32, 1e6, 'f16 to an f32 asker')
    refuse('{"v":{"$tensor":0}}', [f32(new Float32Array(16))], VectorEncoding.JSON, 1e6, 'tensors to a JSON asker')
  })

  it('a "__proto__" key with a placeholder gets the numbers as its own property, no prototype', () => {
    const out = unpackVectors('{"__proto__":{"$tensor":0}}', [new TensorEncoder({ dtype: 'f32', delta: false }).encode(new Float32Array(16))], VectorEncoding.F32, 1e6) as Record<string, unknown>
    assert.equal(Object.getPrototypeOf(out), Object.prototype)
    assert.deepEqual(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, new Array(16).fill(0))
  })

  it('numbers an element type cannot carry, or too many for their bytes, stay JSON; deep nesting packs', () => {
    const big = { v: Array.from({ length: 20 }, (_, i) => i === 0 ? 1e39 : i) }
    for (const encoding of [VectorEncoding.F32, VectorEncoding.BF16, VectorEncoding.INT8]) assert.equal(packVectors(big, encoding).tensors.length, 0)
    assert.equal(packVectors({ v: Array.from({ length: 20 }, () => 1e-44) }, VectorEncoding.INT8).tensors.length, 0)
    assert.equal(packVectors({ v: new Array(200_000).fill(0) }, VectorEncoding.F32).tensors.length, 0)
    // as deep as JSON.stringify alone goes: packed, or plain JSON when the replacer runs out of stack
    let deep: unknown = embedLike(random(10), 16)
    for (let i = 0; i < 3000; i++) deep = [deep]
    const packed = packVectors(deep, VectorEncoding.F32)
    // (compared as JSON: a deep comparison would run out of stack)
    assert.equal(JSON.stringify(unpackVectors(packed.json, packed.tensors, VectorEncoding.F32, 1e6)), JSON.stringify(deep))
    // a placeholder deeper than a recursive walk could go
    const json = '['.repeat(5000) + '{"$tensor":0}' + ']'.repeat(5000)
    let back = unpackVectors(json, [new TensorEncoder({ dtype: 'f32', delta: false }).encode(new Float32Array(16))], VectorEncoding.F32, 1e6)
    for (let i = 0; i < 5000; i++) back = (back as unknown[])[0]
    assert.deepEqual(back, new Array(16).fill(0))
  })

  it('the local invoker counts tensors in the output limit', async () => {
    const provider = new TestProvider()
    const rand = random(8)
    provider.add({ name: 'vec', description: 'vectors', tags: [] }, async () => ({ vectors: Array.from({ length: 8 }, () => embedLike(rand, 384)) }))
    const invoker = new LocalInvoker({ provider, announced: () => undefined, maxOutputBytes: 8 * 1024 })
    const input = u8FromString('null')
    const asJson = await invoker.run('vec', input, 5000, [], VectorEncoding.JSON)
    assert.equal(Response.Status[asJson.status], 'TOO_LARGE')
    const asF32 = await invoker.run('vec', input, 5000, [], VectorEncoding.F32)
    assert.equal(Response.Status[asF32.status], 'TOO_LARGE')
    const small = new LocalInvoker({ provider, announced: () => undefined, maxOutputBytes: 16 * 1024 })
    const ok = await small.run('vec', input, 5000, [], VectorEncoding.F32)
    assert.equal(Response.Status[ok.status], 'OK')
    assert.equal(ok.tensors.length, 8)
  })

  describe('between two nodes', function () {
    this.timeout(120_000)
    const embedder = new HashEmbedder()
    const CAP = { name: 'embed-text', description: 'Embed a text into a vector for semantic search', tags: ['embed', 'vector'] }
    const rand = random(9)
    const answer = { model: 'test', dim: 384, vectors: [embedLike(rand, 384), embedLike(rand, 384)] }
    const nodes: TestNode[] = []
    let server: TestNode

    before(async () => {
      server = await createNode(embedder)
      nodes.push(server)
      server.provider.add(CAP, async () => answer)
    })

    after(async () => {
      await Promise.all(nodes.splice(0).map(async n => n.stop()))
    })

    async function asker (vectors?: 'json' | 'f32' | 'int8'): Promise<TestNode> {
      const node = await createNode(embedder, vectors == null ? {} : { vectors })
      nodes.push(node)
      await node.dial(multiaddr(server.addr))
      await waitFor(async () => (await node.services.anycast.find('embed a text into a vector', { source: 'cache' }))[0]?.name === CAP.name, 30_000, 'the record')
      return node
    }

    it('an ask gets the same output as JSON, whether vectors travel as f32 tensors (default) or JSON', async () => {
      const f32 = await asker()
      const json = await asker('json')
      assert.deepEqual((await f32.services.anycast.ask('embed a text into a vector', 'hello')).output, answer)
      assert.deepEqual((await json.services.anycast.ask('embed a text into a vector', 'hello')).output, answer)
    })

    it('a node set up with an unknown vectors encoding is refused with the names it takes', async () => {
      await assert.rejects(createNode(embedder, { vectors: 'f64' as any }), (err: Error) => err.name === 'TypeError' && /json, f32, f16, bf16, int8/.test(err.message))
    })

    it('an int8 asker gets vectors within 0.999 cosine', async () => {
      const int8 = await asker('int8')
      const out = (await int8.services.anycast.ask('embed a text into a vector', 'hello')).output as typeof answer
      assert.equal(out.model, 'test')
      out.vectors.forEach((v, i) => { assert.ok(cosine(v, answer.vectors[i]) > 0.999) })
    })

    it('on the wire: tensors for an asker that takes them, plain JSON for one that does not say', async () => {
      const node = nodes[1]
      async function invoke (vectors?: VectorEncoding): Promise<Response> {
        const stream = await node.dialProtocol(server.peerId, server.services.anycast.protocol)
        const pb = pbStream(stream, { maxDataLength: 8 * 1024 * 1024 })
        await pb.write({ kind: Request.Kind.INVOKE, id: new Uint8Array(16), deadlineMs: 10_000, capability: CAP.name, input: u8FromString('"x"'), model: '', keys: [], ...(vectors == null ? {} : { vectors }) } as Request, Request)
        const res = await pb.read<Response>(Response as any)
        await stream.close()
        return res
      }
      const older = await invoke()
      assert.equal(older.tensors.length, 0)
      assert.deepEqual(JSON.parse(u8ToString(older.output)), answer)
      const packed = await invoke(VectorEncoding.F32)
      assert.equal(packed.tensors.length, 2)
      const size = packed.tensors.reduce((n, t) => n + t.byteLength, packed.output.byteLength)
      assert.ok(size < older.output.byteLength / 2, `${size} bytes against ${older.output.byteLength}`)
      assert.deepEqual(unpackVectors(u8ToString(packed.output), packed.tensors, VectorEncoding.F32, 1e6), answer)
    })
  })
})
