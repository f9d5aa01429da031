import type { Result } from './pb/task.js'
import type { PeerId } from '@libp2p/interface'

/** A result sent and not yet acknowledged: sent again until it is */
export interface HeldResult {
  submitter: PeerId
  result: Result
  since: number
  lastSent: number
}

export interface HeldResultsLimits {
  /** results held per submitter */
  perSubmitter: number
  /** bytes of output held per submitter */
  bytesPerSubmitter: number
  /** results held for all submitters */
  total: number
  /** bytes of output held for all submitters */
  bytesTotal: number
}

function sizeOf (result: Result): number {
  return (result.output?.byteLength ?? 0) + (result.error?.length ?? 0) + result.taskId.length + 64
}

/**
 * The worker's results that wait for an acknowledgement, keyed by
 * `<submitter>/<task id>`, counted per submitter and in all, in results
 * and bytes, so that a submitter that never acknowledges cannot make a
 * worker hold more than the limits (see `hasRoom`).
 */
export class HeldResults {
  private readonly held = new Map<string, HeldResult>()
  private readonly bySubmitter = new Map<string, { count: number, bytes: number }>()
  private bytes = 0
  private readonly limits: HeldResultsLimits

  constructor (limits: HeldResultsLimits) {
    this.limits = limits
  }

  get size (): number {
    return this.held.size
  }

  /** bytes held for all submitters */
  get byteSize (): number {
    return this.bytes
  }

  /** Whether a new assignment from `submitter` may be taken: its results and all results are under the limits */
  hasRoom (submitter: string, running = 0): boolean {
    const mine = this.bySubmitter.get(submitter)
    return (mine?.count ?? 0) + running < this.limits.perSubmitter && (mine?.bytes ?? 0) < this.limits.bytesPerSubmitter &&
      this.held.size + running < this.limits.total && this.bytes < this.limits.bytesTotal
  }

  /** results held for `submitter` */
  countFor (submitter: string): number {
    return this.bySubmitter.get(submitter)?.count ?? 0
  }

  has (key: string): boolean {
    return this.held.has(key)
  }

  get (key: string): HeldResult | undefined {
    return this.held.get(key)
  }

  set (key: string, entry: HeldResult): void {
    this.delete(key)
    this.held.set(key, entry)
    const sub = entry.submitter.toString()
    const size = sizeOf(entry.result)
    const mine = this.bySubmitter.get(sub) ?? { count: 0, bytes: 0 }
    mine.count++
    mine.bytes += size
    this.bySubmitter.set(sub, mine)
    this.bytes += size
  }

  delete (key: string): boolean {
    const entry = this.held.get(key)
    if (entry == null) {
      return false
    }
    this.held.delete(key)
    const sub = entry.submitter.toString()
    const size = sizeOf(entry.result)
    const mine = this.bySubmitter.get(sub)
    if (mine != null) {
      mine.count--
      mine.bytes -= size
      if (mine.count <= 0) {
        this.bySubmitter.delete(sub)
      }
    }
    this.bytes -= size
    return true
  }

  entries (): IterableIterator<[string, HeldResult]> {
    return this.held.entries()
  }

  values (): IterableIterator<HeldResult> {
    return this.held.values()
  }

  clear (): void {
    this.held.clear()
    this.bySubmitter.clear()
    this.bytes = 0
  }
}
