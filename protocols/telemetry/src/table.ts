/**
 * The table of the network: the last state each node reported, with
 * liveness. A node silent for `DOWN_AFTER_INTERVALS` of its own intervals is
 * `down`, unless it declares a heartbeat (it sends only what moved, and a
 * full record every heartbeat): then it is `down` once it misses its
 * heartbeat by `DOWN_AFTER_INTERVALS` intervals, or sooner, after
 * `DOWN_AFTER_INTERVALS` intervals of silence, when its connection to this
 * node closed since its last record. After `forgetAfterMs` it leaves the table. At most
 * `LIMITS.maxNodes` rows: a newcomer takes the row of the node silent longest,
 * and only if that one is down.
 */
import { DOWN_AFTER_INTERVALS, LIMITS } from './constants.js'
import { applyDelta, neighbourTag, neighbourTags, telemetryOf } from './record.js'
import type { TelemetryRecord } from './pb/telemetry.js'
import type { NodeEntry, NodeTelemetry, PeerLoad } from './types.js'

interface Row {
  /** the last full record, or the state built from deltas without one */
  base?: TelemetryRecord
  /** the state now (base with the last delta applied) */
  current: TelemetryRecord
  complete: boolean
  lastSeq: bigint
  /** local clock, ms */
  lastSeen: number
  /** local clock, ms: when this node's last connection to it closed (cleared when it connects again) */
  disconnectedAt?: number
}

/** What `accept` did with a record */
export type AcceptResult = 'applied' | 'stale' | 'full'

export class NetworkTable {
  private readonly rows = new Map<string, Row>()
  /** neighbour tag -> peer id, of every row and this node */
  private readonly tags = new Map<string, string>()
  private readonly forgetAfterMs: number
  private readonly now: () => number

  /** `selfId`: this node, so that others' links to it resolve */
  constructor ({ forgetAfterMs, now = Date.now, selfId }: { forgetAfterMs: number, now?: () => number, selfId?: string }) {
    this.forgetAfterMs = forgetAfterMs
    this.now = now
    if (selfId != null) this.tags.set(neighbourTag(selfId), selfId)
  }

  get size (): number {
    return this.rows.size
  }

  /**
   * Takes a checked record from `peerId`. Older or repeated sequence numbers
   * are `stale`; a table that is full of live nodes refuses a newcomer (`full`).
   */
  accept (peerId: string, record: TelemetryRecord): AcceptResult {
    const now = this.now()
    let row = this.rows.get(peerId)
    // a lower seq is a replay, unless it is a full record written later than the row's state:
    // the node started again (its seq starts at 1 in every run)
    if (row != null && record.seq <= row.lastSeq && !(record.full && record.timeMs > row.current.timeMs)) return 'stale'
    if (row == null && this.rows.size >= LIMITS.maxNodes && !this.evictOne(now)) return 'full'
    if (record.full) {
      row = { base: record, current: record, complete: true, lastSeq: record.seq, lastSeen: now, disconnectedAt: row?.disconnectedAt }
    } else if (row?.base != null && row.base.seq === record.baseSeq) {
      row = { ...row, current: applyDelta(row.base, record), lastSeq: record.seq, lastSeen: now }
    } else {
      // a delta against a full record this node never got: keep what it says until the next full one
      const before = row?.current
      const current = before != null ? applyDelta(before, record) : record
      row = { base: row?.base, current, complete: false, lastSeq: record.seq, lastSeen: now, disconnectedAt: row?.disconnectedAt }
    }
    if (!this.rows.has(peerId)) this.tags.set(neighbourTag(peerId), peerId)
    this.rows.set(peerId, row)
    return 'applied'
  }

  private evictOne (now: number): boolean {
    let oldest: [string, Row] | undefined
    for (const entry of this.rows) {
      if (oldest == null || entry[1].lastSeen < oldest[1].lastSeen) oldest = entry
    }
    if (oldest == null || this.statusOf(oldest[1], now) === 'up') return false
    this.delete(oldest[0])
    return true
  }

  private statusOf (row: Row, now: number): 'up' | 'down' {
    const interval = Math.max(LIMITS.minIntervalMs, row.current.intervalMs)
    const silent = now - row.lastSeen
    if (silent <= DOWN_AFTER_INTERVALS * interval) return 'up'
    const heartbeat = row.current.heartbeatMs
    if (heartbeat == null || heartbeat <= interval) return 'down'
    if (row.disconnectedAt != null && row.disconnectedAt >= row.lastSeen) return 'down'
    return silent <= heartbeat + DOWN_AFTER_INTERVALS * interval ? 'up' : 'down'
  }

  /** This node's last connection to `peerId` closed: from now on it is judged by its interval */
  disconnected (peerId: string): void {
    const row = this.rows.get(peerId)
    if (row != null) row.disconnectedAt = this.now()
  }

  /** This node connected to `peerId` again */
  connected (peerId: string): void {
    const row = this.rows.get(peerId)
    if (row != null) delete row.disconnectedAt
  }

  /** Drops nodes silent for longer than `forgetAfterMs`; returns how many */
  sweep (): number {
    const now = this.now()
    let n = 0
    for (const [peerId, row] of this.rows) {
      if (now - row.lastSeen > this.forgetAfterMs) {
        this.delete(peerId)
        n++
      }
    }
    return n
  }

  delete (peerId: string): void {
    this.rows.delete(peerId)
    const tag = neighbourTag(peerId)
    if (this.tags.get(tag) === peerId) this.tags.delete(tag)
  }

  /** The row of one node */
  get (peerId: string): NodeEntry | undefined {
    const row = this.rows.get(peerId)
    return row == null ? undefined : this.entryOf(peerId, row, this.now())
  }

  /** Every row */
  entries (): NodeEntry[] {
    const now = this.now()
    return [...this.rows].map(([peerId, row]) => this.entryOf(peerId, row, now))
  }

  private entryOf (peerId: string, row: Row, now: number): NodeEntry {
    const telemetry = telemetryOf(row.current)
    const base = row.base ?? row.current
    if (base.full) {
      // the neighbours of its last full record that this node knows
      telemetry.links = neighbourTags(base.neighbours).flatMap(tag => {
        const id = this.tags.get(tag)
        return id == null || id === peerId ? [] : [id]
      })
    }
    return { peerId, status: this.statusOf(row, now), lastSeenMs: Math.max(0, now - row.lastSeen), self: false, complete: row.complete, telemetry }
  }
}

/** What anycast scoring can read from a node's telemetry */
export function loadFromTelemetry (entry: { status: 'up' | 'down', lastSeenMs: number, telemetry: NodeTelemetry }): PeerLoad {
  const t = entry.telemetry
  let inFlight = 0
  let capacity = 0
  let requests = 0
  let errors = 0
  let p95Ms = 0
  const capabilities: PeerLoad['capabilities'] = {}
  for (const c of t.capabilities) {
    inFlight += c.inFlight
    capacity += c.capacity
    requests += c.requests
    errors += c.errors
    p95Ms = Math.max(p95Ms, c.p95Ms)
    capabilities[c.name] = { load: c.capacity > 0 ? Math.min(1, c.inFlight / c.capacity) : 0, p95Ms: c.p95Ms }
  }
  return {
    up: entry.status === 'up',
    lastSeenMs: entry.lastSeenMs,
    load: capacity > 0 ? Math.min(1, inFlight / capacity) : 0,
    p95Ms,
    errorRate: requests > 0 ? errors / requests : 0,
    ...(t.cpuPercent != null ? { cpuPercent: t.cpuPercent } : {}),
    capabilities
  }
}
