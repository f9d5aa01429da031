import assert from 'node:assert/strict'
import * as C from '../src/constants.js'
import { ANNOUNCE_DECODE_LIMITS, CONTROL_DECODE_LIMITS, EVENT_DECODE_LIMITS, MAX_EVENTS_PER_BATCH, RESULT_DECODE_LIMITS } from '../src/limits.js'
import { Announce, Control, EventBatch, ResultBatch } from '../src/pb/task.js'
import type { TaskBody } from '../src/pb/task.js'

/*
 * Every decoder of a wire message passes protons `limits` for its repeated and map fields, so a
 * frame with too many entries fails while decoding instead of becoming that many objects. Each
 * case: one entry past the limit is refused, the limit itself decodes.
 */

function body (requirements: number): TaskBody {
  return {
    id: 't',
    requirements: new Map(Array.from({ length: requirements }, (_, i) => [`k${i}`, 'v'])),
    deadline: 0n,
    timeoutMs: 0,
    payloadSize: 0,
    index: 0
  }
}

describe('task decoders refuse over-count frames', () => {
  it('Control: more task requirements than allowed', () => {
    const frame = (n: number): Uint8Array => Control.encode({ type: Control.Type.ASSIGN, taskId: 't', attempt: 1, leaseMs: 0, free: 0, task: body(n) })
    assert.equal(Control.decode(frame(C.MAX_REQUIREMENTS), { limits: CONTROL_DECODE_LIMITS }).task?.requirements.size, C.MAX_REQUIREMENTS)
    assert.throws(() => Control.decode(frame(C.MAX_REQUIREMENTS + 1), { limits: CONTROL_DECODE_LIMITS }), /max|length|limit/i)
  })

  it('Announce: more tasks than a batch holds, and too many requirements in one of them', () => {
    const announce = (tasks: number, requirements = 0): Uint8Array => Announce.encode({
      issuedAt: 1n,
      tasks: Array.from({ length: tasks }, () => ({ task: body(requirements), round: 0 }))
    })
    assert.equal(Announce.decode(announce(C.ANNOUNCE_BATCH_COUNT), { limits: ANNOUNCE_DECODE_LIMITS }).tasks.length, C.ANNOUNCE_BATCH_COUNT)
    assert.throws(() => Announce.decode(announce(C.ANNOUNCE_BATCH_COUNT + 1), { limits: ANNOUNCE_DECODE_LIMITS }))
    assert.throws(() => Announce.decode(announce(1, C.MAX_REQUIREMENTS + 1), { limits: ANNOUNCE_DECODE_LIMITS }))
  })

  it('ResultBatch: more results than a batch holds', () => {
    const batch = (n: number): Uint8Array => ResultBatch.encode({
      results: Array.from({ length: n }, (_, i) => ({ taskId: `t${i}`, attempt: 1, submitter: new Uint8Array(0), ok: true, spans: [] }))
    })
    assert.equal(ResultBatch.decode(batch(C.RESULT_BATCH_COUNT), { limits: RESULT_DECODE_LIMITS }).results.length, C.RESULT_BATCH_COUNT)
    assert.throws(() => ResultBatch.decode(batch(C.RESULT_BATCH_COUNT + 1), { limits: RESULT_DECODE_LIMITS }))
  })

  it('EventBatch: more events than a batch holds', () => {
    const batch = (n: number): Uint8Array => EventBatch.encode({
      events: Array.from({ length: n }, () => ({ type: 'x', at: 0n, seq: 0n }))
    })
    assert.equal(EventBatch.decode(batch(MAX_EVENTS_PER_BATCH), { limits: EVENT_DECODE_LIMITS }).events.length, MAX_EVENTS_PER_BATCH)
    assert.throws(() => EventBatch.decode(batch(MAX_EVENTS_PER_BATCH + 1), { limits: EVENT_DECODE_LIMITS }))
  })
})
