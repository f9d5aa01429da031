/** A token bucket: `capacity` tokens, refilled at `perSecond` */
export class TokenBucket {
  private tokens: number
  private last: number
  private readonly capacity: number
  private readonly perSecond: number
  private readonly now: () => number

  constructor (capacity: number, perSecond: number, now: () => number = Date.now) {
    this.capacity = capacity
    this.perSecond = perSecond
    this.tokens = capacity
    this.now = now
    this.last = now()
  }

  /** Takes one token; false when none is left */
  take (): boolean {
    const now = this.now()
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) / 1000 * this.perSecond)
    this.last = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}
