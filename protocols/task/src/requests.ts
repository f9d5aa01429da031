/**
 * A submission checked against the limits (docs/security.md, "Task
 * protocol"), and a task as `get()` and `list()` show it.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import * as C from './constants.js'
import { InvalidTaskError, PayloadTooLargeError } from './errors.js'
import { encodeJson } from './spec.js'
import type { TaskRecord } from './journal.js'
import type { SubmitRequest, TaskInfo } from './types.js'
import type { PeerId } from '@libp2p/interface'

/** Resolves a query to a capability name and/or a peer (e.g. with semantic anycast) */
export type ResolveQuery = (query: string, options: { signal?: AbortSignal }) => Promise<{ capability?: string, peer?: PeerId | string } | undefined>

/** What a valid submission asks for: the capability and peer once the query is resolved, and the inputs as JSON bytes */
export interface ValidRequest {
  capability?: string
  query?: string
  /** a peer id string */
  to?: string
  /** one JSON-encoded input per task (one for a plain task) */
  payloads: Uint8Array[]
}

/**
 * Checks a submission and resolves its query (with `resolveQuery`, when it
 * names neither a capability nor a peer). Throws `InvalidTaskError` for a
 * request outside the limits, `PayloadTooLargeError` for an input over
 * `maxPayloadBytes` as JSON.
 */
export async function validateRequest (req: SubmitRequest, options: { maxPayloadBytes: number, resolveQuery?: ResolveQuery }): Promise<ValidRequest> {
  if (req == null || typeof req !== 'object') {
    throw new InvalidTaskError('a task request must be an object')
  }
  let { capability, query } = req
  if (capability != null && (typeof capability !== 'string' || capability.length === 0 || capability.length > C.MAX_CAPABILITY_LENGTH)) {
    throw new InvalidTaskError(`capability must be a non-empty string of at most ${C.MAX_CAPABILITY_LENGTH} characters`)
  }
  if (query != null && (typeof query !== 'string' || query.length === 0 || query.length > C.MAX_QUERY_LENGTH)) {
    throw new InvalidTaskError(`query must be a non-empty string of at most ${C.MAX_QUERY_LENGTH} characters`)
  }
  if (capability == null && query == null) {
    throw new InvalidTaskError('a task needs a capability or a query')
  }
  if ((req.input !== undefined) === (req.inputs != null)) {
    throw new InvalidTaskError('give exactly one of input or inputs')
  }
  if (req.inputs != null && (!Array.isArray(req.inputs) || req.inputs.length > C.MAX_MAP_INPUTS)) {
    throw new InvalidTaskError(`inputs must be an array of at most ${C.MAX_MAP_INPUTS} items`)
  }
  for (const [name, value, min, max] of [
    ['maxAttempts', req.maxAttempts, 1, 100],
    ['leaseMs', req.leaseMs, C.MIN_LEASE_MS, C.MAX_LEASE_MS],
    ['deadlineMs', req.deadlineMs, 1, C.MAX_DEADLINE_MS],
    ['timeoutMs', req.timeoutMs, 1, C.MAX_TASK_TIMEOUT_MS]
  ] as const) {
    if (value != null && (!Number.isInteger(value) || value < min || value > max)) {
      throw new InvalidTaskError(`${name} must be an integer between ${min} and ${max}`)
    }
  }
  if (req.requirements != null && (typeof req.requirements !== 'object' || Object.values(req.requirements).some(v => typeof v !== 'string'))) {
    throw new InvalidTaskError('requirements must map names to strings')
  }
  if (req.requirements != null && (Object.keys(req.requirements).length > C.MAX_REQUIREMENTS ||
    Object.entries(req.requirements).some(([k, v]) => k.length > C.MAX_REQUIREMENT_LENGTH || v.length > C.MAX_REQUIREMENT_LENGTH))) {
    throw new InvalidTaskError(`requirements may have at most ${C.MAX_REQUIREMENTS} entries, names and values of at most ${C.MAX_REQUIREMENT_LENGTH} characters`)
  }
  let to: string | undefined
  if (req.to != null) {
    try {
      to = typeof req.to === 'string' ? peerIdFromString(req.to).toString() : req.to.toString()
    } catch {
      throw new InvalidTaskError('to must be a peer id')
    }
  }
  if (query != null && capability == null && to == null && options.resolveQuery != null) {
    const resolved = await options.resolveQuery(query, { signal: AbortSignal.timeout(30_000) })
    if (resolved?.capability != null) {
      capability = resolved.capability
    }
    if (resolved?.peer != null) {
      to = resolved.peer.toString()
    }
  }
  const inputs = req.inputs ?? [req.input]
  const payloads = inputs.map(input => {
    let payload: Uint8Array
    try {
      payload = encodeJson(input)
    } catch (err: any) {
      throw new InvalidTaskError(`input is not JSON-serialisable: ${err.message}`)
    }
    if (payload.byteLength > options.maxPayloadBytes) {
      throw new PayloadTooLargeError(`input of ${payload.byteLength} bytes exceeds the limit of ${options.maxPayloadBytes}`)
    }
    return payload
  })
  return { capability, query, to, payloads }
}

/** A copy of what the submitter knows of a task, without its input */
export function taskInfo (record: TaskRecord): TaskInfo {
  const info: TaskInfo = {
    id: record.id,
    state: record.state,
    attempts: record.attempts,
    maxAttempts: record.maxAttempts,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    history: record.history.map(h => ({ ...h }))
  }
  const optional = {
    capability: record.capability,
    query: record.query,
    to: record.to,
    parent: record.parent,
    index: record.index,
    children: record.children,
    worker: record.worker,
    result: record.result,
    error: record.error,
    deadline: record.deadline > 0 ? record.deadline : undefined,
    progress: record.progress,
    traceId: record.traceparent?.split('-')[1]
  }
  for (const [k, v] of Object.entries(optional)) {
    if (v !== undefined) {
      (info as any)[k] = v
    }
  }
  return info
}
