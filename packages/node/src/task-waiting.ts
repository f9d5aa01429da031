import type { CapabilityRegistry } from './capabilities/index.js'
import type { SemanticAnycast } from '@aistack/semantic-anycast'
import type { TaskInfo } from '@aistack/task'

/** How long an answer about who serves a capability is reused, in ms */
const CACHE_MS = 10_000
/** Capability names remembered at once */
const MAX_CACHED = 256

/**
 * Says why a submitted task still waits for a worker: this node's own slots are busy, peers
 * serve it but none has taken it yet, or no peer known to this node serves its capability.
 * The task protocol only learns of workers when they offer; this asks semantic anycast which
 * peers serve the capability (its gossip cache, then the DHT), at most once per 10 s a name.
 */
export class WaitingReasons {
  private readonly served = new Map<string, { at: number, peers: Promise<number> }>()

  constructor (private readonly capabilities: CapabilityRegistry, private readonly anycast: () => SemanticAnycast) {}

  /** One line for a task that waits for a worker; undefined for any other task. */
  async reason (task: TaskInfo): Promise<string | undefined> {
    if (task.state !== 'submitted' || task.worker != null || task.children != null) return undefined
    if (task.to != null) return `waiting for peer ${task.to}, the only one allowed to run it, to take it`
    const cap = task.capability
    if (cap == null) return undefined
    if (this.capabilities.has(cap)) {
      const own = this.capabilities.entriesList().find(c => c.capability.name === cap)
      return `waiting for a free slot: this node serves ${cap} (${own?.running ?? 0} of ${own?.limits.concurrency ?? 0} running)`
    }
    const peers = await this.peersServing(cap)
    if (peers === 0) return `no peer serves ${cap}: none known to this node offers it; the task waits until one does (cancel it with \`aistack task cancel ${task.id}\`)`
    return `waiting for a worker: ${peers} peer(s) serve ${cap} but none has taken the task yet (busy, or still learning of it)`
  }

  private async peersServing (cap: string): Promise<number> {
    const now = Date.now()
    const cached = this.served.get(cap)
    if (cached != null && now - cached.at < CACHE_MS) return cached.peers
    if (this.served.size >= MAX_CACHED) this.served.delete(this.served.keys().next().value as string)
    const peers = (async () => {
      const owners = new Set<string>()
      for (const source of ['cache', 'dht'] as const) {
        const found = await this.anycast().find(cap, { k: 100, minSimilarity: 0, source, signal: AbortSignal.timeout(source === 'cache' ? 1000 : 3000) }).catch(() => [])
        for (const c of found) if (c.name === cap) owners.add(c.peerId)
        if (owners.size > 0) break
      }
      return owners.size
    })()
    this.served.set(cap, { at: now, peers })
    return peers
  }
}
