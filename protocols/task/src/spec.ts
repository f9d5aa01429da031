/**
 * What a task is, as the submitter and workers compare it: its kind (tasks
 * of the same kind are interchangeable for a worker), its spec as the
 * executor sees it, and its JSON input and output as bytes.
 */
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import type { TaskBody } from './pb/task.js'
import type { TaskSpec } from './types.js'

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
