/**
 * Limits on what a peer sends: every string and bytes field of the task
 * protocol's messages has a bound, checked when the message arrives, and
 * every time taken from the wire is clamped before it reaches a timer.
 * A message over a limit is dropped (counted as `oversize`).
 */
import * as C from './constants.js'
import type { Control, Event as EventPb, Result, TaskBody } from './pb/task.js'

/** Decoder limits of the repeated and map fields inside a `Control` frame */
export const CONTROL_DECODE_LIMITS = { task: { requirements: C.MAX_REQUIREMENTS } }

/** Decoder limits of a `ResultBatch` of at most `results` results */
export function resultDecodeLimits (results: number): { results: number, results$: { spans: number, spans$: { attributes: number } } } {
  return { results, results$: { spans: C.MAX_RESULT_SPANS, spans$: { attributes: C.MAX_SPAN_ATTRIBUTES } } }
}

/** A task's traceparent if it is short enough to be looked at (the tracer checks its format) */
export function wireTraceparent (value: string | undefined): string | undefined {
  return value != null && value !== '' && value.length <= C.MAX_TRACEPARENT_LENGTH ? value : undefined
}

/** Decoder limits of an `Announce` batch */
export const ANNOUNCE_DECODE_LIMITS = { tasks: C.ANNOUNCE_BATCH_COUNT, tasks$: { task: { requirements: C.MAX_REQUIREMENTS } } }

/** Decoder limits of a `ResultBatch` */
export const RESULT_DECODE_LIMITS = resultDecodeLimits(C.RESULT_BATCH_COUNT)

/** Events in one signed `EventBatch` at most */
export const MAX_EVENTS_PER_BATCH = 1024

/** Decoder limits of an `EventBatch` */
export const EVENT_DECODE_LIMITS = { events: MAX_EVENTS_PER_BATCH }

function within (s: string | undefined, max: number): boolean {
  return s == null || s.length <= max
}

/** A task id: non-empty, at most `MAX_TASK_ID_LENGTH` characters */
export function isTaskId (id: string): boolean {
  return id.length > 0 && id.length <= C.MAX_TASK_ID_LENGTH
}

/** Whether a task's description from the wire is within the limits (`maxPayloadBytes`: the largest inline input) */
export function bodyWithinLimits (body: TaskBody, maxPayloadBytes: number): boolean {
  if (!isTaskId(body.id) || !within(body.capability, C.MAX_CAPABILITY_LENGTH) || !within(body.query, C.MAX_QUERY_LENGTH) ||
    !within(body.parent, C.MAX_TASK_ID_LENGTH)) {
    return false
  }
  if (body.requirements.size > C.MAX_REQUIREMENTS) {
    return false
  }
  for (const [k, v] of body.requirements) {
    if (k.length > C.MAX_REQUIREMENT_LENGTH || v.length > C.MAX_REQUIREMENT_LENGTH) {
      return false
    }
  }
  if (body.to != null && body.to.byteLength > C.MAX_PEER_ID_BYTES) {
    return false
  }
  return body.payload == null || body.payload.byteLength <= maxPayloadBytes
}

/**
 * Whether a control frame is within the limits: its ids, texts and task
 * (records and fetched inputs are bounded by the frame size, and checked
 * where they are opened or used)
 */
export function controlWithinLimits (msg: Control): boolean {
  if (msg.taskId.length > C.MAX_TASK_ID_LENGTH || !within(msg.ref, C.MAX_TASK_ID_LENGTH) ||
    !within(msg.message, C.MAX_TEXT_LENGTH) || !within(msg.reason, C.MAX_TEXT_LENGTH)) {
    return false
  }
  return msg.task == null || bodyWithinLimits(msg.task, C.INLINE_PAYLOAD_BYTES)
}

/** Whether one result of a signed batch is within the limits (`maxOutputBytes`: the largest output) */
export function resultWithinLimits (result: Result, maxOutputBytes: number): boolean {
  return isTaskId(result.taskId) && result.submitter.byteLength <= C.MAX_PEER_ID_BYTES &&
    within(result.error, C.MAX_TEXT_LENGTH) && within(result.code, C.MAX_CODE_LENGTH) &&
    (result.output == null || result.output.byteLength <= maxOutputBytes)
}

/** Whether one event of a signed batch is within the limits */
export function eventWithinLimits (event: EventPb): boolean {
  return event.type.length <= 32 && within(event.taskId, C.MAX_TASK_ID_LENGTH) && within(event.data, C.MAX_EVENT_DATA_LENGTH)
}

/** `value` as an integer in [min, max]; `fallback` when it is not a finite number */
export function clamp (value: number, min: number, max: number, fallback = min): number {
  if (!Number.isFinite(value)) {
    return fallback
  }
  return Math.min(max, Math.max(min, Math.floor(value)))
}

/**
 * The time an attempt may run, from what the ASSIGN says: its timeout (or
 * `defaultMs`), never past its deadline, within [1 ms, MAX_TASK_TIMEOUT_MS],
 * so that no value from the wire overflows a timer (Node.js fires timers
 * over 2^31-1 ms after 1 ms)
 */
export function attemptTimeout (timeoutMs: number, deadline: bigint, defaultMs: number, now = Date.now()): number {
  let ms = timeoutMs > 0 ? timeoutMs : defaultMs
  const end = Number(deadline)
  if (end > 0) {
    ms = Math.min(ms, end - now)
  }
  return clamp(ms, 1, C.MAX_TASK_TIMEOUT_MS, 1)
}

/** The lease an ASSIGN grants, within [MIN_LEASE_MS, MAX_LEASE_MS] (`defaultMs` for 0) */
export function wireLease (leaseMs: number, defaultMs: number): number {
  return clamp(leaseMs > 0 ? leaseMs : defaultMs, C.MIN_LEASE_MS, C.MAX_LEASE_MS)
}
