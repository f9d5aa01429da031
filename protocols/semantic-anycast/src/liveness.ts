import { makeRoom } from './bounded.js'

/** What a node knows of an owner's reachability */
export type Liveness = 'live' | 'unknown' | 'failing'

export interface LivenessInit {
  /** an owner failing this long (and not heard from since) is evicted, default 30 s */
  evictAfterMs?: number
  /** first back-off after a failure, doubled per further failure, default 1 s */
  backoffMs?: number
  /** longest back-off, default 30 s */
  maxBackoffMs?: number
  /** an owner heard from this recently is `live`, default 5 min */
  liveForMs?: number
  /** owners tracked at most (oldest forgotten first), default 10,000 */
  maxOwners?: number
  /** an owner demoted by a connection that failed is asked for its records this much later (ms), default 1 s */
  probeAfterMs?: number
}

interface OwnerState {
  /** last success or record received directly (ms since the epoch) */
  seenAt?: number
  /** first failure of the current run of failures */
  failingSince?: number
  failures: number
  /** not tried again (for record fetches) before this time */
  retryAt: number
}

/**
 * Reachability of record owners, from the outcome of requests to them: a
 * failure (dial refused, stream reset, error status) demotes an owner at once
 * and backs off exponentially; a success or a record received from the owner
 * itself clears it. A back-off, not a ban: once `retryAt` passes the owner is
 * tried again, and anything heard from it restores it.
 */
export class OwnerLiveness {
  private readonly owners = new Map<string, OwnerState>()
  private readonly evictAfterMs: number
  private readonly backoffMs: number
  private readonly maxBackoffMs: number
  private readonly liveForMs: number
  private readonly maxOwners: number
  readonly probeAfterMs: number

  constructor (init: LivenessInit = {}) {
    this.evictAfterMs = init.evictAfterMs ?? 30_000
    this.backoffMs = init.backoffMs ?? 1000
    this.maxBackoffMs = init.maxBackoffMs ?? 30_000
    this.liveForMs = init.liveForMs ?? 5 * 60_000
    this.maxOwners = init.maxOwners ?? 10_000
    this.probeAfterMs = init.probeAfterMs ?? 1000
  }

  private entry (owner: string): OwnerState {
    let s = this.owners.get(owner)
    if (s == null) {
      makeRoom(this.owners, this.maxOwners)
      s = { failures: 0, retryAt: 0 }
      this.owners.set(owner, s)
    }
    return s
  }

  /** A request to the owner failed */
  failed (owner: string, now = Date.now()): void {
    const s = this.entry(owner)
    s.failures++
    s.failingSince ??= now
    s.retryAt = now + Math.min(this.maxBackoffMs, this.backoffMs * 2 ** Math.min(16, s.failures - 1))
  }

  /**
   * A connection to the owner closed. One that closed with an error (reset,
   * muxer or transport failure, a failed keep-alive) demotes the owner at once
   * unless another connection to it is still open; a clean close says nothing
   * of the owner. Weaker evidence than a failed request (a busy peer's
   * keep-alive fails too): no back-off, so the next request to it decides.
   */
  connectionClosed (owner: string, error: Error | undefined, stillConnected = false, now = Date.now()): boolean {
    if (error == null || stillConnected) return false
    const s = this.entry(owner)
    s.failingSince ??= now
    return true
  }

  /** The owner answered, or sent a record itself */
  succeeded (owner: string, now = Date.now()): void {
    const s = this.entry(owner)
    s.seenAt = now
    s.failures = 0
    s.failingSince = undefined
    s.retryAt = 0
  }

  /** `failing` while failures are unanswered, `live` when heard from within `liveForMs`, else `unknown` */
  state (owner: string, now = Date.now()): Liveness {
    const s = this.owners.get(owner)
    if (s == null) return 'unknown'
    if (s.failingSince != null) return 'failing'
    return s.seenAt != null && now - s.seenAt < this.liveForMs ? 'live' : 'unknown'
  }

  /**
   * A request to the owner failed and nothing was heard from it since
   * (`failing` from a closed connection alone is not demoted): ask measures
   * alternatives against the best owner not demoted, so only a failed
   * request lets a far worse match answer in its place.
   */
  demoted (owner: string): boolean {
    const s = this.owners.get(owner)
    return s != null && s.failingSince != null && s.failures > 0
  }

  /** Whether the owner is in its back-off window (skip fetching from it) */
  backingOff (owner: string, now = Date.now()): boolean {
    const s = this.owners.get(owner)
    return s != null && s.failingSince != null && now < s.retryAt
  }

  /**
   * Owners failing for at least `evictAfterMs` with at least one failed
   * request (a closed connection alone never evicts): their records leave the results
   */
  expired (now = Date.now()): string[] {
    const out: string[] = []
    for (const [owner, s] of this.owners) {
      if (s.failingSince != null && s.failures > 0 && now - s.failingSince >= this.evictAfterMs) out.push(owner)
    }
    return out
  }

  get size (): number {
    return this.owners.size
  }
}
