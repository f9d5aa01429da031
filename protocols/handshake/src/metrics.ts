import { HANDSHAKE_METRIC } from './constants.js'
import type { CounterGroup, Metrics } from '@libp2p/interface'

export type HandshakeOutcome = 'success' | 'error' | 'downgrade_refused'

const groups = new WeakMap<Metrics, CounterGroup>()

/**
 * The shared counter group `aistack_handshakes_total`, one key per
 * `<encrypter>_<outcome>` (for example `noise-mlkem768-hfs_success`,
 * `noise_error`, `noise_downgrade_refused`).
 */
export function handshakeCounter (metrics?: Metrics): ((encrypter: string, outcome: HandshakeOutcome) => void) {
  if (metrics == null) return () => {}
  let group = groups.get(metrics)
  if (group == null) {
    group = metrics.registerCounterGroup(HANDSHAKE_METRIC, {
      label: 'encrypter_outcome',
      help: 'Connection handshakes by encrypter and outcome'
    })
    groups.set(metrics, group)
  }
  const g = group
  return (encrypter, outcome) => {
    g.increment({ [`${encrypter}_${outcome}`]: true })
  }
}
