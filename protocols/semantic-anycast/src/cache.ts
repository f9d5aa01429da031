import type { CapabilityRecord } from './record.js'

export interface CacheInit {
  /** most records held, default 100,000 */
  maxRecords?: number
  /** most records (and, separately, tombstones) per owner, default 256 */
  maxRecordsPerOwner?: number
  /** most tombstones held, default 100,000 */
  maxTombstones?: number
  /**
   * Estimated memory of the records held, in bytes (see `recordCost`),
   * default 64 MiB
   */
  maxBytes?: number
}

export type PutResult = 'added' | 'updated' | 'stale' | 'removed' | 'full'

export interface ScoredRecord {
  record: CapabilityRecord
  similarity: number
}

interface Tombstone {
  owner: string
  seq: bigint
  expiresAt: number
}

/** Fixed part of the estimated memory of one cached record: map entry, objects, strings' headers */
const RECORD_OVERHEAD = 640

/**
 * Estimated bytes a record takes in memory: its signed envelope, the decoded
 * float32 vector, its strings (UTF-16) and a fixed overhead for the objects.
 */
export function recordCost (r: CapabilityRecord): number {
  let chars = r.owner.length + r.name.length + r.description.length + r.model.length
  for (const t of r.tags) chars += t.length + 16
  for (const e of r.examples) chars += e.length + 16
  return RECORD_OVERHEAD + r.bytes.byteLength + r.vector.length * 4 + chars * 2
}

/**
 * Verified capability records by (owner, name): the newest sequence number
 * wins, tombstones remove and block older records, expired records are dropped.
 *
 * Bounds: records by count (in all and per owner) and by estimated bytes;
 * tombstones by count (in all and per owner). A tombstone is stored only when
 * it removes a cached record or replaces an older tombstone: one for a record
 * never seen blocks nothing worth remembering.
 */
export class RecordCache {
  private readonly records = new Map<string, CapabilityRecord>()
  private readonly confirmed = new Map<string, number>()
  private readonly tombstones = new Map<string, Tombstone>()
  private readonly perOwner = new Map<string, number>()
  private readonly tombsPerOwner = new Map<string, number>()
  private readonly maxRecords: number
  private readonly maxPerOwner: number
  private readonly maxTombstones: number
  private readonly maxBytes: number
  private usedBytes = 0

  constructor (init: CacheInit = {}) {
    this.maxRecords = init.maxRecords ?? 100_000
    this.maxPerOwner = init.maxRecordsPerOwner ?? 256
    this.maxTombstones = init.maxTombstones ?? 100_000
    this.maxBytes = init.maxBytes ?? 64 * 1024 * 1024
  }

  /** Records held */
  get size (): number {
    return this.records.size
  }

  /** Tombstones held */
  get tombstoneCount (): number {
    return this.tombstones.size
  }

  /** Estimated bytes of the records held (see `recordCost`) */
  get bytes (): number {
    return this.usedBytes
  }

  get (owner: string, name: string): CapabilityRecord | undefined {
    return this.records.get(`${owner}/${name}`)
  }

  /** When (ms since the epoch) the record of (owner, name) was last received or confirmed */
  confirmedAt (owner: string, name: string): number | undefined {
    return this.confirmed.get(`${owner}/${name}`)
  }

  /** Insert a verified record; receiving the held version again confirms it */
  put (record: CapabilityRecord, now = Date.now()): PutResult {
    if (record.expiresAt <= now) return 'stale'
    const key = `${record.owner}/${record.name}`
    const current = this.records.get(key)
    const tomb = this.tombstones.get(key)
    if (current != null && current.seq >= record.seq) {
      if (current.seq === record.seq) this.confirmed.set(key, now)
      return 'stale'
    }
    if (tomb != null && tomb.seq >= record.seq) return 'stale'
    if (record.tombstone) {
      if (current == null && tomb == null) return 'stale'
      if (tomb == null) {
        const n = this.tombsPerOwner.get(record.owner) ?? 0
        if (this.tombstones.size >= this.maxTombstones || n >= this.maxPerOwner) {
          // no room to remember the tombstone: still remove what it withdraws
          if (current != null) this.remove(key)
          return current != null ? 'removed' : 'full'
        }
        this.tombsPerOwner.set(record.owner, n + 1)
      }
      this.tombstones.set(key, { owner: record.owner, seq: record.seq, expiresAt: record.expiresAt })
      if (current != null) {
        this.remove(key)
        return 'removed'
      }
      return 'stale'
    }
    const cost = recordCost(record)
    const freed = current != null ? recordCost(current) : 0
    if (this.usedBytes - freed + cost > this.maxBytes) return 'full'
    if (current == null) {
      const n = this.perOwner.get(record.owner) ?? 0
      if (this.records.size >= this.maxRecords || n >= this.maxPerOwner) return 'full'
      this.perOwner.set(record.owner, n + 1)
    }
    if (tomb != null) this.removeTombstone(key)
    this.records.set(key, record)
    this.confirmed.set(key, now)
    this.usedBytes += cost - freed
    return current == null ? 'added' : 'updated'
  }

  private remove (key: string): void {
    const r = this.records.get(key)
    if (r == null) return
    this.records.delete(key)
    this.confirmed.delete(key)
    this.usedBytes -= recordCost(r)
    const n = (this.perOwner.get(r.owner) ?? 1) - 1
    if (n <= 0) this.perOwner.delete(r.owner)
    else this.perOwner.set(r.owner, n)
  }

  private removeTombstone (key: string): void {
    const t = this.tombstones.get(key)
    if (t == null) return
    this.tombstones.delete(key)
    const n = (this.tombsPerOwner.get(t.owner) ?? 1) - 1
    if (n <= 0) this.tombsPerOwner.delete(t.owner)
    else this.tombsPerOwner.set(t.owner, n)
  }

  /** Whether any live record of the owner is held */
  hasOwner (owner: string): boolean {
    return (this.perOwner.get(owner) ?? 0) > 0
  }

  /** Drop every record of an owner (its tombstones stay, they still block older records); returns how many */
  deleteOwner (owner: string): number {
    let n = 0
    for (const [key, r] of this.records) {
      if (r.owner === owner) {
        this.remove(key)
        n++
      }
    }
    return n
  }

  /** Owners of the records held */
  owners (): IterableIterator<string> {
    return this.perOwner.keys()
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
      if (t.expiresAt <= now) this.removeTombstone(key)
    }
    return n
  }

  * values (model?: string, now = Date.now()): Generator<CapabilityRecord> {
    for (const r of this.records.values()) {
      if (r.expiresAt > now && (model == null || r.model === model)) yield r
    }
  }

  /** Exact cosine ranking over the cached records of one model, skipping those `skip` returns true for */
  search (model: string, vector: Float32Array, k: number, now = Date.now(), skip?: (r: CapabilityRecord) => boolean): ScoredRecord[] {
    const out: ScoredRecord[] = []
    for (const r of this.values(model, now)) {
      if (r.vector.length !== vector.length || skip?.(r) === true) continue
      let s = 0
      for (let i = 0; i < vector.length; i++) s += r.vector[i] * vector[i]
      out.push({ record: r, similarity: s })
    }
    out.sort((a, b) => b.similarity - a.similarity)
    return out.slice(0, k)
  }
}
