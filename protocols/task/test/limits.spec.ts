import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import * as C from '../src/constants.js'
import { FrameDecoder } from '../src/channel.js'
import { HeldResults } from '../src/held-results.js'
import { attemptTimeout, bodyWithinLimits, controlWithinLimits, eventWithinLimits, resultWithinLimits, wireLease } from '../src/limits.js'
import { Control } from '../src/pb/task.js'
import { RoundTrips } from '../src/round-trips.js'
import type { TaskBody } from '../src/pb/task.js'

function body (over: Partial<TaskBody> = {}): TaskBody {
  return { id: 't', requirements: new Map(), deadline: 0n, timeoutMs: 0, payloadSize: 0, index: 0, ...over }
}

describe('wire limits', () => {
  it('bounds every string and bytes field of a task from the wire', () => {
    assert.ok(bodyWithinLimits(body(), 10))
    assert.ok(!bodyWithinLimits(body({ id: '' }), 10))
    assert.ok(!bodyWithinLimits(body({ id: 'x'.repeat(C.MAX_TASK_ID_LENGTH + 1) }), 10))
    assert.ok(bodyWithinLimits(body({ id: 'x'.repeat(C.MAX_TASK_ID_LENGTH) }), 10))
    assert.ok(!bodyWithinLimits(body({ capability: 'c'.repeat(C.MAX_CAPABILITY_LENGTH + 1) }), 10))
    assert.ok(!bodyWithinLimits(body({ query: 'q'.repeat(C.MAX_QUERY_LENGTH + 1) }), 10))
    assert.ok(!bodyWithinLimits(body({ parent: 'p'.repeat(C.MAX_TASK_ID_LENGTH + 1) }), 10))
    assert.ok(!bodyWithinLimits(body({ requirements: new Map([['k', 'v'.repeat(C.MAX_REQUIREMENT_LENGTH + 1)]]) }), 10))
    assert.ok(!bodyWithinLimits(body({ requirements: new Map(Array.from({ length: C.MAX_REQUIREMENTS + 1 }, (_, i) => [`k${i}`, 'v'])) }), 10))
    assert.ok(!bodyWithinLimits(body({ to: new Uint8Array(C.MAX_PEER_ID_BYTES + 1) }), 10))
    assert.ok(!bodyWithinLimits(body({ payload: new Uint8Array(11) }), 10))
    const msg = (over: Partial<Control>): Control => ({ type: Control.Type.ASSIGN, taskId: 't', attempt: 1, leaseMs: 0, free: 0, ...over })
    assert.ok(controlWithinLimits(msg({ task: body() })))
    assert.ok(!controlWithinLimits(msg({ taskId: 'x'.repeat(60_000) })))
    assert.ok(!controlWithinLimits(msg({ ref: 'x'.repeat(C.MAX_TASK_ID_LENGTH + 1) })))
    assert.ok(!controlWithinLimits(msg({ reason: 'x'.repeat(C.MAX_TEXT_LENGTH + 1) })))
    assert.ok(!controlWithinLimits(msg({ message: 'x'.repeat(C.MAX_TEXT_LENGTH + 1) })))
    assert.ok(!controlWithinLimits(msg({ task: body({ payload: new Uint8Array(C.INLINE_PAYLOAD_BYTES + 1) }) })))
    // a frame whose task has more requirements than allowed does not even decode
    const many = Control.encode(msg({ task: body({ requirements: new Map(Array.from({ length: 100 }, (_, i) => [`k${i}`, 'v'])) }) }))
    assert.throws(() => Control.decode(many, { limits: { task: { requirements: C.MAX_REQUIREMENTS } } }))
    const result = { taskId: 't', attempt: 1, submitter: new Uint8Array(38), ok: false, spans: [] }
    assert.ok(resultWithinLimits(result, 10))
    assert.ok(!resultWithinLimits({ ...result, taskId: 'x'.repeat(200) }, 10))
    assert.ok(!resultWithinLimits({ ...result, code: 'x'.repeat(C.MAX_CODE_LENGTH + 1) }, 10))
    assert.ok(!resultWithinLimits({ ...result, error: 'x'.repeat(C.MAX_TEXT_LENGTH + 1) }, 10))
    assert.ok(!resultWithinLimits({ ...result, output: new Uint8Array(11) }, 10))
    assert.ok(eventWithinLimits({ type: 'task.created', at: 1n, seq: 1n }))
    assert.ok(!eventWithinLimits({ type: 'task.created', at: 1n, seq: 1n, data: 'x'.repeat(C.MAX_EVENT_DATA_LENGTH + 1) }))
  })

  it('clamps every time taken from the wire before it reaches a timer', () => {
    const now = 1_000_000
    assert.equal(attemptTimeout(0, 0n, 5000, now), 5000)
    assert.equal(attemptTimeout(200, 0n, 5000, now), 200)
    // a deadline of 2^64-1 is no deadline worth a timer past the longest timeout
    assert.equal(attemptTimeout(2 ** 32 - 1, 2n ** 64n - 1n, 5000, now), C.MAX_TASK_TIMEOUT_MS)
    assert.equal(attemptTimeout(0, 2n ** 64n - 1n, 5000, now), 5000)
    assert.ok(C.MAX_TASK_TIMEOUT_MS < 2 ** 31 - 1)
    assert.equal(attemptTimeout(5000, BigInt(now + 300), 60_000, now), 300)
    assert.equal(attemptTimeout(5000, BigInt(now - 300), 60_000, now), 1)
    assert.equal(wireLease(0, 30_000), 30_000)
    assert.equal(wireLease(1, 30_000), C.MIN_LEASE_MS)
    assert.equal(wireLease(2 ** 32 - 1, 30_000), C.MAX_LEASE_MS)
  })
})

describe('frame decoder with large frames', () => {
  it('reassembles a frame of 1 MiB sent in 64 KiB chunks, and the frames around it', () => {
    const big = new Uint8Array(1024 * 1024).map((_, i) => i % 251)
    const wire = Uint8Array.from([1, 7, 0x80, 0x80, 0x40, ...big, 2, 8, 9])
    const d = new FrameDecoder(2 * 1024 * 1024)
    const frames: Uint8Array[] = []
    for (let at = 0; at < wire.byteLength; at += 64 * 1024) {
      frames.push(...d.push(wire.subarray(at, at + 64 * 1024)))
    }
    assert.equal(frames.length, 3)
    assert.deepEqual(frames[0], Uint8Array.from([7]))
    assert.deepEqual(frames[1], big)
    assert.deepEqual(frames[2], Uint8Array.from([8, 9]))
  })
})

describe('round trips to workers', () => {
  it('smooths the measured round trip and allows for it, within bounds, before a lease expires', () => {
    const rt = new RoundTrips(2)
    assert.equal(rt.grace('w'), C.INITIAL_LEASE_GRACE_MS)
    rt.sample('w', 400)
    assert.equal(rt.srtt('w'), 400)
    // srtt + 4·rttvar = 400 + 4·200
    assert.equal(rt.grace('w'), 1200)
    for (let i = 0; i < 50; i++) {
      rt.sample('w', 2)
    }
    assert.equal(rt.grace('w'), C.MIN_LEASE_GRACE_MS)
    rt.sample('slow', 60_000)
    assert.equal(rt.grace('slow'), C.MAX_LEASE_GRACE_MS)
    rt.sample('third', 1)
    // at most `max` workers remembered, the oldest forgotten first
    assert.equal(rt.srtt('w'), undefined)
    rt.sample('x', Number.NaN)
    assert.equal(rt.srtt('x'), undefined)
  })
})

describe('held results', () => {
  it('counts what it holds per submitter and in all, and has no room past the limits', async () => {
    const [a, b] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')]).then(keys => keys.map(k => peerIdFromPrivateKey(k)))
    const held = new HeldResults({ perSubmitter: 2, bytesPerSubmitter: 10_000, total: 3, bytesTotal: 1_000_000 })
    const entry = (submitter: typeof a, taskId: string, bytes = 0): any => ({ submitter, since: 0, lastSent: 0, result: { taskId, attempt: 1, submitter: new Uint8Array(0), ok: true, output: new Uint8Array(bytes) } })
    held.set(`${a.toString()}/1`, entry(a, '1'))
    assert.ok(held.hasRoom(a.toString()))
    held.set(`${a.toString()}/2`, entry(a, '2'))
    assert.ok(!held.hasRoom(a.toString()))
    assert.ok(held.hasRoom(b.toString()))
    held.set(`${b.toString()}/1`, entry(b, '1'))
    // three in all
    assert.ok(!held.hasRoom(b.toString()))
    // the same key again replaces, not adds
    held.set(`${b.toString()}/1`, entry(b, '1'))
    assert.equal(held.size, 3)
    assert.equal(held.countFor(b.toString()), 1)
    held.delete(`${a.toString()}/1`)
    assert.ok(held.hasRoom(a.toString()))
    held.set(`${a.toString()}/3`, entry(a, '3', 20_000))
    assert.equal(held.countFor(a.toString()), 2)
    held.delete(`${a.toString()}/2`)
    // one result of 20 kB is past the 10 kB a submitter may have held
    assert.ok(!held.hasRoom(a.toString()))
    held.clear()
    assert.equal(held.size, 0)
    assert.equal(held.byteSize, 0)
  })
})
