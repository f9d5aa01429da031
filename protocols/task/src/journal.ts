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
    stored.payload = uint8ArrayToString(payload, 'base64')
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
    record.payload = uint8ArrayFromString(payload, 'base64')
  }
  return record
}

/**
 * The submitter's on-disk journal: one datastore entry per task. Writes of the
 * same task are serialised and coalesced (the newest snapshot wins).
 */
export class Journal {
  private readonly datastore: Datastore
  private readonly prefix: string
  private readonly writing = new Map<string, { running: Promise<void>, next?: Promise<void>, record?: TaskRecord }>()

  constructor (datastore: Datastore, prefix: string) {
    this.datastore = datastore
    this.prefix = prefix
  }

  key (id: string): Key {
    return new Key(`${this.prefix}/${id}`)
  }

  /** Persist the current state of the record */
  async save (record: TaskRecord): Promise<void> {
    const slot = this.writing.get(record.id)
    if (slot == null) {
      const running = this.write(record).finally(() => {
        const s = this.writing.get(record.id)
        if (s?.running === running && s.next == null) {
          this.writing.delete(record.id)
        }
      })
      this.writing.set(record.id, { running })
      return running
    }
    // a write is in flight: queue one more write that takes the newest snapshot
    slot.record = record
    if (slot.next == null) {
      slot.next = slot.running.catch(() => {}).then(async () => {
        const latest = slot.record ?? record
        slot.record = undefined
        const running = this.write(latest)
        slot.running = running
        slot.next = undefined
        try {
          await running
        } finally {
          if (this.writing.get(record.id) === slot && slot.next == null && slot.running === running) {
            this.writing.delete(record.id)
          }
        }
      })
    }
    return slot.next
  }

  private async write (record: TaskRecord): Promise<void> {
    await this.datastore.put(this.key(record.id), encodeRecord(record))
  }

  async delete (id: string): Promise<void> {
    await this.datastore.delete(this.key(id))
  }

  /** Wait for every pending write */
  async flush (): Promise<void> {
    while (this.writing.size > 0) {
      await Promise.allSettled([...this.writing.values()].map(async s => s.next ?? s.running))
    }
  }

  /** Every record in the journal; entries that cannot be decoded are skipped and counted */
  async load (): Promise<{ records: TaskRecord[], corrupt: number }> {
    const records: TaskRecord[] = []
    let corrupt = 0
    for await (const { value } of this.datastore.query({ prefix: this.prefix })) {
      try {
        records.push(decodeRecord(value))
      } catch {
        corrupt++
      }
    }
    return { records, corrupt }
  }
}
