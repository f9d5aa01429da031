/**
 * What a task is, as the submitter and workers compare it: its kind (tasks
 * of the same kind are interchangeable for a worker), its spec as the
 * executor sees it, and its JSON input and output as bytes.
 */
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { peerIdFromString } from '@libp2p/peer-id'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import * as C from './constants.js'
import type { TaskRecord } from './journal.js'
import type { TaskBody } from './pb/task.js'
import type { HistoryEntry, TaskEvent, TaskSpec } from './types.js'

/** Tasks with the same key are interchangeable for a worker */
export function specKey (r: { capability?: string, query?: string, requirements?: Record<string, string>, to?: string }): string {
  const req = r.requirements == null ? '' : JSON.stringify(Object.entries(r.requirements).sort())
  return `${r.capability ?? ''}\u0000${r.query ?? ''}\u0000${req}\u0000${r.to ?? ''}`
}

/** The kind of an announced or assigned task (`specKey` of its description) */
export function bodyKey (body: TaskBody): string {
  return specKey({
    capability: body.capability,
    query: body.query,
    requirements: body.requirements.size > 0 ? Object.fromEntries(body.requirements) : undefined,
    to: body.to != null ? uint8ArrayToString(body.to, 'base64') : undefined
  })
}

/** What the executor is asked whether it can run */
export function specOf (body: TaskBody): TaskSpec {
  const spec: TaskSpec = {}
  if (body.capability != null) {
    spec.capability = body.capability
  }
  if (body.query != null) {
    spec.query = body.query
  }
  if (body.requirements.size > 0) {
    spec.requirements = Object.fromEntries(body.requirements)
  }
  return spec
}

/** JSON bytes of a value (`undefined` as `null`); throws what `JSON.stringify` throws */
export function encodeJson (value: unknown): Uint8Array {
  return uint8ArrayFromString(JSON.stringify(value === undefined ? null : value))
}

/** The value of JSON bytes; throws a `SyntaxError` for bytes that are not JSON */
export function decodeJson (bytes: Uint8Array): unknown {
  return JSON.parse(uint8ArrayToString(bytes))
}

/** A task's description as workers see it; the input inline if `withPayload` and it fits (`INLINE_PAYLOAD_BYTES`) */
export function taskBody (record: TaskRecord, withPayload: boolean): TaskBody {
  const payload = record.payload ?? new Uint8Array(0)
  const body: TaskBody = {
    id: record.id,
    capability: record.capability,
    query: record.query,
    requirements: new Map(Object.entries(record.requirements ?? {})),
    deadline: BigInt(record.deadline),
    timeoutMs: record.timeoutMs,
    payloadSize: payload.byteLength,
    parent: record.parent,
    index: record.index ?? 0
  }
  if (withPayload && payload.byteLength <= C.INLINE_PAYLOAD_BYTES) {
    body.payload = payload
  }
  if (record.to != null) {
    body.to = peerIdFromString(record.to).toMultihash().bytes
  }
  if (record.traceparent != null) {
    body.traceparent = record.traceparent
  }
  return body
}

/** The event of a step in a task's life, from its record (`extra`: what the step adds) */
export function taskEvent (record: TaskRecord, type: TaskEvent['type'], extra: Partial<TaskEvent> = {}): Omit<TaskEvent, 'origin' | 'local' | 'at'> {
  return {
    type,
    taskId: record.id,
    parent: record.parent,
    state: record.state,
    attempt: record.attempts,
    worker: record.worker,
    ...extra
  }
}

/** Adds a step to a task's history (fields left undefined are left out) and dates the record by it */
export function pushHistory (record: TaskRecord, entry: HistoryEntry): void {
  if (entry.worker === undefined) {
    delete entry.worker
  }
  if (entry.reason === undefined) {
    delete entry.reason
  }
  record.history.push(entry)
  record.updatedAt = entry.at
}
