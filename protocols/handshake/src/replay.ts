import type { PeerId } from '@libp2p/interface'

export type ReplayReason = 'duplicate' | 'stale' | 'future'

export type ReplayVerdict = { accept: true } | { accept: false, reason: ReplayReason }

export interface ReplayGuardInit {
  /**
   * `timestamp` (default): the value is the signer's clock in milliseconds;
   * accepted within `windowMs` in the past and `maxFutureMs` ahead, once per
   * (signer, id). `sequence`: the value is a per-signer counter that must
   * grow; the same (sequence, id) again is a duplicate.
   */
  kind?: 'timestamp' | 'sequence'
  /** how far in the past a timestamp may be (default 5 minutes) */
  windowMs?: number
  /** how far ahead of our clock a timestamp may be (default 30 seconds) */
  maxFutureMs?: number
  /** entries kept: (signer, id) pairs for timestamps, signers for sequences (default 10 000) */
  maxEntries?: number
  /** clock, for tests */
  now?: () => number
}

const ACCEPT: ReplayVerdict = Object.freeze({ accept: true })
const reject = (reason: ReplayReason): ReplayVerdict => ({ accept: false, reason })

/**
 * Replay protection for signed records that outlive a connection, with
 * bounded memory.
 *
 * In timestamp mode a full cache evicts its oldest entry and raises the
 * floor to that entry's timestamp, so a replay is never accepted: at worst a
 * late but genuine record is refused as `stale`. In sequence mode a full
 * cache forgets the least recently seen signer.
 */
export class ReplayGuard {
  readonly kind: 'timestamp' | 'sequence'
  private readonly windowMs: number
  private readonly maxFutureMs: number
  private readonly maxEntries: number
  private readonly now: () => number
  /** timestamp mode: `${signer}/${id}` → timestamp, in insertion order */
  private readonly seen = new Map<string, number>()
  private floor = -Infinity
  /** sequence mode: signer → highest sequence and its id, least recently used first */
  private readonly sequences = new Map<string, { seq: bigint, id: string }>()

  constructor (init: ReplayGuardInit = {}) {
    this.kind = init.kind ?? 'timestamp'
    this.windowMs = init.windowMs ?? 5 * 60_000
    this.maxFutureMs = init.maxFutureMs ?? 30_000
    this.maxEntries = Math.max(1, init.maxEntries ?? 10_000)
    this.now = init.now ?? Date.now
  }

  /** number of entries held */
  get size (): number {
    return this.kind === 'timestamp' ? this.seen.size : this.sequences.size
  }

  /**
   * Checks a record and, when it is accepted, remembers it. `value` is the
   * timestamp (ms) or sequence number, `id` the record's identity (a task id,
   * an event id, a content hash).
   */
  check (signer: PeerId | string, value: number | bigint, id: string): ReplayVerdict {
    const who = typeof signer === 'string' ? signer : signer.toString()
    return this.kind === 'timestamp' ? this.checkTimestamp(who, Number(value), id) : this.checkSequence(who, BigInt(value), id)
  }

  private checkTimestamp (who: string, ts: number, id: string): ReplayVerdict {
    if (!Number.isFinite(ts)) return reject('stale')
    const now = this.now()
    if (ts > now + this.maxFutureMs) return reject('future')
    if (ts < now - this.windowMs || ts <= this.floor) return reject('stale')
    const key = `${who}/${id}`
    if (this.seen.has(key)) return reject('duplicate')
    this.prune(now)
    while (this.seen.size >= this.maxEntries) {
      const [oldest, oldestTs] = this.seen.entries().next().value as [string, number]
      this.seen.delete(oldest)
      // the evicted entry can no longer be recognised: refuse everything as old
      this.floor = Math.max(this.floor, oldestTs)
    }
    if (ts <= this.floor) return reject('stale')
    this.seen.set(key, ts)
    return ACCEPT
  }

  /** drops entries that left the window (the map is roughly in time order) */
  private prune (now: number): void {
    const limit = now - this.windowMs
    for (const [key, ts] of this.seen) {
      if (ts >= limit) break
      this.seen.delete(key)
    }
  }

  private checkSequence (who: string, seq: bigint, id: string): ReplayVerdict {
    const last = this.sequences.get(who)
    if (last != null) {
      if (seq < last.seq) return reject('stale')
      if (seq === last.seq) return reject(last.id === id ? 'duplicate' : 'stale')
      this.sequences.delete(who)
    } else {
      while (this.sequences.size >= this.maxEntries) {
        const oldest = this.sequences.keys().next().value as string
        this.sequences.delete(oldest)
      }
    }
    this.sequences.set(who, { seq, id })
    return ACCEPT
  }

  clear (): void {
    this.seen.clear()
    this.sequences.clear()
    this.floor = -Infinity
  }
}
