import type { TaskRecord } from './journal.js'

/**
 * The submitter's finished tasks (completed, dead, canceled) with when they
 * ended, oldest first: each is due to be forgotten `retainMs` after it
 * ended, or sooner once more than `maxRetained` have ended since. The inputs
 * of a map task go with their parent (which needs them until it ends), not
 * on their own.
 */
export class Retention {
  private readonly finished = new Map<string, number>()
  private readonly retainMs: number
  private readonly maxRetained: number

  constructor (retainMs: number, maxRetained: number) {
    this.retainMs = retainMs
    this.maxRetained = maxRetained
  }

  /** A task ended at `at` (ms since the epoch) */
  retire (record: TaskRecord, at: number): void {
    if (record.parent != null) {
      return
    }
    this.finished.set(record.id, at)
    for (let i = 0; i < (record.children ?? 0); i++) {
      this.finished.set(`${record.id}.${i}`, at)
    }
  }

  /** The ids whose time is up at `now`, oldest first; they are no longer tracked */
  due (now: number): string[] {
    const out: string[] = []
    for (const [id, at] of this.finished) {
      if (now - at <= this.retainMs && this.finished.size <= this.maxRetained) {
        break
      }
      this.finished.delete(id)
      out.push(id)
    }
    return out
  }

  clear (): void {
    this.finished.clear()
  }
}

/** How a map task stands, from its children */
export type MapOutcome =
  { state: 'waiting' } |
  { state: 'dead', reason: string, cancelOthers?: string } |
  { state: 'completed', results: unknown[] }

/**
 * Whether a map task can be settled: completed once every child is (and is
 * journaled: `settling`), with their results in input order; dead once a
 * child is dead or canceled (the others are then canceled, `cancelOthers`
 * their reason) or missing
 */
export function settleMap (parent: TaskRecord, child: (index: number) => TaskRecord | undefined, settling: (id: string) => boolean): MapOutcome {
  const results: unknown[] = []
  for (let i = 0; i < (parent.children ?? 0); i++) {
    const c = child(i)
    if (c == null) {
      return { state: 'dead', reason: `input ${i}: missing from the journal` }
    }
    if (c.state === 'dead' || c.state === 'canceled') {
      return { state: 'dead', reason: `input ${i}: ${c.error ?? c.state}`, cancelOthers: `input ${i} of the map task failed` }
    }
    if (c.state !== 'completed' || settling(c.id)) {
      // a child still being journaled settles its parent once it has been
      return { state: 'waiting' }
    }
    results.push(c.result)
  }
  return { state: 'completed', results }
}
