import { createHash } from 'node:crypto'
import { Key } from 'interface-datastore'
import type { Datastore } from 'interface-datastore'

/**
 * `Idempotency-Key` for `POST /v1/tasks` (after the IETF draft "The Idempotency-Key HTTP Header
 * Field", draft-ietf-httpapi-idempotency-key-header, and JetStream's `Nats-Msg-Id`): a client
 * that retries a submission with the same key within the window gets the task the first one
 * created instead of a second task.
 *
 * The key → task id mapping is kept in memory and in the node's datastore under
 * `/aistack/api/idempotency/<sha256 of the key>`, written as soon as the task queue has accepted
 * the task and before the answer is sent, so a retry after the node was killed and restarted
 * finds it. Entries expire after the window; at most `maxKeys` are kept (the oldest go first).
 */

/** Default window in which a repeated key returns the first task, in ms (2 minutes) */
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 2 * 60_000
/** Default largest number of keys remembered */
export const DEFAULT_IDEMPOTENCY_MAX_KEYS = 10_000
/** Longest key accepted, in characters */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 256

const PREFIX = '/aistack/api/idempotency'

/** What a key maps to */
export interface IdempotencyEntry {
  taskId: string
  /** When the task was created, ms since the epoch */
  at: number
  /** sha256 of the request body in canonical form: a reused key with another body is refused */
  fingerprint: string
}

export interface IdempotencyInit {
  datastore: Datastore
  windowMs?: number
  maxKeys?: number
  /** Clock, ms since the epoch (tests) */
  now?: () => number
}

/** A key that is not 1-256 visible ASCII characters */
export class BadIdempotencyKeyError extends Error {
  static override name = 'BadIdempotencyKeyError'
  override name = 'BadIdempotencyKeyError'
}

/** A key whose first request is still being answered */
export class IdempotencyKeyInUseError extends Error {
  static override name = 'IdempotencyKeyInUseError'
  override name = 'IdempotencyKeyInUseError'
}

/** A key used before with another request body */
export class IdempotencyKeyMismatchError extends Error {
  static override name = 'IdempotencyKeyMismatchError'
  override name = 'IdempotencyKeyMismatchError'
}

/** Checks a header value; returns the key or throws BadIdempotencyKeyError */
export function parseIdempotencyKey (value: string | string[] | undefined): string | undefined {
  if (value == null) return undefined
  if (Array.isArray(value)) throw new BadIdempotencyKeyError('give one Idempotency-Key header')
  if (value.length === 0 || value.length > MAX_IDEMPOTENCY_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(value)) {
    throw new BadIdempotencyKeyError(`Idempotency-Key must be 1-${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters`)
  }
  return value
}

/** JSON text with object keys sorted, so that two bodies equal as values hash the same */
export function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value != null && typeof value === 'object') {
    const o = value as Record<string, unknown>
    return `{${Object.keys(o).sort().filter(k => o[k] !== undefined).map(k => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

export function fingerprintOf (body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex')
}

function digest (key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

/** The key → task map, in memory and in the datastore; see the module comment. */
export class IdempotencyStore {
  readonly windowMs: number
  readonly maxKeys: number
  private readonly datastore: Datastore
  private readonly now: () => number
  /** by digest of the key, oldest first */
  private readonly entries = new Map<string, IdempotencyEntry>()
  private readonly pending = new Set<string>()

  constructor (init: IdempotencyInit) {
    this.datastore = init.datastore
    this.windowMs = init.windowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS
    this.maxKeys = init.maxKeys ?? DEFAULT_IDEMPOTENCY_MAX_KEYS
    this.now = init.now ?? Date.now
  }

  /** Loads the unexpired entries of earlier runs and deletes the expired ones. */
  async load (): Promise<void> {
    const found: Array<[string, IdempotencyEntry]> = []
    const expired: Key[] = []
    const oldest = this.now() - this.windowMs
    for await (const { key, value } of this.datastore.query({ prefix: PREFIX })) {
      let entry: IdempotencyEntry | undefined
      try {
        const v = JSON.parse(new TextDecoder().decode(value))
        if (typeof v?.taskId === 'string' && typeof v?.at === 'number' && typeof v?.fingerprint === 'string') entry = v
      } catch {}
      if (entry == null || entry.at < oldest) expired.push(key)
      else found.push([key.baseNamespace(), entry])
    }
    found.sort((a, b) => a[1].at - b[1].at)
    for (const [d, e] of found) this.entries.set(d, e)
    await Promise.all(expired.map(async k => { await Promise.resolve(this.datastore.delete(k)).catch(() => {}) }))
    await this.trim()
  }

  /**
   * The task a key already names, or undefined when the key is new; a new key is then held
   * until `commit` or `release`. Throws IdempotencyKeyInUseError while the first request with
   * the key runs, IdempotencyKeyMismatchError when it came with another body.
   */
  async begin (key: string, fingerprint: string): Promise<IdempotencyEntry | undefined> {
    await this.trim()
    const d = digest(key)
    const known = this.entries.get(d)
    if (known != null) {
      if (known.fingerprint !== fingerprint) throw new IdempotencyKeyMismatchError('this Idempotency-Key was used with another request body; use a new key for a new task')
      return known
    }
    if (this.pending.has(d)) throw new IdempotencyKeyInUseError('a request with this Idempotency-Key is still being answered; retry when it has been')
    this.pending.add(d)
    return undefined
  }

  /** Records the task a held key created (in the datastore before it resolves). */
  async commit (key: string, fingerprint: string, taskId: string): Promise<void> {
    const d = digest(key)
    const entry: IdempotencyEntry = { taskId, at: this.now(), fingerprint }
    try {
      await this.datastore.put(new Key(`${PREFIX}/${d}`), new TextEncoder().encode(JSON.stringify(entry)))
      this.entries.delete(d)
      this.entries.set(d, entry)
    } finally {
      this.pending.delete(d)
    }
    await this.trim()
  }

  /** Lets a held key go when its request created no task (a bad request is not remembered). */
  release (key: string): void {
    this.pending.delete(digest(key))
  }

  get size (): number {
    return this.entries.size
  }

  /** Drops expired entries and the oldest ones past `maxKeys` */
  private async trim (): Promise<void> {
    const oldest = this.now() - this.windowMs
    const drop: string[] = []
    for (const [d, e] of this.entries) {
      if (e.at >= oldest && this.entries.size - drop.length <= this.maxKeys) break
      drop.push(d)
    }
    for (const d of drop) this.entries.delete(d)
    await Promise.all(drop.map(async d => { await Promise.resolve(this.datastore.delete(new Key(`${PREFIX}/${d}`))).catch(() => {}) }))
  }
}
