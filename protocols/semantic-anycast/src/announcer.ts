import { CHANGE_REGOSSIP_MS, LIMITS } from './constants.js'
import { DEFAULT_GOSSIP_LIMITS, RateLimiter } from './gossip-guard.js'
import { requestRecords } from './invoke.js'
import { ProvideQueue } from './provide-queue.js'
import { capabilityText, signCapabilityRecord, validateCapability, verifyCapabilityRecord } from './record.js'
import { VerifiedRecords } from './verified.js'
import type { RecordCache } from './cache.js'
import type { GossipLimits } from './gossip-guard.js'
import type { CapabilityProvider, RequestDialer } from './invoke.js'
import type { OwnerLiveness } from './liveness.js'
import type { SimHashLsh } from './lsh.js'
import type { PublishStats } from './provide-queue.js'
import type { CapabilityRecord, LocalCapability } from './record.js'
import type { ContentRoutingLike, DhtLike, PubSubLike, RepublishOptions, ValidatorResult } from './types.js'
import type { Embedder } from '@aistack/embeddings'
import type { Logger, PeerId, PrivateKey } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import type { CID } from 'multiformats/cid'

/** A capability this node publishes: its signed record and the LSH bucket keys it is provided under */
export interface OwnRecord {
  cap: LocalCapability
  text: string
  vector: Float32Array
  keys: CID[]
  /** the signed record as sent on the wire */
  bytes: Uint8Array
}

export interface AnnouncerComponents {
  peerId: PeerId
  privateKey: PrivateKey
  connectionManager: ConnectionManager
  /** addresses put in provider records; providing waits until there is one */
  addressManager?: { getAddresses(): unknown[] }
  /** used when no DHT is given to `start` */
  contentRouting?: ContentRoutingLike
}

export interface AnnouncerInit {
  network: string
  /** sends anti-entropy requests (see `requestRecords`) */
  dialer: RequestDialer
  /** the capabilities gossip topic */
  topic: string
  /** the network-wide base model: record vectors and LSH keys */
  embedder: Embedder
  lsh: SimHashLsh
  /** buckets per table a record is provided under */
  publishProbes: number
  /** lifetime of a signed record, ms */
  recordTtlMs: number
  /** where own and received records go */
  cache: RecordCache
  /** a newer record of an owner marks it live */
  liveness: OwnerLiveness
  provider: CapabilityProvider
  log: Logger
  gossipLimits?: Partial<GossipLimits>
  provideConcurrency?: number
  /** the anycast protocol id, for anti-entropy requests (`GET_RECORDS` with `held`) */
  protocol: string
}

function optional<T> (components: any, name: string): T | undefined {
  try {
    return components[name] ?? undefined
  } catch {
    return undefined
  }
}

function sameCap (a: LocalCapability, b: LocalCapability): boolean {
  return JSON.stringify([a.name, a.description, a.tags ?? [], a.examples ?? [], a.attributes ?? {}]) ===
    JSON.stringify([b.name, b.description, b.tags ?? [], b.examples ?? [], b.attributes ?? {}])
}

/**
 * The publishing side of semantic anycast: this node's own records (signed with a sequence number
 * that only grows), announced on gossip and provided under their LSH bucket keys in the DHT on
 * every change, re-signed on republish, withdrawn with tombstones; anti-entropy when a peer
 * subscribes to the capabilities topic; and the intake of gossiped records (topic validator:
 * rate limits, signature, cache).
 */
export class Announcer {
  private readonly components: AnnouncerComponents
  private readonly init: AnnouncerInit
  private readonly network: string
  private readonly topic: string
  private readonly embedder: Embedder
  private readonly lsh: SimHashLsh
  private readonly publishProbes: number
  private readonly recordTtlMs: number
  private readonly cache: RecordCache
  private readonly liveness: OwnerLiveness
  private readonly log: Logger
  private readonly own = new Map<string, OwnRecord>()
  private readonly provided = new Map<string, CID>()
  private readonly provideQueue: ProvideQueue
  private readonly peerRate: RateLimiter
  private readonly ownerRate: RateLimiter
  private dht?: DhtLike
  private pubsub?: PubSubLike
  private started = false
  private seq = 0n
  private regossipTimer?: ReturnType<typeof setTimeout>
  private unsubscribeProvider?: () => void
  private announcing: Promise<void> = Promise.resolve()
  private shutdown = new AbortController()
  private wholeViewAt?: number
  /** peers an anti-entropy fetch is running for */
  private readonly fetchingHeld = new Set<string>()
  /** records verified lately: the same signed bytes again are not verified twice */
  private readonly verified: VerifiedRecords

  constructor (components: AnnouncerComponents, init: AnnouncerInit) {
    this.components = components
    this.init = init
    this.network = init.network
    this.topic = init.topic
    this.embedder = init.embedder
    this.lsh = init.lsh
    this.publishProbes = init.publishProbes
    this.recordTtlMs = init.recordTtlMs
    this.cache = init.cache
    this.liveness = init.liveness
    this.verified = new VerifiedRecords({ network: init.network, model: init.embedder.id, dim: init.embedder.dim })
    this.log = init.log
    const limits = { ...DEFAULT_GOSSIP_LIMITS, ...init.gossipLimits }
    this.peerRate = new RateLimiter(limits.peerRate, limits.peerBurst)
    this.ownerRate = new RateLimiter(limits.ownerRate, limits.ownerBurst)
    this.provideQueue = new ProvideQueue({
      ready: () => {
        const am = optional<{ getAddresses(): unknown[] }>(this.components, 'addressManager')
        return (am == null || am.getAddresses().length > 0) && this.components.connectionManager.getConnections().length > 0
      },
      wanted: id => this.provided.has(id),
      log: this.log,
      concurrency: init.provideConcurrency,
      timeoutMs: 30_000
    })
    this.onGossip = this.onGossip.bind(this)
    this.onSubscriptionChange = this.onSubscriptionChange.bind(this)
    this.validate = this.validate.bind(this)
  }

  /** Starts providing through `dht` (or the components' content routing) and follows provider changes */
  start (dht?: DhtLike): void {
    this.shutdown = new AbortController()
    this.dht = dht
    this.provideQueue.start(this.dht, this.dht == null ? this.components.contentRouting : undefined)
    this.unsubscribeProvider = this.init.provider.onChange?.(() => {
      this.announce().catch(err => { this.log.error('re-announce failed - %e', err) })
    })
    this.started = true
  }

  /** Joins the capabilities topic on `pubsub` (once it runs) and announces the own records */
  afterStart (pubsub?: PubSubLike): void {
    this.pubsub = pubsub
    if (this.pubsub != null) {
      this.pubsub.topicValidators?.set(this.topic, this.validate)
      this.pubsub.addEventListener('message', this.onGossip)
      this.pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
      this.pubsub.subscribe(this.topic)
    }
    this.announce().catch(err => { this.log.error('announce failed - %e', err) })
  }

  /** Withdraws every own record (tombstones on gossip, keys no longer re-provided); at most ~2 s */
  async beforeStop (): Promise<void> {
    const signal = AbortSignal.timeout(2000)
    try {
      await this.announcing
    } catch {}
    const names = [...this.own.keys()]
    await Promise.all(names.map(async name => this.withdraw(name, signal).catch(() => {})))
  }

  stop (): void {
    this.started = false
    this.shutdown.abort()
    this.provideQueue.stop()
    clearTimeout(this.regossipTimer)
    this.regossipTimer = undefined
    this.unsubscribeProvider?.()
    if (this.pubsub != null) {
      this.pubsub.removeEventListener('message', this.onGossip)
      this.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
      if (this.pubsub.topicValidators?.get(this.topic) === this.validate) this.pubsub.topicValidators.delete(this.topic)
      try { this.pubsub.unsubscribe(this.topic) } catch {}
    }
  }

  /** Names of the capabilities this node publishes */
  names (): string[] {
    return [...this.own.keys()]
  }

  /** The capability `name` as announced, if it is */
  capability (name: string): LocalCapability | undefined {
    return this.own.get(name)?.cap
  }

  /**
   * Unix time (ms) of the last anti-entropy answer that held every record its sender knew (fewer
   * than `LIMITS.maxRecordsPerResponse`): the cache then holds the network as that neighbour saw
   * it. Undefined before one arrived.
   */
  neighbourViewAt (): number | undefined {
    return this.wholeViewAt
  }

  /** The own records, signed, with their bucket keys */
  records (): IterableIterator<OwnRecord> {
    return this.own.values()
  }

  private nextSeq (): bigint {
    const now = BigInt(Date.now()) * 1000n
    this.seq = now > this.seq ? now : this.seq + 1n
    return this.seq
  }

  /**
   * Bring published records in line with the provider: sign and publish new or
   * changed capabilities, withdraw removed ones. Serialised.
   */
  async announce (): Promise<void> {
    const run = this.announcing.catch(() => {}).then(async () => this.sync(false))
    this.announcing = run
    return run
  }

  /**
   * Re-sign every record with a fresh expiry and gossip it; provide its keys
   * again unless `provide` is false. Resolves once the records are signed
   * and gossiped; the DHT part runs in the background (see `whenPublished`).
   */
  async republish (options: RepublishOptions = {}): Promise<void> {
    const run = this.announcing.catch(() => {}).then(async () => this.sync(true, options.provide !== false))
    this.announcing = run
    return run
  }

  /**
   * Resolves once the records of every announce or republish started so far
   * are signed and gossiped and their bucket keys have been provided in the
   * DHT (or failed to be, and wait for a retry; see `publishing()`), or the service stopped.
   */
  async whenPublished (): Promise<PublishStats> {
    while (true) {
      const current = this.announcing
      await current.catch(() => {})
      await this.provideQueue.whenIdle()
      // an announce started meanwhile (a provider change) is waited for too
      if (current === this.announcing && (this.provideQueue.idle || !this.started)) return this.publishing()
    }
  }

  /** Counters of the DHT side of publishing */
  publishing (): PublishStats {
    return this.provideQueue.publishing()
  }

  private async sync (all: boolean, provideAll = all): Promise<void> {
    if (!this.started) return
    const caps = this.init.provider.list()
    const wanted = new Map(caps.map(c => [c.name, c]))
    for (const name of [...this.own.keys()]) {
      if (!wanted.has(name)) await this.withdraw(name, this.shutdown.signal)
    }
    const changed = caps.filter(c => {
      const cur = this.own.get(c.name)
      return all || cur == null || !sameCap(cur.cap, c)
    })
    if (changed.length === 0) return
    for (const c of changed) validateCapability(c)
    const texts = changed.map(capabilityText)
    const needEmbed = changed.map((c, i) => this.own.get(c.name)?.text === texts[i] ? undefined : i).filter((i): i is number => i != null)
    const vectors = needEmbed.length > 0 ? await this.embedder.embed(needEmbed.map(i => texts[i]), { signal: this.shutdown.signal }) : []
    const owner = this.components.peerId.toString()
    const toProvide: CID[] = []
    for (let i = 0; i < changed.length; i++) {
      const cap = changed[i]
      const at = needEmbed.indexOf(i)
      const vector = at >= 0 ? vectors[at] : this.own.get(cap.name)?.vector
      if (vector == null || vector.length !== this.embedder.dim) throw new Error(`embedder returned a bad vector for ${cap.name}`)
      const bytes = await signCapabilityRecord(this.components.privateKey, cap, {
        network: this.network,
        owner,
        model: this.embedder.id,
        vector,
        seq: this.nextSeq(),
        expiresAt: Date.now() + this.recordTtlMs
      })
      const record = await verifyCapabilityRecord(bytes, { network: this.network, model: this.embedder.id, dim: this.embedder.dim })
      const keys = this.lsh.probes(record.vector, this.publishProbes).map(b => this.lsh.key(b))
      const prev = this.own.get(cap.name)
      this.own.set(cap.name, { cap, text: texts[i], vector, keys, bytes })
      this.cache.put(record)
      for (const k of keys) {
        const id = k.toString()
        if (provideAll || !this.provided.has(id)) toProvide.push(k)
        this.provided.set(id, k)
      }
      if (prev != null) await this.releaseKeys(prev.keys)
      await this.gossipChange(bytes, () => this.own.get(cap.name)?.bytes === bytes)
    }
    this.provideQueue.enqueue(toProvide)
  }

  /** Stop providing keys no current record uses */
  private async releaseKeys (keys: CID[]): Promise<void> {
    const inUse = new Set<string>()
    for (const r of this.own.values()) for (const k of r.keys) inUse.add(k.toString())
    for (const k of keys) {
      const id = k.toString()
      if (inUse.has(id)) continue
      this.provided.delete(id)
      try {
        if (this.dht != null) await this.dht.cancelReprovide(k)
        else await this.components.contentRouting?.cancelReprovide(k)
      } catch {}
    }
  }

  private async withdraw (name: string, signal: AbortSignal): Promise<void> {
    const own = this.own.get(name)
    if (own == null) return
    this.own.delete(name)
    const bytes = await signCapabilityRecord(this.components.privateKey, own.cap, {
      network: this.network,
      owner: this.components.peerId.toString(),
      model: this.embedder.id,
      seq: this.nextSeq(),
      expiresAt: Date.now() + this.recordTtlMs,
      tombstone: true
    })
    const tomb = await verifyCapabilityRecord(bytes, { network: this.network })
    this.cache.put(tomb)
    signal.throwIfAborted()
    await this.gossipChange(bytes, () => !this.own.has(name))
    await this.releaseKeys(own.keys)
  }

  /**
   * Gossip a new or changed record, or a tombstone, now and once more `CHANGE_REGOSSIP_MS` later
   * while `current()` still holds: a message gossipsub lost on its way to a node (a mesh still
   * forming, a busy peer) would otherwise reach it only with the next republish or lookup. Where
   * the first copy arrived, the second is a confirmation (same bytes, not verified again).
   */
  private async gossipChange (bytes: Uint8Array, current: () => boolean): Promise<void> {
    await this.gossip(bytes)
    const timer = setTimeout(() => {
      if (this.started && current()) this.gossip(bytes).catch(() => {})
    }, CHANGE_REGOSSIP_MS)
    timer.unref?.()
  }

  private async gossip (bytes: Uint8Array): Promise<void> {
    if (this.pubsub == null) return
    try {
      await this.pubsub.publish(this.topic, bytes)
    } catch (err: any) {
      this.log('publish failed - %s', err?.message)
    }
  }

  /**
   * Anti-entropy when a peer subscribes to the capabilities topic: fetch the
   * records it holds, its own and those of other owners (it is a neighbour, and
   * may have joined long before this node), and gossip this node's records
   * again soon (coalesced over 500 ms) so that the newcomer, and anyone it
   * relays to, has them whatever the order in which nodes started.
   */
  private onSubscriptionChange (evt: CustomEvent<{ peerId: PeerId, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void {
    if (!this.started) return
    const { peerId, subscriptions } = evt.detail
    if (!subscriptions.some(s => s.topic === this.topic && s.subscribe)) return
    // one anti-entropy fetch per peer at a time: a peer that subscribes again and again gets no more
    const id = peerId.toString()
    if (!this.fetchingHeld.has(id)) {
      this.fetchingHeld.add(id)
      this.fetchHeld(peerId, AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(10_000)])).then(n => {
        this.log('anti-entropy: %d records from new subscriber %p', n, peerId)
      }, err => {
        this.log('anti-entropy fetch from %p failed - %s', peerId, err?.message)
      }).finally(() => { this.fetchingHeld.delete(id) })
    }
    if (this.regossipTimer == null && this.own.size > 0) {
      this.regossipTimer = setTimeout(() => {
        this.regossipTimer = undefined
        if (!this.started) return
        for (const own of this.own.values()) this.gossip(own.bytes).catch(() => {})
      }, 500)
      this.regossipTimer.unref?.()
    }
  }

  /**
   * Ask a neighbour for every live record it holds (`GET_RECORDS` with `held`), at most
   * `LIMITS.maxRecordsPerResponse`; each is verified against its owner's signature and cached as
   * if gossiped (owner rate limit included). Resolves to the number of records taken; rejects on a
   * transport error, which marks the peer failing.
   */
  private async fetchHeld (peer: PeerId, signal: AbortSignal): Promise<number> {
    const owner = peer.toString()
    const records = await requestRecords(this.init.dialer, this.init.protocol, { id: peer, multiaddrs: [] }, { model: this.embedder.id, held: true }, this.liveness, signal)
    // an empty answer says nothing of the network (a neighbour that just started, or a hostile one)
    if (records.length > 0 && records.length < LIMITS.maxRecordsPerResponse) this.wholeViewAt = Date.now()
    let taken = 0
    for (const bytes of records) {
      try {
        const record = await this.verified.verify(bytes)
        if (record.owner === this.components.peerId.toString() || record.model !== this.embedder.id) continue
        // a relayed record is rate limited per owner like a gossiped one; the sender's own are not
        if (record.owner !== owner && !this.ownerRate.take(record.owner)) continue
        const result = this.cacheRecord(record)
        if (result !== 'full') taken++
      } catch (err: any) {
        this.log('bad record from %p - %s', peer, err?.message)
      }
    }
    return taken
  }

  /**
   * Topic validator of the capabilities topic: rate limits (per neighbour:
   * reject, which costs it peer score; per owner: ignore), then verify and
   * cache. Valid records are forwarded even when already held, so that a
   * re-announcement reaches peers that missed the first one.
   */
  private async validate (peer: PeerId, message: { data: Uint8Array }): Promise<ValidatorResult> {
    if (!this.peerRate.take(peer.toString())) return 'reject'
    let record: CapabilityRecord
    try {
      record = await this.verified.verify(message.data)
    } catch (err: any) {
      this.log('rejected gossiped record from %p - %s', peer, err?.message)
      return 'reject'
    }
    if (record.owner === this.components.peerId.toString()) return 'accept'
    if (!record.tombstone && record.model !== this.embedder.id) return 'ignore'
    const held = this.cache.get(record.owner, record.name)
    if (held != null && held.seq === record.seq) {
      this.cache.put(record)
      return 'accept'
    }
    if (!this.ownerRate.take(record.owner)) return 'ignore'
    const result = this.cacheRecord(record)
    return result === 'full' ? 'ignore' : 'accept'
  }

  private onGossip (evt: CustomEvent<{ topic: string, data: Uint8Array }>): void {
    if (evt.detail.topic !== this.topic) return
    // with a topic validator the record was verified and cached there
    if (this.pubsub?.topicValidators != null) return
    this.accept(evt.detail.data).catch(err => {
      this.log('rejected gossiped record - %s', err.message)
    })
  }

  private cacheRecord (record: CapabilityRecord): ReturnType<RecordCache['put']> {
    const result = this.cache.put(record)
    // a newer record than the one held says the owner was alive when it signed it
    if (result === 'added' || result === 'updated') this.liveness.succeeded(record.owner)
    return result
  }

  /** Verify a signed record and cache it; throws InvalidRecordError */
  async accept (bytes: Uint8Array): Promise<CapabilityRecord> {
    const record = await this.verified.verify(bytes)
    if (record.owner === this.components.peerId.toString()) return record
    if (record.tombstone || record.model === this.embedder.id) this.cacheRecord(record)
    return record
  }
}
