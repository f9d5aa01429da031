import type { TaskStats } from './types.js'
import type { CounterGroup, Metrics } from '@libp2p/interface'

export type DropReason = keyof TaskStats['dropped']

/** Why something from the wire was dropped: one counter for every role, and `aistack_task_dropped_total{reason}` */
export class DropCounter {
  private readonly counts: TaskStats['dropped'] = { badSignature: 0, oversize: 0, malformed: 0, unknownTask: 0, notAssigned: 0, replayed: 0, duplicate: 0 }
  private readonly metric?: CounterGroup

  constructor (metrics?: Metrics) {
    this.metric = metrics?.registerCounterGroup('aistack_task_dropped_total', { label: 'reason', help: 'task protocol messages dropped, by reason' })
  }

  /** Count one dropped message (`n`: several, e.g. undecodable journal entries) */
  drop (reason: DropReason, n = 1): void {
    this.counts[reason] += n
    this.metric?.increment({ [reason]: n })
  }

  snapshot (): TaskStats['dropped'] {
    return { ...this.counts }
  }
}
