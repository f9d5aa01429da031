import { pbStream } from '@libp2p/utils'
import { toString as u8ToString } from 'uint8arrays/to-string'
import { fromString as u8FromString } from 'uint8arrays/from-string'
import { DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_TIMEOUT_MS, LIMITS } from './constants.js'
import { Request, Response } from './pb/anycast.js'
import type { LocalCapability } from './record.js'
import type { PeerInfo, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

/** The local side: which capabilities this node serves and how to run them */
export interface CapabilityProvider {
  list(): LocalCapability[]
  /** Run a capability; throws an error named `OverloadedError` at its concurrency limit */
  invoke(name: string, input: unknown, options: { signal: AbortSignal }): Promise<unknown>
  /** Called whenever capabilities are added or removed; returns an unsubscribe function */
  onChange?(listener: () => void): () => void
}

export type LocalResult = Pick<Response, 'status' | 'output' | 'error' | 'inflight' | 'capacity'>

/**
 * Send one anycast request to a peer (by id, then by its addresses) and read
 * the response; `maxResponseBytes` bounds the response frame.
 */
export async function sendRequest (connectionManager: ConnectionManager, protocol: string, peer: PeerInfo, req: Request, signal: AbortSignal, maxResponseBytes: number): Promise<Response> {
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
    const res = await pb.read<Response>(Response as any, { signal, limits: { records: LIMITS.maxRecordsPerResponse, spans: LIMITS.maxSpansPerResponse, spans$: { attributes: LIMITS.maxSpanAttributes } } })
    await stream.close({ signal }).catch(() => {})
    return res
  } catch (err: any) {
    stream.abort(err)
    throw err
  }
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

  /** Run a capability on JSON input bytes; never throws, the outcome is in `status` */
  async run (name: string, input: Uint8Array, timeoutMs: number, outer: AbortSignal[]): Promise<LocalResult> {
    const cap = this.init.announced(name) ?? this.init.provider.list().find(c => c.name === name)
    const capacity = cap?.attributes?.maxConcurrency ?? 0
    const base = { output: new Uint8Array(0), error: '', inflight: this.inflight.get(name) ?? 0, capacity }
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
      const bytes = u8FromString(JSON.stringify(output ?? null))
      const maxOutput = this.init.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES
      if (bytes.byteLength > maxOutput) return { ...base, status: Response.Status.TOO_LARGE, error: `output is larger than ${maxOutput} bytes` }
      return { ...base, status: Response.Status.OK, output: bytes }
    } catch (err: any) {
      if (err?.name === 'OverloadedError') return { ...base, status: Response.Status.OVERLOADED, error: String(err.message ?? 'overloaded') }
      if (timeout.aborted || err?.name === 'TimeoutError') return { ...base, status: Response.Status.TIMEOUT, error: 'handler timed out' }
      return { ...base, status: Response.Status.ERROR, error: String(err?.message ?? err).slice(0, 1024) }
    } finally {
      this.inflight.set(name, Math.max(0, (this.inflight.get(name) ?? 1) - 1))
    }
  }
}
