import * as C from './constants.js'

interface Estimate {
  srtt: number
  rttvar: number
}

/**
 * The submitter's measure of the round trip to each worker: from sending an
 * `ASSIGN` to the worker's first report of the attempt, smoothed as TCP
 * smooths its round-trip time (RFC 6298, section 2: α = 1/8, β = 1/4). A lease
 * expires only once its time plus the worker's grace (`srtt + 4·rttvar`,
 * within [`MIN_LEASE_GRACE_MS`, `MAX_LEASE_GRACE_MS`]; `INITIAL_LEASE_GRACE_MS` before the first
 * measure) has passed, so a worker on a busy machine, whose reports are
 * late by what its round trips take, is not taken for a lost one.
 */
export class RoundTrips {
  private readonly estimates = new Map<string, Estimate>()
  private readonly max: number

  constructor (max = C.MAX_ROUND_TRIPS) {
    this.max = max
  }

  /** One measured round trip to `worker`, in milliseconds */
  sample (worker: string, ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) {
      return
    }
    const e = this.estimates.get(worker)
    if (e == null) {
      this.estimates.set(worker, { srtt: ms, rttvar: ms / 2 })
      if (this.estimates.size > this.max) {
        this.estimates.delete(this.estimates.keys().next().value as string)
      }
      return
    }
    e.rttvar = 0.75 * e.rttvar + 0.25 * Math.abs(e.srtt - ms)
    e.srtt = 0.875 * e.srtt + 0.125 * ms
  }

  /** The smoothed round trip to `worker` in milliseconds, if measured */
  srtt (worker: string): number | undefined {
    return this.estimates.get(worker)?.srtt
  }

  /** How long past a lease to wait for `worker` before the lease expires, in milliseconds */
  grace (worker: string | undefined): number {
    const e = worker != null ? this.estimates.get(worker) : undefined
    if (e == null) {
      return C.INITIAL_LEASE_GRACE_MS
    }
    return Math.min(C.MAX_LEASE_GRACE_MS, Math.max(C.MIN_LEASE_GRACE_MS, Math.ceil(e.srtt + 4 * e.rttvar)))
  }

  forget (worker: string): void {
    this.estimates.delete(worker)
  }

  clear (): void {
    this.estimates.clear()
  }
}
