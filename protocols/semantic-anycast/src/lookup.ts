import { makeRoom, setNewest } from './bounded.js'
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
  /** keys answered from the short-lived provider cache, or by a query another lookup was running */
  keysShared: number
  /** keys given up at the soft budget (neighbouring buckets; the query's own buckets are always waited for) */
  keysAbandoned: number
  /** record fetches still running when the lookup answered (they go on filling the cache) */
  fetchesPending: number
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
    keysShared: 0,
    keysAbandoned: 0,
    fetchesPending: 0,
    providers: [],
    fetches: [],
    recordsFetched: 0,
    reranked: 0,
    phases: { queueMs: 0, embedMs: 0, cacheMs: 0, providersMs: 0, fetchMs: 0, rerankMs: 0 }
  }
}

/**
 * The providers of bucket keys as found lately, shared by the lookups of one
 * node: a key asked within `ttlMs` is answered from here at no message, and a
 * key being asked by one lookup is joined by the others instead of asked
 * again. Bounded to `maxKeys` entries (the oldest go first) of at most
 * `maxProviders` providers each. Only complete answers naming providers are
 * kept (not a query cut by a budget, nor an empty answer).
 */
export class KeyProviders {
  readonly ttlMs: number
  readonly maxKeys: number
  readonly maxProviders: number
  private readonly done = new Map<string, { at: number, providers: PeerInfo[] }>()
  private readonly running = new Map<string, Promise<PeerInfo[] | undefined>>()

  constructor (init: { ttlMs?: number, maxKeys?: number, maxProviders?: number } = {}) {
    this.ttlMs = init.ttlMs ?? 15_000
    this.maxKeys = init.maxKeys ?? 4096
    this.maxProviders = init.maxProviders ?? 64
  }

  /** Providers of the key found within `ttlMs`, or undefined */
  fresh (key: string, now = Date.now()): PeerInfo[] | undefined {
    const e = this.done.get(key)
    if (e == null) return undefined
    if (now - e.at > this.ttlMs) {
      this.done.delete(key)
      return undefined
    }
    return e.providers
  }

  /** The query of the key another lookup is running (resolves undefined if it was cut short) */
  pending (key: string): Promise<PeerInfo[] | undefined> | undefined {
    return this.running.get(key)
  }

  /** Runs the query of a key, shared with lookups asking for it meanwhile */
  async run (key: string, query: () => Promise<PeerInfo[] | undefined>): Promise<PeerInfo[] | undefined> {
    const run = query().then(providers => {
      // only answers naming providers are kept: an empty one may come from a routing table
      // still filling (a node that just joined asks peers that are not the closest)
      if (providers != null && providers.length > 0 && this.ttlMs > 0) {
        setNewest(this.done, key, { at: Date.now(), providers: providers.slice(0, this.maxProviders) }, this.maxKeys)
      }
      return providers
    }, () => undefined).finally(() => { this.running.delete(key) })
    this.running.set(key, run)
    return run
  }

  /** Forget everything (keys provided or withdrawn by this node change the answers) */
  clear (): void {
    this.done.clear()
  }

  get size (): number {
    return this.done.size
  }
}

/**
 * Record fetches of this node's lookups, per provider: a provider asked
 * within `ttlMs` for every key a lookup wants is not asked again (its
 * records are in the cache), one asked for some of them is asked only for
 * the rest, and lookups at once share a fetch. Bounded to `maxPeers` peers
 * (the oldest go first).
 */
export class PeerFetches {
  readonly ttlMs: number
  readonly maxPeers: number
  private readonly peers = new Map<string, { at: number, keys: Set<string>, records: Map<string, CapabilityRecord>, run?: Promise<unknown> }>()

  constructor (init: { ttlMs?: number, maxPeers?: number } = {}) {
    this.ttlMs = init.ttlMs ?? 15_000
    this.maxPeers = init.maxPeers ?? 4096
  }

  /**
   * The provider's records in (at least) the given buckets, through `fetch`
   * for the buckets not asked lately. Throws what `fetch` throws.
   */
  async get (peer: string, keys: CID[], fetch: (keys: CID[]) => Promise<CapabilityRecord[]>, now = Date.now()): Promise<CapabilityRecord[]> {
    let e = this.peers.get(peer)
    if (e != null && now - e.at > this.ttlMs && e.run == null) {
      this.peers.delete(peer)
      e = undefined
    }
    if (e == null) {
      makeRoom(this.peers, this.maxPeers)
      e = { at: now, keys: new Set(), records: new Map() }
      this.peers.set(peer, e)
    }
    const entry = e
    // a fetch running for this peer may cover the keys: wait for it first
    while (entry.run != null) {
      await entry.run.catch(() => {})
    }
    const missing = keys.filter(k => !entry.keys.has(k.toString()))
    if (missing.length > 0) {
      const run = fetch(missing).then(rs => {
        for (const k of missing) entry.keys.add(k.toString())
        for (const r of rs) entry.records.set(r.name, r)
        entry.at = Date.now()
      })
      entry.run = run
      try {
        await run
      } catch (err) {
        if (entry.keys.size === 0) this.peers.delete(peer)
        throw err
      } finally {
        entry.run = undefined
      }
    }
    return [...entry.records.values()]
  }

  /** Forget a peer (its records changed, or it failed) */
  forget (peer: string): void {
    this.peers.delete(peer)
  }

  get size (): number {
    return this.peers.size
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
  /**
   * soft budget of the lookup (ms): past it, queries of neighbouring buckets
   * are given up, those of the query's own buckets end at their next answer,
   * and the lookup answers without waiting for record fetches still running
   * longer than `softMs / 2` more; 0 turns it off
   */
  softMs?: number
  /**
   * whether the records found so far answer the query well enough (say, k of
   * them above the confidence threshold): the soft budget cuts a lookup only
   * then (always when absent)
   */
  enough?: (records: CapabilityRecord[]) => boolean
  /** the first `primaryKeys` keys are the query's own buckets (always waited for, within the hard budget) */
  primaryKeys?: number
  /** shared provider answers of recent and running key queries */
  keyCache?: KeyProviders
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
        maybeCut()
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
  const primary = Math.min(keys.length, init.primaryKeys ?? keys.length)
  const softMs = init.softMs ?? 0
  // the soft budget cuts the queries of neighbouring buckets
  const soft = new AbortController()
  const late = new AbortController()
  const enough = (): boolean => init.enough == null || init.enough(records)
  const maybeCut = (): void => {
    if (late.signal.aborted && !soft.signal.aborted && enough()) soft.abort(new Error('soft budget'))
  }
  const softTimer = softMs > 0 ? setTimeout(() => { late.abort(new Error('soft budget')); maybeCut() }, softMs) : undefined
  const secondarySignal = AbortSignal.any([providersSignal, soft.signal])

  /** One key's provider query: the providers it named, or undefined when cut short */
  const query = async (key: CID, outer: AbortSignal): Promise<PeerInfo[] | undefined> => {
    const found: PeerInfo[] = []
    let complete = false
    const keySignal = outer
    try {
      if (init.dht != null) {
        // providers of a key are stored on the peers closest to it, which
        // answer first, each with the whole set: stop the query after the
        // first answer naming providers (this node's own provider store
        // counts, at no message), or after a few answers without any, or
        // after any answer once the soft budget is spent
        let responses = 0
        let providerAnswers = 0
        for await (const ev of init.dht.findProviders(key, { signal: keySignal })) {
          if (ev.name === 'SEND_QUERY') explain.dhtMessages++
          if (ev.name === 'PROVIDER') {
            for (const p of ev.providers as PeerInfo[]) {
              found.push(p)
              addProvider(p)
            }
            if (++providerAnswers >= init.providerAnswersPerKey) break
          }
          if (ev.name === 'PEER_RESPONSE' && !ev.from.equals(init.self) && (++responses >= init.responsesPerKey || soft.signal.aborted)) break
        }
        complete = !keySignal.aborted
      } else if (init.contentRouting != null) {
        for await (const p of init.contentRouting.findProviders(key, { signal: keySignal })) {
          found.push(p)
          addProvider(p)
        }
        complete = !keySignal.aborted
      }
    } catch (err: any) {
      if (!keySignal.aborted) init.log('findProviders %s failed - %s', key, err?.message)
    }
    return complete ? found : undefined
  }

  let next = 0
  const worker = async (): Promise<void> => {
    while (next < keys.length && !providersSignal.aborted) {
      const i = next++
      const key = keys[i]
      const isPrimary = i < primary
      if (!isPrimary && soft.signal.aborted) {
        explain.keysAbandoned++
        continue
      }
      const keySignal = isPrimary ? providersSignal : secondarySignal
      const id = key.toString()
      const cached = init.keyCache?.fresh(id)
      if (cached != null) {
        explain.keysShared++
        for (const p of cached) addProvider(p)
        continue
      }
      const running = init.keyCache?.pending(id)
      if (running != null) {
        const got = await Promise.race([running, new Promise<undefined>(resolve => {
          if (keySignal.aborted) resolve(undefined)
          keySignal.addEventListener('abort', () => { resolve(undefined) }, { once: true })
        })])
        if (got != null) {
          explain.keysShared++
          for (const p of got) addProvider(p)
          continue
        }
        if (keySignal.aborted) {
          if (!isPrimary) explain.keysAbandoned++
          continue
        }
      }
      const got = init.keyCache != null ? await init.keyCache.run(id, async () => query(key, keySignal)) : await query(key, keySignal)
      if (got == null && soft.signal.aborted) explain.keysAbandoned++
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(init.concurrency, keys.length) }, worker))
  } finally {
    clearTimeout(softTimer)
  }
  const t1 = performance.now()
  explain.phases.providersMs = Math.round(t1 - t0)
  if (fetchers > 0 || fetchQueue.length > 0) {
    fetchDone = new Promise<void>(resolve => { fetchWaiters.push(resolve) })
    // once the soft budget cut the lookup, fetches get half of it again; later ones go on filling the cache
    const graceMs = softMs > 0 && soft.signal.aborted ? Math.max(softMs / 2, softMs - (t1 - t0)) : 0
    if (graceMs > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined
      await Promise.race([fetchDone, new Promise<void>(resolve => { timer = setTimeout(resolve, graceMs) })])
      clearTimeout(timer)
    } else {
      await fetchDone
    }
    explain.fetchesPending = fetchers + fetchQueue.length
  }
  // fetches overlap the provider queries: the fetch phase is counted from the end of those
  explain.phases.fetchMs = Math.round(Math.max(0, (explain.fetchesPending > 0 ? performance.now() : lastFetchEnd) - t1))
  // a snapshot: fetches still running do not change what was returned
  return { records: records.slice(), self: selfNamed }
}
