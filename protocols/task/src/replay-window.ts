import * as C from './constants.js'

/**
 * Which signed records (announcements, events) were seen lately, to drop
 * replays: a record is fresh if issued at most `maxAgeMs` ago and at most a
 * minute ahead, and new if its key was not seen in the window (at most
 * `MAX_SEEN` keys; past it the oldest and the expired are forgotten first).
 */
export class ReplayWindow {
  private readonly seen = new Map<string, number>()
  private readonly maxAgeMs: number

  constructor (maxAgeMs: number) {
    this.maxAgeMs = maxAgeMs
  }

  /** false if a record issued at `issuedAt` (ms since the epoch) is too old or from the future */
  fresh (issuedAt: number, now = Date.now()): boolean {
    return Number.isFinite(issuedAt) && issuedAt >= now - this.maxAgeMs && issuedAt <= now + 60_000
  }

  /** Remember a record's key; true if it was seen already */
  seenBefore (key: string, issuedAt: number): boolean {
    if (this.seen.has(key)) {
      return true
    }
    this.seen.set(key, issuedAt)
    if (this.seen.size > C.MAX_SEEN) {
      const now = Date.now()
      for (const [k, at] of this.seen) {
        if (this.seen.size <= C.MAX_SEEN * 0.9 && at >= now - this.maxAgeMs) {
          break
        }
        this.seen.delete(k)
      }
    }
    return false
  }
}
