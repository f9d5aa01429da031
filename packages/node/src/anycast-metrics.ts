/**
 * Gauges of the semantic anycast record cache on `/metrics`: how much a
 * flood of records or tombstones fills it, against its caps
 * (docs/security.md, semantic anycast).
 */
import { Gauge } from 'prom-client'
import type { SemanticAnycast } from '@aistack/semantic-anycast'
import type { Registry } from 'prom-client'

/** Registers `aistack_anycast_cache_{records,tombstones,bytes}`, read from `service` at each scrape */
export function anycastMetrics (registry: Registry, service: () => Pick<SemanticAnycast, 'cacheStats'>): void {
  const stat = (name: string, help: string, pick: (s: ReturnType<SemanticAnycast['cacheStats']>) => number): void => {
    // eslint-disable-next-line no-new
    new Gauge({
      name,
      help,
      registers: [registry],
      collect () { this.set(pick(service().cacheStats())) }
    })
  }
  stat('aistack_anycast_cache_records', 'Capability records held in the cache, this node\'s own included (cap 100,000, 256 per owner)', s => s.records)
  stat('aistack_anycast_cache_tombstones', 'Tombstones held in the cache (cap 100,000, 256 per owner)', s => s.tombstones)
  stat('aistack_anycast_cache_bytes', 'Estimated memory of the cached records in bytes (cap 64 MiB)', s => s.bytes)
}
