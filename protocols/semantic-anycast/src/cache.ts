import type { CapabilityRecord } from './record.js'

export interface CacheInit {
  /** most records held, default 100,000 */
  maxRecords?: number
  /** most records per owner, default 256 */
  maxRecordsPerOwner?: number
}

export type PutResult = 'added' | 'updated' | 'stale' | 'removed' | 'full'

export interface ScoredRecord {
  record: CapabilityRecord
  similarity: number
}

/**
 * Verified capability records by (owner, name): the newest sequence number
 * wins, tombstones remove and block older records, expired records are dropped.
 */
export class RecordCache {
  private readonly records = new Map<string, CapabilityRecord>()
  private readonly tombstones = new Map<string, { seq: bigint, expiresAt: number }>()
  private readonly perOwner = new Map<string, number>()
  private readonly maxRecords: number
  private readonly maxPerOwner: number

  constructor (init: CacheInit = {}) {
    this.maxRecords = init.maxRecords ?? 100_000
    this.maxPerOwner = init.maxRecordsPerOwner ?? 256
  }

  get size (): number {
    return this.records.size
  }

  get (owner: string, name: string): CapabilityRecord | undefined {
    return this.records.get(`${owner}/${name}`)
  }

  /** Insert a verified record */
  put (record: CapabilityRecord, now = Date.now()): PutResult {
    if (record.expiresAt <= now) return 'stale'
    const key = `${record.owner}/${record.name}`
    const current = this.records.get(key)
    const tomb = this.tombstones.get(key)
    if (current != null && current.seq >= record.seq) return 'stale'
    if (tomb != null && tomb.seq >= record.seq) return 'stale'
    if (record.tombstone) {
      this.tombstones.set(key, { seq: record.seq, expiresAt: record.expiresAt })
      if (current != null) {
        this.remove(key)
        return 'removed'
      }
      return 'stale'
    }
    if (current == null) {
      const n = this.perOwner.get(record.owner) ?? 0
      if (this.records.size >= this.maxRecords || n >= this.maxPerOwner) return 'full'
      this.perOwner.set(record.owner, n + 1)
    }
    this.tombstones.delete(key)
    this.records.set(key, record)
    return current == null ? 'added' : 'updated'
  }

  private remove (key: string): void {
    const r = this.records.get(key)
    if (r == null) return
    this.records.delete(key)
    const n = (this.perOwner.get(r.owner) ?? 1) - 1
    if (n <= 0) this.perOwner.delete(r.owner)
    else this.perOwner.set(r.owner, n)
  }

  /** Drop every record of an owner */
  deleteOwner (owner: string): void {
    for (const [key, r] of this.records) {
      if (r.owner === owner) this.remove(key)
    }
  }

  /** Drop expired records and tombstones */
  prune (now = Date.now()): number {
    let n = 0
    for (const [key, r] of this.records) {
      if (r.expiresAt <= now) {
        this.remove(key)
        n++
      }
    }
    for (const [key, t] of this.tombstones) {
      if (t.expiresAt <= now) this.tombstones.delete(key)
    }
    return n
  }

  * values (model?: string, now = Date.now()): Generator<CapabilityRecord> {
    for (const r of this.records.values()) {
      if (r.expiresAt > now && (model == null || r.model === model)) yield r
    }
  }

  /** Exact cosine ranking over the cached records of one model */
  search (model: string, vector: Float32Array, k: number, now = Date.now()): ScoredRecord[] {
    const out: ScoredRecord[] = []
    for (const r of this.values(model, now)) {
      if (r.vector.length !== vector.length) continue
      let s = 0
      for (let i = 0; i < vector.length; i++) s += r.vector[i] * vector[i]
      out.push({ record: r, similarity: s })
    }
    out.sort((a, b) => b.similarity - a.similarity)
    return out.slice(0, k)
  }
}
