import { HANDSHAKE_METRIC } from './constants.js'
import type { CounterGroup, Metrics, PeerId } from '@libp2p/interface'

export type HandshakeOutcome = 'success' | 'error' | 'downgrade_refused'

const groups = new WeakMap<Metrics, CounterGroup>()
/** per local peer: `<encrypter>_<outcome>` → count */
const totals = new Map<string, Map<string, number>>()

export interface CounterComponents {
  metrics?: Metrics
  peerId?: PeerId
}

/**
 * Counts a handshake in the counter group `aistack_handshakes_total`
 * (label `encrypter_outcome`, keys such as `noise-mlkem768-hfs_success`,
 * `noise_error`, `noise_downgrade_refused`) when libp2p has metrics, and in
 * the per-node totals read by `handshakeCounts()`.
 */
export function handshakeCounter (components: CounterComponents): ((encrypter: string, outcome: HandshakeOutcome) => void) {
  const { metrics, peerId } = components
  let group: CounterGroup | undefined
  if (metrics != null) {
    group = groups.get(metrics)
    if (group == null) {
      group = metrics.registerCounterGroup(HANDSHAKE_METRIC, {
        label: 'encrypter_outcome',
        help: 'Connection handshakes by encrypter and outcome'
      })
      groups.set(metrics, group)
    }
  }
  const local = peerId?.toString()
  return (encrypter, outcome) => {
    const key = `${encrypter}_${outcome}`
    group?.increment({ [key]: true })
    if (local != null) {
      let m = totals.get(local)
      if (m == null) {
        m = new Map()
        totals.set(local, m)
      }
      m.set(key, (m.get(key) ?? 0) + 1)
    }
  }
}

/**
 * Handshakes counted by the encrypters of the node with this peer ID since
 * the process started, as `{ 'noise-mlkem768-hfs_success': 3, ... }`; for
 * a node that renders its own `/metrics`.
 */
export function handshakeCounts (peerId: PeerId | string): Record<string, number> {
  return Object.fromEntries(totals.get(peerId.toString()) ?? [])
}
