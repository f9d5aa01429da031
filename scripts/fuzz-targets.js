// The decoders of wire input that the fuzzer drives, and the fuzzing loop itself (used by
// scripts/fuzz.js and by the test in packages/node/test/fuzz.spec.ts). Each target decodes the
// bytes the way the node does when they arrive from a peer, with the same limits.
//
// A decoder passes when, for every input, it returns or throws an Error of a named kind, in
// bounded time. It fails on a TypeError, ReferenceError or RangeError other than protons' own
// "index out of range" (a sign of a reader walking off its data), on a non-Error throw, on a
// stack overflow, or when one input takes longer than `slowMs`.
import { generateKeyPair, publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { openRecord, sealRecord } from '../protocols/handshake/dist/src/envelope.js'
import { NoiseHandshakePayload } from '../protocols/handshake/dist/src/pb/payload.js'
import { TransportCipher } from '../protocols/handshake/dist/src/stream.js'
import { DEFAULT_MAX_OUTPUT_BYTES, LIMITS } from '../protocols/semantic-anycast/dist/src/constants.js'
import { CapabilityRecord, Request, Response, VectorEncoding } from '../protocols/semantic-anycast/dist/src/pb/anycast.js'
import { RESPONSE_LIMITS } from '../protocols/semantic-anycast/dist/src/invoke.js'
import { packVectors, unpackVectors } from '../protocols/semantic-anycast/dist/src/vectors.js'
import { acceptWireSpans, parseTraceparent } from '../protocols/telemetry/dist/src/trace-context.js'
import { FrameDecoder } from '../protocols/task/dist/src/channel.js'
import * as C from '../protocols/task/dist/src/constants.js'
import { resultDecodeLimits } from '../protocols/task/dist/src/limits.js'
import { Announce, Control, EventBatch, ResultBatch, SignedEnvelope } from '../protocols/task/dist/src/pb/task.js'

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
/** the spans an answering node returns for a request sent with TRACEPARENT */
const SPANS = [
  { spanId: 'a1b2c3d4e5f60718', parentId: '00f067aa0ba902b7', peerId: '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo', name: 'anycast.serve', startMs: 1_700_000_000_000, durationMs: 2.5, error: false, attributes: [{ key: 'aistack.capability', value: 'echo' }] },
  { spanId: 'b1b2c3d4e5f60718', parentId: 'a1b2c3d4e5f60718', peerId: '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo', name: 'capability.run', startMs: 1_700_000_000_001, durationMs: 1.25, error: true, attributes: [] }
]

/** Deterministic PRNG (mulberry32): the same seed gives the same inputs */
export function rng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function bytes (random, n) {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * 256)
  return out
}

const BIG_VARINTS = [
  Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f), // 2^32 - 1
  Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), // 2^64 - 1
  Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80), // never ends
  Uint8Array.of(0x80, 0x80, 0x80, 0x04) // 8 MiB
]

/** One mutation of `sample`: bit flips, byte changes, inserts, deletions, huge varints, splices */
export function mutate (random, sample, other) {
  let b = Uint8Array.from(sample)
  const ops = 1 + Math.floor(random() * 4)
  for (let k = 0; k < ops; k++) {
    const at = Math.floor(random() * (b.length + 1))
    switch (Math.floor(random() * 8)) {
      case 0: if (b.length > 0) b[Math.min(at, b.length - 1)] ^= 1 << Math.floor(random() * 8); break
      case 1: if (b.length > 0) b[Math.min(at, b.length - 1)] = Math.floor(random() * 256); break
      case 2: b = concat(b.subarray(0, at), bytes(random, 1 + Math.floor(random() * 16)), b.subarray(at)); break
      case 3: b = concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + Math.floor(random() * 16)))); break
      case 4: b = b.subarray(0, at); break
      case 5: b = concat(b.subarray(0, at), BIG_VARINTS[Math.floor(random() * BIG_VARINTS.length)], b.subarray(at)); break
      case 6: b = concat(b.subarray(0, at), other.subarray(Math.floor(random() * other.length))); break
      default: b = concat(b, b.subarray(at)); break // a repeated tail: repeated and duplicate fields
    }
  }
  return b
}

function concat (...parts) {
  const n = parts.reduce((s, p) => s + p.length, 0)
  const out = new Uint8Array(n)
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}

/** a length-prefixed stream of `frames` (unsigned varint lengths), as on /aistack/task/1.0.0 */
function framed (frames) {
  const parts = []
  for (const f of frames) {
    const len = []
    let n = f.length
    do { len.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0)); n = Math.floor(n / 128) } while (n > 0)
    parts.push(Uint8Array.from(len), f)
  }
  return concat(...parts)
}

/**
 * The targets: `name`, valid `samples` to mutate, and `decode(bytes)` (sync or async) as the
 * node runs it on input from a peer.
 */
export async function fuzzTargets () {
  const key = await generateKeyPair('Ed25519')
  const identityKey = publicKeyToProtobuf(key.publicKey)
  const random = rng(7)
  const body = { id: 'task-1', capability: 'echo', requirements: new Map([['gpu', 'yes'], ['region', 'eu']]), deadline: 1_900_000_000_000n, timeoutMs: 5000, payload: bytes(random, 40), payloadSize: 40, index: 0 }
  const cipher = new TransportCipher(new Uint8Array(32).fill(7))
  const sealed = []
  cipher.seal(bytes(random, 100), sealed)

  return [
    {
      name: 'handshake payload',
      samples: [
        NoiseHandshakePayload.encode({ identityKey, identitySig: bytes(random, 64), extensions: { webtransportCerthashes: [], streamMuxers: ['/yamux/1.0.0', '/mplex/6.7.0'] } }),
        NoiseHandshakePayload.encode({ identityKey, identitySig: bytes(random, 64) })
      ],
      // as PqNoise.verify: decode with limits, then the identity key
      decode: (b) => publicKeyFromProtobuf(NoiseHandshakePayload.decode(b, { limits: { extensions: { webtransportCerthashes: 16, streamMuxers: 16 } } }).identityKey)
    },
    {
      name: 'hybrid transport frame',
      samples: [concat(...sealed).subarray(2)],
      decode: (b) => new TransportCipher(new Uint8Array(32).fill(7)).open(b)
    },
    {
      name: 'signed envelope (openRecord)',
      samples: [await sealRecord(key, 'aistack-capability', bytes(random, 200)), await sealRecord(key, 'aistack-task', bytes(random, 20))],
      decode: async (b) => openRecord(b, 'aistack-capability')
    },
    {
      name: 'anycast Request',
      samples: [
        Request.encode({ kind: Request.Kind.INVOKE, id: bytes(random, 16), deadlineMs: 5000, capability: 'echo', input: bytes(random, 64), model: 'm', keys: [], traceparent: TRACEPARENT }),
        Request.encode({ kind: Request.Kind.GET_RECORDS, id: bytes(random, 16), keys: [bytes(random, 36), bytes(random, 36)] })
      ],
      // as the answering node: decode, then look at the traceparent
      decode: (b) => parseTraceparent(Request.decode(b, { limits: { keys: LIMITS.maxKeysPerRequest } }).traceparent)
    },
    {
      name: 'anycast Response',
      samples: [
        Response.encode({ id: bytes(random, 16), status: Response.Status.OK, output: bytes(random, 30), error: '', records: [bytes(random, 50), bytes(random, 70)], inflight: 1, capacity: 4 }),
        Response.encode({ id: bytes(random, 16), status: Response.Status.OK, output: bytes(random, 30), error: '', records: [], inflight: 1, capacity: 4, spans: SPANS })
      ],
      // as the asker: decode with the limits of sendRequest, then take the spans under its attempt
      decode: (b) => acceptWireSpans(Response.decode(b, { limits: RESPONSE_LIMITS }).spans, SPANS[0].parentId, SPANS[0].startMs)
    },
    {
      name: 'anycast Response with tensors',
      samples: [VectorEncoding.F32, VectorEncoding.INT8].map(encoding => {
        const packed = packVectors({ model: 'm', vectors: [Array.from({ length: 32 }, (_, i) => i / 64), Array.from({ length: 20 }, (_, i) => -i / 8)] }, encoding)
        return Response.encode({ id: bytes(random, 16), status: Response.Status.OK, output: new TextEncoder().encode(packed.json), error: '', records: [], inflight: 0, capacity: 0, tensors: packed.tensors })
      }),
      // as the asker: decode with the limits of sendRequest, then put the vectors back in the output
      decode: (b) => {
        const res = Response.decode(b, { limits: RESPONSE_LIMITS })
        return unpackVectors(new TextDecoder().decode(res.output), res.tensors, VectorEncoding.F32, DEFAULT_MAX_OUTPUT_BYTES / 2)
      }
    },
    {
      name: 'anycast CapabilityRecord',
      samples: [CapabilityRecord.encode({ network: 'aistack', name: 'echo', description: 'echoes', tags: ['a', 'b'], examples: ['x'], model: 'hash', dim: 8, vector: bytes(random, 8), scale: 0.5, attributes: { cost: 1, maxConcurrency: 2, region: 'eu', privacy: 'local' }, owner: 'o', seq: 3n, expiresAt: 9n, tombstone: false })],
      decode: (b) => CapabilityRecord.decode(b, { limits: { tags: LIMITS.maxTags, examples: LIMITS.maxExamples } })
    },
    {
      name: 'task Control',
      samples: [
        Control.encode({ type: Control.Type.ASSIGN, taskId: 'task-1', attempt: 1, task: body, leaseMs: 1000, free: 1 }),
        Control.encode({ type: Control.Type.PROGRESS, taskId: 'task-1', attempt: 2, progress: 0.5, message: 'half', record: bytes(random, 30) })
      ],
      decode: (b) => Control.decode(b)
    },
    {
      name: 'task SignedEnvelope',
      samples: [SignedEnvelope.encode({ publicKey: identityKey, payloadType: bytes(random, 4), payload: bytes(random, 60), signature: bytes(random, 64) })],
      decode: (b) => SignedEnvelope.decode(b)
    },
    {
      name: 'task Announce',
      samples: [Announce.encode({ tasks: [{ task: body, round: 1 }, { task: { ...body, id: 'task-2', traceparent: TRACEPARENT }, round: 0 }], issuedAt: 5n })],
      decode: (b) => Announce.decode(b, { limits: { tasks: C.ANNOUNCE_BATCH_COUNT } })
    },
    {
      name: 'task ResultBatch',
      samples: [ResultBatch.encode({ results: [{ taskId: 'task-1', attempt: 1, submitter: bytes(random, 38), ok: true, output: bytes(random, 20), spans: SPANS }, { taskId: 'task-2', attempt: 1, submitter: bytes(random, 38), ok: false, error: 'x', code: 'y', spans: [] }] })],
      // as the submitter: decode with its limits, then take the spans under the task's span
      decode: (b) => ResultBatch.decode(b, { limits: resultDecodeLimits(C.RESULT_BATCH_COUNT) }).results.map(r => acceptWireSpans(r.spans, SPANS[0].parentId, SPANS[0].startMs))
    },
    {
      name: 'task EventBatch',
      samples: [EventBatch.encode({ events: [{ type: 'task.created', taskId: 'task-1', at: 1n, seq: 2n, data: '{}' }] })],
      decode: (b) => EventBatch.decode(b, { limits: { events: 1024 } })
    },
    {
      name: 'task frame decoder',
      samples: [framed([Control.encode({ type: Control.Type.ACK, taskId: 't' }), bytes(random, 300)])],
      // the stream is cut into random chunks, as TCP may deliver it
      decode: (b) => {
        const d = new FrameDecoder(64 * 1024)
        let frames = 0
        for (let i = 0; i < b.length;) {
          const n = 1 + (b[i] % 97)
          frames += d.push(b.subarray(i, i + n)).length
          i += n
        }
        return frames
      }
    }
  ]
}

/** errors that say "bad input" cleanly */
function isClean (err) {
  if (!(err instanceof Error)) return false
  if (err instanceof TypeError || err instanceof ReferenceError || err instanceof SyntaxError) return false
  if (err instanceof RangeError) return /index out of range|offset|out of bounds|Invalid|length/i.test(err.message) && !/call stack/i.test(err.message)
  return true
}

/**
 * Runs `count` inputs through one target: a third random bytes (length skewed small, up to
 * `maxBytes`), the rest mutations of its samples. Returns counts, the slowest input in ms, the
 * heap high-water mark in MiB and up to 5 failures.
 */
export async function fuzzTarget (target, { count, seed, maxBytes = 4096, slowMs = 1000 }) {
  const random = rng(seed)
  const result = { name: target.name, count: 0, accepted: 0, rejected: 0, failures: 0, slowestMs: 0, maxHeapMiB: 0, examples: [] }
  const errorNames = new Map()
  for (let i = 0; i < count; i++) {
    let input
    if (random() < 1 / 3) {
      input = bytes(random, Math.floor(random() ** 3 * maxBytes))
    } else {
      const s = target.samples[Math.floor(random() * target.samples.length)]
      const o = target.samples[Math.floor(random() * target.samples.length)]
      input = mutate(random, s, o)
    }
    const t0 = performance.now()
    let failure
    try {
      const out = target.decode(input)
      if (out instanceof Promise) await out
      result.accepted++
    } catch (err) {
      if (isClean(err)) {
        result.rejected++
        errorNames.set(err.name, (errorNames.get(err.name) ?? 0) + 1)
      } else {
        failure = `${err?.name ?? typeof err}: ${err?.message ?? String(err)}`
      }
    }
    const ms = performance.now() - t0
    if (ms > result.slowestMs) result.slowestMs = ms
    if (failure == null && ms > slowMs) failure = `took ${ms.toFixed(0)} ms`
    if (failure != null) {
      result.failures++
      if (result.examples.length < 5) result.examples.push({ failure, input: Buffer.from(input).toString('hex').slice(0, 200) })
    }
    if ((i & 1023) === 0) {
      result.maxHeapMiB = Math.max(result.maxHeapMiB, process.memoryUsage().heapUsed / 2 ** 20)
    }
    result.count++
  }
  result.maxHeapMiB = Math.round(Math.max(result.maxHeapMiB, process.memoryUsage().heapUsed / 2 ** 20))
  result.slowestMs = Math.round(result.slowestMs * 10) / 10
  result.errors = Object.fromEntries(errorNames)
  return result
}
