import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'

/** Where the node stands with one bootstrap peer (`/v1/id`'s `bootstrap` and the start banner). */
export interface BootstrapPeerState {
  /** The bootstrap multiaddr, with /p2p/ */
  addr: string
  /** `joining` until the first dial ends; `connected`; or `failed` (retried with backoff) */
  state: 'joining' | 'connected' | 'failed'
  /** Dials made so far */
  attempts: number
  /** Why the last dial failed: refused, timed out, handshake refused (PQ policy), ... */
  error?: string
  /** When the next dial is due (ISO 8601), while failed */
  retryAt?: string
}

export type ReportLevel = 'info' | 'warn'

export interface BootstrapMonitorInit {
  /** First retry delay, doubled after each failure up to `maxDelayMs`; default 1 s */
  initialDelayMs?: number
  /** Longest retry delay, default 60 s */
  maxDelayMs?: number
  /** Time limit of one dial, default 10 s */
  dialTimeoutMs?: number
  /** The node's PQ policy, named in handshake failures */
  pq?: string
}

interface Entry extends BootstrapPeerState {
  peerId: string
  wake?: () => void
}

/**
 * Dials the bootstrap peers, says what happened (one line per change, through `onReport`) and
 * keeps redialling a peer that failed or went away, with exponential backoff. libp2p's own
 * bootstrap discovery dials them too but says nothing; this makes joining visible.
 */
export class BootstrapMonitor {
  /** Receives one line per event: joined, failed (with the reason), lost, joined nobody. */
  onReport: (level: ReportLevel, message: string) => void = () => {}
  private readonly entries: Entry[]
  private readonly init: Required<Omit<BootstrapMonitorInit, 'pq'>> & { pq: string }
  private controller?: AbortController
  private warnedNobody = false
  private readonly onDisconnect = (evt: CustomEvent<{ toString: () => string }>): void => {
    const peer = evt.detail.toString()
    for (const e of this.entries) {
      if (e.peerId === peer) e.wake?.()
    }
  }

  constructor (private readonly libp2p: Libp2p, addrs: string[], init: BootstrapMonitorInit = {}) {
    this.entries = addrs.map(addr => ({ addr, peerId: /\/p2p\/([^/]+)$/.exec(addr)?.[1] ?? '', state: 'joining', attempts: 0 }))
    this.init = { initialDelayMs: init.initialDelayMs ?? 1000, maxDelayMs: init.maxDelayMs ?? 60_000, dialTimeoutMs: init.dialTimeoutMs ?? 10_000, pq: init.pq ?? 'preferred' }
  }

  start (): void {
    if (this.controller != null || this.entries.length === 0) return
    this.controller = new AbortController()
    this.libp2p.addEventListener('peer:disconnect', this.onDisconnect as any)
    for (const e of this.entries) this.run(e, this.controller.signal).catch(() => {})
  }

  stop (): void {
    this.controller?.abort()
    this.controller = undefined
    this.libp2p.removeEventListener('peer:disconnect', this.onDisconnect as any)
    for (const e of this.entries) e.wake?.()
  }

  /** The state of every bootstrap peer, in configuration order. */
  states (): BootstrapPeerState[] {
    return this.entries.map(({ addr, state, attempts, error, retryAt }) => ({ addr, state, attempts, ...(error != null ? { error } : {}), ...(retryAt != null ? { retryAt } : {}) }))
  }

  private connected (e: Entry): boolean {
    return this.libp2p.getConnections().some(c => c.remotePeer.toString() === e.peerId && c.status === 'open')
  }

  private async sleep (e: Entry, ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return
    await new Promise<void>(resolve => {
      const timer = ms === Infinity ? undefined : setTimeout(done, ms)
      function done (): void {
        clearTimeout(timer)
        e.wake = undefined
        resolve()
      }
      e.wake = done
    })
  }

  private async run (e: Entry, signal: AbortSignal): Promise<void> {
    let delay = this.init.initialDelayMs
    while (!signal.aborted) {
      if (this.connected(e)) {
        this.update(e, 'connected')
        delay = this.init.initialDelayMs
        await this.sleep(e, Infinity, signal) // until this peer disconnects or the node stops
        if (signal.aborted) return
        if (!this.connected(e)) this.onReport('warn', `bootstrap peer ${e.addr}: connection lost; redialling`)
        continue
      }
      e.attempts++
      try {
        await this.libp2p.dial(multiaddr(e.addr), { signal: AbortSignal.any([signal, AbortSignal.timeout(this.init.dialTimeoutMs)]) })
        continue
      } catch (err) {
        if (signal.aborted) return
        e.error = this.reason(err)
      }
      e.retryAt = new Date(Date.now() + delay).toISOString()
      this.update(e, 'failed')
      await this.sleep(e, delay, signal)
      delay = Math.min(delay * 2, this.init.maxDelayMs)
    }
  }

  private update (e: Entry, state: 'connected' | 'failed'): void {
    const was = e.state
    e.state = state
    if (state === 'connected') {
      e.error = undefined
      e.retryAt = undefined
      this.warnedNobody = false
      if (was !== 'connected') this.onReport('info', `joined the network through bootstrap peer ${e.addr}`)
      return
    }
    const seconds = Math.max(1, Math.round((Date.parse(e.retryAt ?? '') - Date.now()) / 1000))
    this.onReport('warn', `bootstrap peer ${e.addr}: ${e.error ?? 'dial failed'}; retrying in ${seconds} s`)
    if (!this.warnedNobody && this.entries.every(x => x.state === 'failed') && this.libp2p.getConnections().length === 0) {
      this.warnedNobody = true
      this.onReport('warn', `joined nobody: all ${this.entries.length} bootstrap peer(s) failed; check the addresses (\`aistack id\` on a running node prints them) and that the peers run`)
    }
  }

  /** One line saying why a dial failed. */
  private reason (err: any): string {
    const inner = Array.isArray(err?.errors) && err.errors.length > 0 ? err.errors[0] : err
    const text = [err, inner, inner?.cause].map(x => `${String(x?.name ?? '')} ${String(x?.code ?? '')} ${String(x?.message ?? '')}`).join(' ')
    if (/ECONNREFUSED/.test(text)) return 'connection refused (nothing listens at that address)'
    if (/EHOSTUNREACH|ENETUNREACH/.test(text)) return 'host unreachable'
    if (/TimeoutError|AbortError|aborted|timed out|timeout/i.test(text)) return `no answer within ${this.init.dialTimeoutMs / 1000} s (timed out)`
    if (/encrypt|handshake|noise|Downgrade|protocol selection|multistream|negotiat/i.test(text)) {
      return `the handshake failed (this node runs --pq ${this.init.pq}; the peer may have another PQ policy or not be an aistack node)`
    }
    if (/peer id|PeerId|UnexpectedPeer/i.test(text)) return `the peer at that address has another peer ID (${String(inner?.message ?? err?.message ?? err).split('\n')[0]})`
    return String(inner?.message ?? err?.message ?? err).split('\n')[0]
  }
}
