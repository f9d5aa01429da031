import type { CapabilityRecord } from './record.js'
import type { Logger, PeerId, PeerInfo } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** The parts of a Kad-DHT a lookup uses (`@libp2p/kad-dht` fits) */
export interface FindProvidersDht {
  findProviders(key: CID, options?: { signal?: AbortSignal }): AsyncIterable<any>
}

/** The parts of libp2p content routing a lookup uses when there is no `dht` service */
export interface FindProvidersRouting {
  findProviders(key: CID, options?: { signal?: AbortSignal }): AsyncIterable<PeerInfo>
}

/** One provider asked for its records during a lookup */
export interface ExplainedFetch {
  peerId: string
  /** records it returned (0 on failure) */
  records: number
  ms: number
  /** set when the fetch failed, or `skipped: backing off` for an owner known to be failing */
  error?: string
}

/**
 * What a lookup did, for `aistack find --explain`: the keys probed, the
 * providers asked, the records fetched and the time per phase (ms).
 */
export interface Explain {
  /** where the answer came from: the cache alone, or the DHT too (and why) */
  path: 'cache' | 'dht' | 'cache+dht' | 'own'
  /** why the DHT was or was not asked */
  reason: string
  /** the answer came from the cache and a DHT lookup refreshes it in the background */
  refreshing: boolean
  /** LSH bucket keys probed (CID strings, first 32) */
  keys: string[]
  keyCount: number
  /** DHT query messages sent */
  dhtMessages: number
  /** providers named (this node included when it is one) */
  providers: string[]
  fetches: ExplainedFetch[]
  recordsFetched: number
  /** candidates re-ranked with the node's own model (0 when it is the base model) */
  reranked: number
  phases: { queueMs: number, embedMs: number, cacheMs: number, providersMs: number, fetchMs: number, rerankMs: number }
  /** lookups running and waiting on this node when this one was queued */
  load?: { running: number, queued: number }
}

export function emptyExplain (): Explain {
  return {
    path: 'cache',
    reason: '',
    refreshing: false,
    keys: [],
    keyCount: 0,
    dhtMessages: 0,
    providers: [],
    fetches: [],
    recordsFetched: 0,
    reranked: 0,
    phases: { queueMs: 0, embedMs: 0, cacheMs: 0, providersMs: 0, fetchMs: 0, rerankMs: 0 }
  }
}

export interface DhtLookupInit {
  self: PeerId
  dht?: FindProvidersDht
  contentRouting?: FindProvidersRouting
  log: Logger
  /** fetch a provider's records in the given buckets (verified, cached) */
  fetch: (peer: PeerInfo, keys: CID[], signal: AbortSignal) => Promise<CapabilityRecord[]>
  /** providers not asked (owners in their failure back-off) */
  skip?: (peerId: string) => boolean
  /** parallel provider queries and parallel fetches, each */
  concurrency: number
  /** a key's provider query stops after this many peer answers */
  responsesPerKey: number
  /** ... or once this many answers named providers */
  providerAnswersPerKey: number
  /** budget of the provider queries (ms) */
  providersTimeoutMs: number
  /** budget of each record fetch (ms) */
  fetchTimeoutMs: number
}

/**
 * DHT path of a lookup: find the providers of each bucket key and, as soon as
 * a provider is named, fetch its records in every probed bucket (pipelined,
 * `concurrency` at a time). Finding providers and fetching records have
 * separate budgets; what arrived before a budget ran out is kept. Returns the
 * fetched records and whether this node itself was named as a provider.
 */
export async function dhtLookup (init: DhtLookupInit, keys: CID[], explain: Explain, signal?: AbortSignal): Promise<{ records: CapabilityRecord[], self: boolean }> {
  const t0 = performance.now()
  explain.keyCount = keys.length
  explain.keys = keys.slice(0, 32).map(k => k.toString())
  const self = init.self.toString()
  let selfNamed = false
  const seen = new Set<string>()
  const records: CapabilityRecord[] = []
  const fetchQueue: PeerInfo[] = []
  let fetchers = 0
  let fetchDone: Promise<void> = Promise.resolve()
  const fetchWaiters: Array<() => void> = []
  let lastFetchEnd = t0

  const runFetches = (): void => {
    while (fetchers < init.concurrency && fetchQueue.length > 0) {
      const p = fetchQueue.shift() as PeerInfo
      fetchers++
      const started = performance.now()
      const sig = AbortSignal.any([AbortSignal.timeout(init.fetchTimeoutMs), ...(signal != null ? [signal] : [])])
      const entry: ExplainedFetch = { peerId: p.id.toString(), records: 0, ms: 0 }
      explain.fetches.push(entry)
      init.fetch(p, keys, sig).then(rs => {
        entry.records = rs.length
        explain.recordsFetched += rs.length
        records.push(...rs)
      }, (err: any) => {
        entry.error = String(err?.message ?? err).slice(0, 200)
        init.log('fetching records from %p failed - %s', p.id, entry.error)
      }).finally(() => {
        entry.ms = Math.round(performance.now() - started)
        lastFetchEnd = performance.now()
        fetchers--
        runFetches()
        if (fetchers === 0 && fetchQueue.length === 0) fetchWaiters.splice(0).forEach(w => { w() })
      })
    }
  }
  const addProvider = (info: PeerInfo): void => {
    const id = info.id.toString()
    if (seen.has(id)) return
    seen.add(id)
    // this node counts as a provider; its own records need no fetch
    explain.providers.push(id)
    if (id === self) {
      selfNamed = true
      return
    }
    if (init.skip?.(id) === true) {
      explain.fetches.push({ peerId: id, records: 0, ms: 0, error: 'skipped: backing off after failures' })
      return
    }
    fetchQueue.push(info)
    runFetches()
  }

  const providersSignal = AbortSignal.any([AbortSignal.timeout(init.providersTimeoutMs), ...(signal != null ? [signal] : [])])
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < keys.length && !providersSignal.aborted) {
      const key = keys[next++]
      try {
        if (init.dht != null) {
          // providers of a key are stored on the peers closest to it, which
          // answer first, each with the whole set: stop the query after the
          // first answer naming providers (this node's own provider store
          // counts, at no message), or after a few answers without any
          let responses = 0
          let providerAnswers = 0
          for await (const ev of init.dht.findProviders(key, { signal: providersSignal })) {
            if (ev.name === 'SEND_QUERY') explain.dhtMessages++
            if (ev.name === 'PROVIDER') {
              for (const p of ev.providers as PeerInfo[]) addProvider(p)
              if (++providerAnswers >= init.providerAnswersPerKey) break
            }
            if (ev.name === 'PEER_RESPONSE' && !ev.from.equals(init.self) && ++responses >= init.responsesPerKey) break
          }
        } else if (init.contentRouting != null) {
          for await (const p of init.contentRouting.findProviders(key, { signal: providersSignal })) addProvider(p)
        }
      } catch (err: any) {
        init.log('findProviders %s failed - %s', key, err?.message)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(init.concurrency, keys.length) }, worker))
  const t1 = performance.now()
  explain.phases.providersMs = Math.round(t1 - t0)
  if (fetchers > 0 || fetchQueue.length > 0) {
    fetchDone = new Promise<void>(resolve => { fetchWaiters.push(resolve) })
    await fetchDone
  }
  // fetches overlap the provider queries: the fetch phase is counted from the end of those
  explain.phases.fetchMs = Math.round(Math.max(0, lastFetchEnd - t1))
  return { records, self: selfNamed }
}
