import { randomBytes } from 'node:crypto'
import { pbStream } from '@libp2p/utils'
import { toString as u8ToString } from 'uint8arrays/to-string'
import { fromString as u8FromString } from 'uint8arrays/from-string'
import { DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_TIMEOUT_MS, LIMITS } from './constants.js'
import { Request, Response } from './pb/anycast.js'
import { RemoteError } from './errors.js'
import { TENSOR_FRAMING_BYTES, VectorEncoding, VECTOR_LIMITS, packVectors } from './vectors.js'
import type { OwnerLiveness } from './liveness.js'
import type { LocalCapability } from './record.js'
import type { PeerRoutingLike } from './types.js'
import type { Logger, PeerId, PeerInfo, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import type { CID } from 'multiformats/cid'

/** The local side: which capabilities this node serves and how to run them */
export interface CapabilityProvider {
  list(): LocalCapability[]
  /** Run a capability; throws an error named `OverloadedError` at its concurrency limit */
  invoke(name: string, input: unknown, options: { signal: AbortSignal }): Promise<unknown>
  /** Called whenever capabilities are added or removed; returns an unsubscribe function */
  onChange?(listener: () => void): () => void
}

/** The count limits a `Response` from a peer is decoded with (more: it is malformed) */
export const RESPONSE_LIMITS = { records: LIMITS.maxRecordsPerResponse, spans: LIMITS.maxSpansPerResponse, spans$: { attributes: LIMITS.maxSpanAttributes }, tensors: VECTOR_LIMITS.maxTensors }

export type LocalResult = Pick<Response, 'status' | 'output' | 'error' | 'inflight' | 'capacity' | 'tensors'>

/** What a request is sent with */
export interface RequestDialer {
  connectionManager: ConnectionManager
  /** finds the addresses of a peer this node is not connected to and holds none for */
  peerRouting?: PeerRoutingLike
}

/** Longest wait for the peer routing to find an unconnected peer's addresses (ms) */
export const FIND_PEER_TIMEOUT_MS = 5000

/**
 * Before a request to a peer this node is not connected to and was given no
 * addresses for: asks the peer routing (the peer store, then the DHT) for
 * them, which puts them in the peer store for the dial. A node often holds
 * records of owners it never connected to (gossip, anti-entropy). Left to
 * the dialer, the same lookup runs inside the dial job for that peer, and
 * a DHT query that meets the peer among the closer peers dials it by
 * joining that job, which waits for the query: both stall until the
 * query's timeout and the dial fails with NoValidAddressesError. Never
 * throws; the dial reports what went wrong.
 */
export async function findAddresses (dialer: RequestDialer, peer: PeerInfo, signal: AbortSignal): Promise<void> {
  if (peer.multiaddrs.length > 0 || dialer.peerRouting == null) return
  if (dialer.connectionManager.getConnections(peer.id).length > 0) return
  try {
    await dialer.peerRouting.findPeer(peer.id, { signal: AbortSignal.any([signal, AbortSignal.timeout(FIND_PEER_TIMEOUT_MS)]) })
  } catch {}
}

/**
 * Send one anycast request to a peer (by id, then by its addresses) and read
 * the response; `maxResponseBytes` bounds the response frame. A peer not
 * connected and without addresses is looked up first (`findAddresses`).
 */
export async function sendRequest (dialer: RequestDialer, protocol: string, peer: PeerInfo, req: Request, signal: AbortSignal, maxResponseBytes: number): Promise<Response> {
  const { connectionManager } = dialer
  await findAddresses(dialer, peer, signal)
  let stream: Stream
  try {
    stream = await connectionManager.openStream(peer.id, protocol, { signal })
  } catch (err) {
    if (peer.multiaddrs.length === 0) throw err
    stream = await connectionManager.openStream(peer.multiaddrs, protocol, { signal })
  }
  try {
    const pb = pbStream(stream, { maxDataLength: maxResponseBytes })
    await pb.write(req, Request, { signal })
    const res = await pb.read<Response>(Response as any, { signal, limits: RESPONSE_LIMITS })
    await stream.close({ signal }).catch(() => {})
    return res
  } catch (err: any) {
    stream.abort(err)
    throw err
  }
}

/** What a `GET_RECORDS` request asks for */
export interface RecordsRequest {
  /** the base model id: records of other models are not wanted */
  model: string
  /** only records in these LSH buckets (all when empty) */
  keys?: CID[]
  /** also the live records of other owners the peer holds (anti-entropy) */
  held?: boolean
}

/**
 * Sends `GET_RECORDS` to a peer and returns the signed record envelopes of its
 * answer, unverified (at most `LIMITS.maxRecordsPerResponse`). The peer's
 * liveness follows the outcome: a transport error marks it failed unless
 * `signal` was aborted (a caller's budget running out says nothing of the
 * peer), an answer marks it live.
 *
 * @throws the transport's errors; RemoteError when the peer answers with an error status
 */
export async function requestRecords (dialer: RequestDialer, protocol: string, peer: PeerInfo, wanted: RecordsRequest, liveness: OwnerLiveness, signal: AbortSignal): Promise<Uint8Array[]> {
  const owner = peer.id.toString()
  let res: Response
  try {
    res = await sendRequest(dialer, protocol, peer, {
      kind: Request.Kind.GET_RECORDS,
      id: randomBytes(16),
      deadlineMs: 10_000,
      capability: '',
      input: new Uint8Array(0),
      vectors: VectorEncoding.JSON,
      model: wanted.model,
      keys: (wanted.keys ?? []).slice(0, LIMITS.maxKeysPerRequest).map(k => k.bytes),
      ...(wanted.held === true ? { held: true } : {})
    }, signal, LIMITS.maxRecordBytes * LIMITS.maxRecordsPerResponse + 4096)
  } catch (err) {
    if (!signal.aborted) liveness.failed(owner)
    throw err
  }
  liveness.succeeded(owner)
  if (res.status !== Response.Status.OK) throw new RemoteError(Response.Status[res.status] ?? String(res.status), res.error)
  return res.records.slice(0, LIMITS.maxRecordsPerResponse)
}

export interface LocalInvokerInit {
  provider: CapabilityProvider
  /** the capability as announced, when it is */
  announced: (name: string) => LocalCapability | undefined
  maxInputBytes?: number
  maxOutputBytes?: number
  timeoutMs?: number
}

/** Runs this node's capabilities for local and remote asks, with limits and in-flight counts */
export class LocalInvoker {
  private readonly init: LocalInvokerInit
  readonly inflight = new Map<string, number>()

  constructor (init: LocalInvokerInit) {
    this.init = init
  }

  /**
   * Run a capability on JSON input bytes; never throws, the outcome is in `status`.
   * With `vectors` other than JSON, the output's numeric vectors come as tensors (see vectors.ts);
   * the output's limit counts its JSON and its tensors together.
   */
  async run (name: string, input: Uint8Array, timeoutMs: number, outer: AbortSignal[], vectors = VectorEncoding.JSON): Promise<LocalResult> {
    const cap = this.init.announced(name) ?? this.init.provider.list().find(c => c.name === name)
    const capacity = cap?.attributes?.maxConcurrency ?? 0
    const base = { output: new Uint8Array(0), error: '', inflight: this.inflight.get(name) ?? 0, capacity, tensors: [] }
    if (cap == null) return { ...base, status: Response.Status.NOT_FOUND, error: `no capability named ${name}` }
    const maxInput = this.init.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES
    if (input.byteLength > maxInput) return { ...base, status: Response.Status.TOO_LARGE, error: `input is larger than ${maxInput} bytes` }
    let value: unknown
    try {
      value = JSON.parse(u8ToString(input))
    } catch {
      return { ...base, status: Response.Status.BAD_REQUEST, error: 'input is not JSON' }
    }
    const timeout = AbortSignal.timeout(Math.max(1, Math.min(timeoutMs, this.init.timeoutMs ?? DEFAULT_TIMEOUT_MS * 10)))
    const signal = AbortSignal.any([timeout, ...outer])
    this.inflight.set(name, (this.inflight.get(name) ?? 0) + 1)
    try {
      const output = await new Promise<unknown>((resolve, reject) => {
        const onAbort = (): void => { reject(signal.reason) }
        signal.addEventListener('abort', onAbort, { once: true })
        this.init.provider.invoke(name, value, { signal }).then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
      })
      const packed = packVectors(output, vectors)
      const bytes = u8FromString(packed.json)
      const size = packed.tensors.reduce((n, t) => n + t.byteLength + TENSOR_FRAMING_BYTES, bytes.byteLength)
      const maxOutput = this.init.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES
      if (size > maxOutput) return { ...base, status: Response.Status.TOO_LARGE, error: `output is larger than ${maxOutput} bytes` }
      return { ...base, status: Response.Status.OK, output: bytes, tensors: packed.tensors }
    } catch (err: any) {
      if (err?.name === 'OverloadedError') return { ...base, status: Response.Status.OVERLOADED, error: String(err.message ?? 'overloaded') }
      if (timeout.aborted || err?.name === 'TimeoutError') return { ...base, status: Response.Status.TIMEOUT, error: 'handler timed out' }
      return { ...base, status: Response.Status.ERROR, error: String(err?.message ?? err).slice(0, 1024) }
    } finally {
      this.inflight.set(name, Math.max(0, (this.inflight.get(name) ?? 1) - 1))
    }
  }
}

/** Suffix of the sembatch context key that carries anycast requests: `<capability>#anycast` */
export const SEMBATCH_KEY_SUFFIX = '#anycast'

/** The sembatch context key of a capability's anycast requests */
export function sembatchKey (capability: string): string {
  return `${capability}${SEMBATCH_KEY_SUFFIX}`
}

/**
 * What anycast needs of a sembatch service (`@aistack/sembatch`), found as
 * the `sembatch` service of the node when there is one.
 */
export interface SembatchLike {
  /** `/<network>/sembatch/1.0.0` */
  readonly protocol: string
  send(peer: PeerId, key: string, payload: Uint8Array, options?: { signal?: AbortSignal, timeoutMs?: number }): Promise<Uint8Array>
  addResolver(resolver: (key: string) => SembatchEntry | undefined): () => void
}

/** A one-message-at-a-time sembatch handler entry */
export interface SembatchEntry {
  batch: false
  fn: (payload: Uint8Array, context: { peer: PeerId, key: string, signal: AbortSignal }) => Promise<Uint8Array>
  concurrency: number
  maxBatch: number
}

export interface InvokeTransportInit {
  /** sends requests on streams of their own (see `sendRequest`) */
  dialer: RequestDialer
  /** the anycast protocol id */
  protocol: string
  /** the peer store: a peer speaks sembatch when identify listed its protocol */
  peerStore?: { get(peer: PeerId): Promise<{ protocols: string[] }> }
  sembatch?: SembatchLike
  log: Logger
  /** requests one peer may have in flight on our `#anycast` keys (default 256) */
  concurrency?: number
}

/** Counters of the transport: anycast requests sent each way */
export interface InvokeTransportStats {
  /** INVOKE requests answered over sembatch */
  sembatch: number
  /** requests sent on their own anycast stream (GET_RECORDS, peers without sembatch, fallbacks) */
  stream: number
  /** sembatch attempts that fell back to a stream because the peer refused the protocol */
  fallbacks: number
}

/**
 * Chooses how an anycast request travels: an INVOKE to a peer whose
 * protocols (as identify reported them to the peer store) include sembatch
 * goes as one sembatch message (key `<capability>#anycast`, payload the
 * `Request` bytes, answer the `Response` bytes, so every field travels
 * unchanged); anything else, or a peer that refuses the sembatch protocol,
 * goes on its own anycast stream as before. See docs/protocols/sembatch.md.
 */
export class InvokeTransport {
  readonly stats: InvokeTransportStats = { sembatch: 0, stream: 0, fallbacks: 0 }
  private readonly init: InvokeTransportInit
  /** peers that refused the sembatch protocol; retried after an hour */
  private readonly refused = new Map<string, number>()
  private removeResolver?: () => void

  constructor (init: InvokeTransportInit) {
    this.init = init
  }

  /** True when INVOKE requests go over sembatch where the peer speaks it */
  get enabled (): boolean {
    return this.init.sembatch != null
  }

  /**
   * Answers `<capability>#anycast` sembatch messages with `respond`: the
   * payload is decoded as a `Request` (bounded like a stream's), the answer
   * is the encoded `Response`.
   */
  serve (respond: (req: Request, peer: PeerId) => Promise<Response>, maxRequestBytes: number): void {
    const sembatch = this.init.sembatch
    if (sembatch == null) return
    const entry: SembatchEntry = {
      batch: false,
      concurrency: this.init.concurrency ?? 256,
      maxBatch: 1,
      fn: async (payload, { peer, key }) => {
        if (payload.byteLength > maxRequestBytes) throw new Error(`request is larger than ${maxRequestBytes} bytes`)
        const req = Request.decode(payload, { limits: { keys: LIMITS.maxKeysPerRequest } })
        if (req.id.byteLength > 64) throw new Error('request id is longer than 64 bytes')
        if (req.kind !== Request.Kind.INVOKE || sembatchKey(req.capability) !== key) throw new Error(`a ${key.slice(0, 64)} message carries an INVOKE of that capability`)
        return Response.encode(await respond(req, peer))
      }
    }
    this.removeResolver = sembatch.addResolver(key => key.endsWith(SEMBATCH_KEY_SUFFIX) ? entry : undefined)
  }

  stop (): void {
    this.removeResolver?.()
    this.removeResolver = undefined
  }

  /**
   * Sends one request to a peer and reads its response, over sembatch or a
   * stream of its own (see the class). `maxResponseBytes` bounds the response.
   *
   * @throws the transport's errors (stream reset, timeout, refused protocol on both paths)
   */
  async send (peer: PeerInfo, req: Request, signal: AbortSignal, maxResponseBytes: number): Promise<Response> {
    if (req.kind === Request.Kind.INVOKE && await this.speaksSembatch(peer.id)) {
      try {
        const bytes = await this.init.sembatch!.send(peer.id, sembatchKey(req.capability), Request.encode(req), {
          signal,
          timeoutMs: req.deadlineMs > 0 ? req.deadlineMs : DEFAULT_TIMEOUT_MS
        })
        if (bytes.byteLength > maxResponseBytes) throw new Error(`response is larger than ${maxResponseBytes} bytes`)
        const res = Response.decode(bytes, { limits: RESPONSE_LIMITS })
        this.stats.sembatch++
        return res
      } catch (err: any) {
        if (!isUnsupportedProtocol(err)) throw err
        this.refused.set(peer.id.toString(), Date.now())
        this.stats.fallbacks++
        this.init.log('%p refused sembatch, anycast goes on its own streams - %s', peer.id, err?.message)
      }
    }
    this.stats.stream++
    return sendRequest(this.init.dialer, this.init.protocol, peer, req, signal, maxResponseBytes)
  }

  /** Both ends speak sembatch: we run it and identify told the peer store the peer does */
  private async speaksSembatch (peer: PeerId): Promise<boolean> {
    const sembatch = this.init.sembatch
    if (sembatch == null || this.init.peerStore == null) return false
    const refusedAt = this.refused.get(peer.toString())
    if (refusedAt != null) {
      if (Date.now() - refusedAt < REFUSED_RETRY_MS) return false
      this.refused.delete(peer.toString())
    }
    try {
      const { protocols } = await this.init.peerStore.get(peer)
      return protocols.includes(sembatch.protocol)
    } catch {
      return false
    }
  }
}

/** A peer that refused sembatch is asked over it again after this long */
const REFUSED_RETRY_MS = 60 * 60 * 1000

/** The peer does not speak the protocol (multistream-select said no) */
function isUnsupportedProtocol (err: any): boolean {
  return err?.name === 'UnsupportedProtocolError' || err?.code === 'ERR_UNSUPPORTED_PROTOCOL' ||
    (err?.name === 'StreamResetError' && /protocol/i.test(String(err?.message)))
}
