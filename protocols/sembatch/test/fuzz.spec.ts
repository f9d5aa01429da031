import assert from 'node:assert/strict'
import {
  Compression, FrameSplitter, Kind, LIMITS, MalformedFrameError, OversizeError, QoS, decodeFrame, encodeFrame, withPrefix
} from '../src/index.js'
import { pair, prng, str, text, waitFor } from './helpers.js'
import type { Frame } from '../src/index.js'

const KINDS = [Kind.REQUEST, Kind.RESPONSE, Kind.PIECE, Kind.END, Kind.ERROR]
const CLASSES = [QoS.REALTIME, QoS.INTERACTIVE, QoS.BULK]

function randomFrame (rand: () => number, from: 'opener' | 'acceptor' = rand() < 0.5 ? 'opener' : 'acceptor'): Frame {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]
  const batches = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => ({
    key: rand() < 0.05 ? 'x'.repeat(1 + Math.floor(rand() * 300)) : pick(['embed', 'chat/llama3', 'k']),
    qos: pick(CLASSES),
    compression: Compression.NONE,
    rawBytes: 0,
    messages: Array.from({ length: 1 + Math.floor(rand() * 20) }, (_, i) => ({
      id: i + 1,
      kind: from === 'opener' ? Kind.REQUEST : pick(KINDS.slice(1)),
      // similar payloads, so some batches get compressed
      payload: rand() < 0.5 ? text(`{"text":"message number ${i} of a batch"}`.repeat(1 + Math.floor(rand() * 8))) : new Uint8Array(Math.floor(rand() * 64)).map(() => rand() * 256),
      error: rand() < 0.05 ? 'e'.repeat(Math.floor(rand() * 1200)) : undefined
    }))
  }))
  const credit = from === 'acceptor' && rand() < 0.3 ? { grant: Math.floor(rand() * 100_000), grantBytes: Math.floor(rand() * 1e6), queueDepth: 3, serviceRate: 100, lanePort: 0 } : undefined
  return { batches, credit }
}

function mutate (bytes: Uint8Array, rand: () => number): Uint8Array {
  const out = Uint8Array.from(bytes)
  switch (Math.floor(rand() * 4)) {
    case 0: // flip bytes
      for (let i = 0; i < 1 + rand() * 8; i++) out[Math.floor(rand() * out.length)] = Math.floor(rand() * 256)
      return out
    case 1: // truncate
      return out.subarray(0, Math.floor(rand() * out.length))
    case 2: { // splice in random bytes
      const at = Math.floor(rand() * out.length)
      const junk = new Uint8Array(1 + Math.floor(rand() * 16)).map(() => rand() * 256)
      return Uint8Array.from([...out.subarray(0, at), ...junk, ...out.subarray(at)])
    }
    default: // random bytes
      return new Uint8Array(Math.floor(rand() * 256)).map(() => rand() * 256)
  }
}

describe('sembatch frame fuzzing', () => {
  it('decodes 2,000 random and mutated frames with only its own errors (seeded)', () => {
    const rand = prng(0x5eb)
    const outcomes = { ok: 0, malformed: 0, oversize: 0 }
    for (let i = 0; i < 2000; i++) {
      const valid = encodeFrame(randomFrame(rand), rand() < 0.5 ? 512 : Infinity)
      const bytes = i % 4 === 0 ? valid : mutate(valid, rand)
      for (const from of ['opener', 'acceptor'] as const) {
        try {
          decodeFrame(bytes, from)
          outcomes.ok++
        } catch (err) {
          if (err instanceof MalformedFrameError) outcomes.malformed++
          else if (err instanceof OversizeError) outcomes.oversize++
          else assert.fail(`frame ${i} (${from}) threw ${String(err)}`)
        }
      }
    }
    // every path was taken
    assert.ok(outcomes.ok > 100, JSON.stringify(outcomes))
    assert.ok(outcomes.malformed > 100, JSON.stringify(outcomes))
    assert.ok(outcomes.oversize > 10, JSON.stringify(outcomes))
  })

  it('splits random chunkings of a frame stream the same way, and refuses bad prefixes', () => {
    const rand = prng(7)
    const frames = Array.from({ length: 50 }, () => encodeFrame(randomFrame(rand)))
    const wire = Uint8Array.from(frames.flatMap(f => [...withPrefix(f)]))
    const splitter = new FrameSplitter()
    const got: Uint8Array[] = []
    for (let at = 0; at < wire.length;) {
      const n = 1 + Math.floor(rand() * 300)
      got.push(...splitter.push(wire.subarray(at, at + n)).map(f => Uint8Array.from(f)))
      at += n
    }
    assert.equal(got.length, frames.length)
    got.forEach((f, i) => { assert.deepEqual(f, frames[i]) })
    assert.equal(splitter.pending, 0)
    assert.throws(() => new FrameSplitter().push(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01])), OversizeError)
    assert.throws(() => new FrameSplitter(100).push(Uint8Array.from([101])), OversizeError)
  })

  it('refuses a zstd bomb: a small compressed batch that claims or expands past the limit', () => {
    const big = { key: 'k', qos: QoS.INTERACTIVE, compression: Compression.NONE, rawBytes: 0, messages: [{ id: 1, kind: Kind.REQUEST, payload: new Uint8Array(5 * 1024 * 1024) }] }
    const bytes = encodeFrame({ batches: [big] }, 1)
    assert.ok(bytes.byteLength < 10_000, `${bytes.byteLength}`)
    assert.throws(() => decodeFrame(bytes, 'opener'), OversizeError)
  })

  it('refuses a frame of more empty messages in one batch than a batch holds, while decoding', () => {
    // a batch (field 1 of Frame) of key "k" and N empty messages (field 3, length 0: two bytes
    // each): 4 MiB of them would be two million objects if the decoder did not stop at the limit
    const batchOf = (n: number): Uint8Array => {
      const inner = new Uint8Array(3 + 2 * n)
      inner.set([0x0a, 0x01, 0x6b])
      for (let i = 0; i < n; i++) inner.set([0x1a, 0x00], 3 + 2 * i)
      return Uint8Array.from([...withLength(0x0a, inner)])
    }
    const withLength = (tag: number, bytes: Uint8Array): Uint8Array => {
      const len: number[] = []
      let n = bytes.byteLength
      while (n >= 0x80) { len.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
      len.push(n)
      return Uint8Array.from([tag, ...len, ...bytes])
    }
    const err = (() => { try { decodeFrame(batchOf(LIMITS.maxMessagesPerBatch + 1), 'opener') } catch (e) { return e } })()
    assert.ok(err instanceof MalformedFrameError, String(err))
    assert.match(String(err), /undecodable frame/)
    // at the limit the frame decodes (and is refused for its empty key-less messages only later, if at all)
    const atLimit = (() => { try { return decodeFrame(batchOf(LIMITS.maxMessagesPerBatch), 'opener') } catch (e) { return e } })()
    assert.ok(!(atLimit instanceof MalformedFrameError && /undecodable/.test(String(atLimit))), String(atLimit))
  })

  it('a node fed 200 mutated frames on fresh streams keeps serving', async function () {
    const [a, b] = await pair()
    try {
      b.services.sembatch.handle('embed', p => p)
      b.services.sembatch.handle('chat/llama3', p => p)
      const rand = prng(99)
      for (let i = 0; i < 200; i++) {
        const s = await a.dialProtocol(b.peerId, b.services.sembatch.protocol)
        const bytes = mutate(encodeFrame(randomFrame(rand)), rand)
        s.send(withPrefix(bytes))
        s.send(mutate(withPrefix(encodeFrame(randomFrame(rand))), rand))
        // close our side; the acceptor resets or closes its side
        await s.close().catch(() => {})
        await waitFor(() => s.status !== 'open', 20_000, 'the stream to end')
      }
      assert.equal(str(await a.services.sembatch.send(b.peerId, 'embed', text('alive'))), 'alive')
    } finally {
      await a.stop()
      await b.stop()
    }
  })
})
