import { randomBytes } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { toString as u8ToString } from 'uint8arrays/to-string'
import { fromString as u8FromString } from 'uint8arrays/from-string'
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_TIMEOUT_MS } from './constants.js'
import { AllCandidatesFailedError, NoCandidatesError, RemoteError, TooLargeError } from './errors.js'
import { askMany } from './ask-many.js'
import { Request, Response } from './pb/anycast.js'
import { setNewest } from './bounded.js'
import { DEFAULT_SCORE_WEIGHTS, MAX_OBSERVED, ObservedLoads, score, scoreInputs } from './score.js'
import { attemptAttributes } from './trace-path.js'
import { VECTOR_ENCODINGS, VectorEncoding, unpackVectors } from './vectors.js'
import type { AskManyOptions, AskManyResult } from './ask-many.js'
import type { RecordCache } from './cache.js'
import type { InvokeTransport, LocalInvoker } from './invoke.js'
import type { OwnerLiveness } from './liveness.js'
import type { CapabilityRecord } from './record.js'
import type { AnycastSpan, AskOptions, AskResult, Candidate, FindOptions, ResultSource, ScoreWeights, SemanticAnycastInit } from './types.js'

/** What the ask path needs of the service */
export interface AskerInit {
  init: SemanticAnycastInit
  /** this node's peer id (string form) */
  self: () => string
  cache: RecordCache
  liveness: OwnerLiveness
  invoker: LocalInvoker
  /** the transport in use (the service makes a new one on each start) */
  transport: () => InvokeTransport
  /** aborted when the service stops */
  shutdown: () => AbortSignal
  find: (query: string, options: FindOptions) => Promise<Candidate[]>
}

/**
 * The ask path of semantic anycast: scores candidates (similarity less load,
 * latency and error penalties, from the owners' last answers or the load
 * source), sends a request to the best one and fails over to the next, and
 * keeps what each answer said of its owner (round-trip time, load, liveness).
 */
export class Asker {
  private readonly deps: AskerInit
  private readonly peerLoad = new ObservedLoads()
  /** smoothed round-trip time per owner (ms), at most `MAX_OBSERVED` */
  private readonly rtt = new Map<string, number>()
  private readonly weights: ScoreWeights
  /** how this node's requests take numeric vectors in answers */
  private readonly vectors: VectorEncoding

  /** @throws TypeError when `init.vectors` names no encoding */
  constructor (deps: AskerInit) {
    this.deps = deps
    this.weights = { ...DEFAULT_SCORE_WEIGHTS, ...deps.init.weights }
    const vectors = deps.init.vectors ?? 'f32'
    if (!Object.hasOwn(VECTOR_ENCODINGS, vectors)) throw new TypeError(`vectors must be one of ${Object.keys(VECTOR_ENCODINGS).join(', ')}, not "${String(vectors)}"`)
    this.vectors = VECTOR_ENCODINGS[vectors]
  }

  /** A record as an ask candidate: its similarity, the owner's load, latency and error rate, its score */
  candidate (record: CapabilityRecord, similarity: number, source: ResultSource, exact: boolean): Candidate {
    // load, latency and error rate: the last anycast answer, or the load source when fresher
    const inputs = scoreInputs(record.owner, record.name, this.peerLoad.get(`${record.owner}/${record.name}`), this.rtt.get(record.owner), this.deps.init.loadSource)
    const own = source === 'own'
    return {
      peerId: record.owner,
      name: record.name,
      description: record.description,
      tags: record.tags,
      model: record.model,
      attributes: record.attributes,
      similarity,
      load: inputs.load,
      latencyMs: inputs.latencyMs,
      errorRate: inputs.errorRate,
      loadFrom: inputs.loadFrom,
      score: score(similarity, inputs, this.weights),
      exact,
      source,
      confirmedAt: own ? Date.now() : this.deps.cache.confirmedAt(record.owner, record.name) ?? Date.now(),
      liveness: own ? 'live' : this.deps.liveness.state(record.owner)
    }
  }

  /**
   * Send the request to the best candidate, failing over to the next ones.
   * An owner that fails is demoted at once; when every candidate failed and
   * time is left, the network is searched again (fresh lookup) once.
   */
  async ask (query: string, input: unknown, options: AskOptions = {}): Promise<AskResult> {
    const started = performance.now()
    const timeoutMs = options.timeoutMs ?? this.deps.init.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const deadline = started + timeoutMs
    const maxAttempts = Math.max(1, options.maxAttempts ?? this.deps.init.maxAttempts ?? DEFAULT_MAX_ATTEMPTS)
    const inputBytes = u8FromString(JSON.stringify(input ?? null))
    const maxInput = this.deps.init.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES
    if (inputBytes.byteLength > maxInput) throw new TooLargeError(`input is ${inputBytes.byteLength} bytes, limit ${maxInput}`)
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(options.signal != null ? [options.signal] : [])])
    const k = Math.max(maxAttempts * 2, 5)
    // a candidate is tried only if it is near enough to the best one whose owner is not demoted:
    // a capability that failed on a live owner keeps the bar (an unrelated one is not run in its
    // place), an owner a request failed on lowers it to the best live alternative; a connection
    // closed with an error alone does not (a busy owner's missed keep-alive must not send its
    // asks to an unrelated capability)
    const relative = options.minRelativeSimilarity ?? 0
    const near = (c: Candidate, all: Candidate[]): boolean => {
      const healthy = all.filter(x => x.peerId === this.deps.self() || !this.deps.liveness.demoted(x.peerId))
      const best = Math.max(0, ...(healthy.length > 0 ? healthy : all).map(x => x.similarity))
      return c.similarity >= best * relative
    }
    let candidates = await this.deps.find(query, { k, signal, minSimilarity: options.minSimilarity })
    if (candidates.length === 0) throw new NoCandidatesError(`no peer offers a capability matching "${query.slice(0, 80)}"`)
    const failures: Array<{ peerId: string, capability: string, error: string }> = []
    const tried = new Set<string>()
    let attempts = 0
    for (let round = 0; round < 2; round++) {
      const thisRound = new Set<string>()
      // the first candidate in order still to try; scanned again after each failure, since a
      // failed owner may lower the bar for candidates passed over before
      const next = (): Candidate | undefined => candidates.find(c => {
        const id = `${c.peerId}/${c.name}`
        if (thisRound.has(id)) return false
        // a second round retries an owner only if it was confirmed live since
        if (tried.has(id) && c.liveness !== 'live') return false
        return near(c, candidates)
      })
      while (thisRound.size < maxAttempts && !signal.aborted) {
        const c = next()
        if (c == null) break
        thisRound.add(`${c.peerId}/${c.name}`)
        tried.add(`${c.peerId}/${c.name}`)
        attempts++
        const roundAttempts = thisRound.size
        const remaining = deadline - performance.now()
        const left = Math.min(maxAttempts - roundAttempts + 1, candidates.length - roundAttempts + 1)
        // leave time for the next candidates unless this is the last one
        const budget = left > 1 ? Math.max(remaining / 2, Math.min(remaining, 1000)) : remaining
        const span = options.trace?.child('anycast.attempt', attemptAttributes(c, { attempt: attempts, round, after: roundAttempts > 1 ? failures.at(-1) : undefined }), 'client')
        try {
          const output = await this.invoke(c, inputBytes, Math.max(1, Math.floor(budget)), signal, span)
          span?.end()
          return { output, peerId: c.peerId, capability: c.name, similarity: c.similarity, attempts, latencyMs: performance.now() - started, failures }
        } catch (err: any) {
          failures.push({ peerId: c.peerId, capability: c.name, error: `${err?.name ?? 'Error'}: ${err?.message ?? err}` })
          span?.end(failures[failures.length - 1].error)
        }
      }
      if (round > 0 || signal.aborted || deadline - performance.now() < 100) break
      // every candidate failed: look again on the network before giving up
      try {
        candidates = await this.deps.find(query, { k, signal, source: 'dht', minSimilarity: options.minSimilarity })
      } catch {
        break
      }
    }
    throw new AllCandidatesFailedError(`all ${attempts} candidates failed: ${failures.map(f => f.error).join('; ')}`, failures)
  }

  /**
   * Invoke one capability on one peer (this node included); records the owner's liveness.
   * With `span`, the request carries its traceparent and the answering node's spans are adopted.
   */
  async invoke (c: Candidate, input: Uint8Array, timeoutMs: number, outer: AbortSignal, span?: AnycastSpan): Promise<unknown> {
    const signal = AbortSignal.any([outer, AbortSignal.timeout(timeoutMs)])
    if (c.peerId === this.deps.self()) {
      span?.setAttributes({ 'aistack.local': true })
      const out = await this.deps.invoker.run(c.name, input, timeoutMs, [signal, this.deps.shutdown()])
      if (out.status !== Response.Status.OK) throw new RemoteError(Response.Status[out.status], out.error)
      return JSON.parse(u8ToString(out.output))
    }
    const t0 = performance.now()
    let res: Response
    try {
      res = await this.deps.transport().send({ id: peerIdFromString(c.peerId), multiaddrs: [] }, {
        kind: Request.Kind.INVOKE,
        id: randomBytes(16),
        deadlineMs: timeoutMs,
        capability: c.name,
        input,
        model: '',
        keys: [],
        traceparent: span?.traceparent,
        vectors: this.vectors
      }, signal, (this.deps.init.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES) + 4096)
    } catch (err) {
      if (!outer.aborted) this.deps.liveness.failed(c.peerId)
      throw err
    }
    this.deps.liveness.succeeded(c.peerId)
    const rtt = performance.now() - t0
    const prev = this.rtt.get(c.peerId)
    setNewest(this.rtt, c.peerId, prev == null ? rtt : prev * 0.8 + rtt * 0.2, MAX_OBSERVED)
    if (res.capacity > 0) this.peerLoad.set(`${c.peerId}/${c.name}`, { inflight: res.inflight, capacity: res.capacity })
    if (span != null) span.setAttributes({ 'aistack.status': Response.Status[res.status] ?? String(res.status), 'aistack.remote_spans': span.adopt(res.spans) })
    if (res.status !== Response.Status.OK) throw new RemoteError(Response.Status[res.status] ?? String(res.status), res.error)
    try {
      // numbers the output's JSON could hold within the output limit: two bytes each at least
      return unpackVectors(u8ToString(res.output), res.tensors, this.vectors, Math.floor((this.deps.init.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES) / 2))
    } catch (err: any) {
      throw new RemoteError('ERROR', String(err?.message ?? err))
    }
  }

  /**
   * Every input to the capability that best matches `query` (found once),
   * each failing over to the next candidates on its own; outputs in input
   * order, a failure per input. To a peer that speaks sembatch the inputs
   * share its stream and batch; see ask-many.ts.
   */
  async askMany (query: string, inputs: unknown[], options: AskManyOptions = {}): Promise<AskManyResult> {
    return askMany({ find: async (q, o) => this.deps.find(q, o), invoke: async (c, input, t, s) => this.invoke(c, input, t, s) }, query, inputs, {
      timeoutMs: this.deps.init.timeoutMs,
      maxAttempts: this.deps.init.maxAttempts,
      maxInputBytes: this.deps.init.maxInputBytes,
      ...options
    })
  }
}
