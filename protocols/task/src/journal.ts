import { Key } from 'interface-datastore'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import type { HistoryEntry, TaskState } from './types.js'
import type { Datastore } from 'interface-datastore'

/** Everything the submitter knows about one of its tasks */
export interface TaskRecord {
  id: string
  state: TaskState
  capability?: string
  query?: string
  requirements?: Record<string, string>
  to?: string
  parent?: string
  index?: number
  /** map tasks: number of children (ids `${id}.${index}`) */
  children?: number
  /** JSON-encoded input (absent for map parents) */
  payload?: Uint8Array
  maxAttempts: number
  leaseMs: number
  timeoutMs: number
  /** absolute, ms since the epoch; 0 = none */
  deadline: number
  createdAt: number
  updatedAt: number
  /** attempts started so far */
  attempts: number
  worker?: string
  /** ms since the epoch; in memory only (a restarted submitter grants a fresh lease) */
  leaseUntil?: number
  /** earliest time of the next attempt after a failure */
  notBefore?: number
  round: number
  /** the submitter's span of the task (W3C traceparent), when traced */
  traceparent?: string
  progress?: number
  result?: unknown
  error?: string
  history: HistoryEntry[]
}

interface StoredRecord extends Omit<TaskRecord, 'payload' | 'leaseUntil'> {
  payload?: string
}

export function encodeRecord (record: TaskRecord): Uint8Array {
  const { payload, leaseUntil, ...rest } = record
  const stored: StoredRecord = rest
  if (payload != null) {
    // node's own base64 (padded); several times faster than a JS encoder, and records are saved a few times per task
    stored.payload = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64')
  }
  return uint8ArrayFromString(JSON.stringify(stored))
}

export function decodeRecord (bytes: Uint8Array): TaskRecord {
  const stored: StoredRecord = JSON.parse(uint8ArrayToString(bytes))
  if (typeof stored.id !== 'string' || typeof stored.state !== 'string' || !Array.isArray(stored.history)) {
    throw new Error('not a task record')
  }
  const { payload, ...rest } = stored
  const record: TaskRecord = rest
  if (payload != null) {
    // padded or not (journals written before used unpadded base64)
    record.payload = new Uint8Array(Buffer.from(payload, 'base64'))
  }
  return record
}

/** how long a write nothing waits for may wait to be joined by others */
const BACKGROUND_WRITE_DELAY_MS = 10

/**
 * The submitter's on-disk journal: one datastore entry per task, with group
 * commit. A save that is waited for starts a write as soon as the code that
 * made it yields (one microtask later, so saves made together share it); one
 * that nothing waits for (`saveInBackground`) waits up to
 * `BACKGROUND_WRITE_DELAY_MS`, and goes with any write that starts sooner.
 * Saves made while a write is under way are written together in one
 * datastore batch when it ends. A record saved again meanwhile is written
 * once, as its newest snapshot: a task that is assigned and completes within
 * the delay is written twice, not three times.
 */
export class Journal {
  private readonly datastore: Datastore
  private readonly prefix: string
  private readonly stagedPrefix: string
  private dirty = new Map<string, TaskRecord>()
  /** staged result records deleted with the next write */
  private unstaged: Key[] = []
  /** task records deleted with the next write */
  private removed = new Set<string>()
  private waiters: Array<PromiseWithResolvers<void>> = []
  private writing?: Promise<void>
  /** a dirty record is waited for */
  private urgent = false
  private startQueued = false
  private timer?: ReturnType<typeof setTimeout>

  /** `stagedPrefix` holds result records that arrived for tasks whose record is not written yet (see `stageResult`) */
  constructor (datastore: Datastore, prefix: string, stagedPrefix = `${prefix}-staged`) {
    this.datastore = datastore
    this.prefix = prefix
    this.stagedPrefix = stagedPrefix
  }

  key (id: string): Key {
    return new Key(`${this.prefix}/${id}`)
  }

  /** where the result record of one attempt at a task is staged */
  stagedKey (taskId: string, attempt: number): Key {
    return new Key(`${this.stagedPrefix}/${taskId}/${attempt}`)
  }

  /** A write is under way, or one that is waited for is about to start */
  get busy (): boolean {
    return this.writing != null || this.startQueued
  }

  private get pending (): number {
    return this.dirty.size + this.unstaged.length + this.removed.size
  }

  /** Persist the current state of the record; resolves once it is written */
  async save (record: TaskRecord): Promise<void> {
    return this.enqueue(record, true)
  }

  /**
   * Persist the record within `BACKGROUND_WRITE_DELAY_MS`, or with the next
   * write that is waited for; for writes that nothing waits on. `unstage`
   * (an attempt) deletes that attempt's staged result record in the same write.
   */
  async saveInBackground (record: TaskRecord, options: { unstage?: number } = {}): Promise<void> {
    if (options.unstage != null) {
      this.unstaged.push(this.stagedKey(record.id, options.unstage))
    }
    return this.enqueue(record, false)
  }

  /**
   * Writes a result record as it arrived, under its task's id, at once and on
   * its own: the task's own record can then be written later, and
   * `stagedResults()` finds the result after a crash in between. The record
   * may still be unverified: whoever reads it back checks its signature.
   */
  async stageResult (taskId: string, attempt: number, bytes: Uint8Array): Promise<void> {
    await this.datastore.put(this.stagedKey(taskId, attempt), bytes)
  }

  /** Deletes a task's record with the next write, which may wait as `saveInBackground` does */
  removeInBackground (id: string): void {
    this.dirty.delete(id)
    this.removed.add(id)
    this.schedule()
  }

  /** Deletes a staged result record with the next write */
  discardStaged (taskId: string, attempt: number): void {
    this.unstaged.push(this.stagedKey(taskId, attempt))
    this.schedule()
  }

  /** The staged result records */
  async stagedResults (): Promise<Array<{ taskId: string, attempt: number, bytes: Uint8Array }>> {
    const out: Array<{ taskId: string, attempt: number, bytes: Uint8Array }> = []
    const depth = new Key(this.stagedPrefix).namespaces().length
    for await (const { key, value } of this.datastore.query({ prefix: `${this.stagedPrefix}/` })) {
      const [taskId, attempt] = key.namespaces().slice(depth)
      out.push({ taskId, attempt: Number(attempt), bytes: value })
    }
    return out
  }

  private async enqueue (record: TaskRecord, urgent: boolean): Promise<void> {
    this.dirty.set(record.id, record)
    const waiter = Promise.withResolvers<void>()
    this.waiters.push(waiter)
    if (urgent) {
      this.urgent = true
    }
    this.schedule()
    return waiter.promise
  }

  private schedule (): void {
    // a write under way schedules the next when it ends
    if (this.writing != null || this.pending === 0) {
      return
    }
    if (this.urgent) {
      if (!this.startQueued) {
        this.startQueued = true
        queueMicrotask(() => { this.start() })
      }
    } else {
      this.timer ??= setTimeout(() => { this.start() }, BACKGROUND_WRITE_DELAY_MS)
    }
  }

  private start (): void {
    this.startQueued = false
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.writing != null || this.pending === 0) {
      return
    }
    this.urgent = false
    this.writing = this.writeBatch().finally(() => {
      this.writing = undefined
      this.schedule()
    })
  }

  private async writeBatch (): Promise<void> {
    const records = [...this.dirty.values()]
    const unstaged = this.unstaged
    const removed = this.removed
    const waiters = this.waiters
    this.dirty = new Map()
    this.unstaged = []
    this.removed = new Set()
    this.waiters = []
    try {
      const batch = this.datastore.batch()
      for (const record of records) {
        batch.put(this.key(record.id), encodeRecord(record))
      }
      for (const key of unstaged) {
        batch.delete(key)
      }
      for (const id of removed) {
        batch.delete(this.key(id))
      }
      await batch.commit()
      for (const w of waiters) {
        w.resolve()
      }
    } catch (err) {
      for (const w of waiters) {
        w.reject(err)
      }
    }
  }

  /** Write everything pending now, and wait for it */
  async flush (): Promise<void> {
    while (this.pending > 0 || this.writing != null) {
      if (this.writing == null) {
        this.start()
      }
      await this.writing?.catch(() => {})
    }
  }

  /** Every record in the journal; entries that cannot be decoded are skipped and counted */
  async load (): Promise<{ records: TaskRecord[], corrupt: number }> {
    const records: TaskRecord[] = []
    let corrupt = 0
    for await (const { value } of this.datastore.query({ prefix: `${this.prefix}/` })) {
      try {
        records.push(decodeRecord(value))
      } catch {
        corrupt++
      }
    }
    return { records, corrupt }
  }
}
