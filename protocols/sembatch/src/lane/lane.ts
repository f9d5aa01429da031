import { Worker } from 'node:worker_threads'
import { privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { LaneUnavailableError } from '../errors.js'
import { LaneStream } from './stream.js'
import type { FromLane, LaneWorkerData, ToLane } from './messages.js'
import type { Logger, PeerId, PrivateKey } from '@libp2p/interface'

/** Settings of a bulk lane (see `SembatchInit.bulkLane`) */
export interface BulkLaneInit {
  /**
   * Module the worker imports for its libp2p transports, connection
   * encrypters and stream muxers: a file URL or package specifier whose
   * default export `(stackInit) => ({ transports, connectionEncrypters, streamMuxers })`
   * (default: TCP, Noise, Yamux)
   */
  stack?: string
  /** passed to the stack module's function (structured-cloneable) */
  stackInit?: unknown
  /** TCP port the lane listens on (default 0: one the system picks) */
  port?: number
  /** connections the lane accepts at once (default 128) */
  maxConnections?: number
  /** bytes read and not yet consumed by the node's thread, per stream, before the lane stops reading it (default 4 MiB) */
  maxUnreadBytes?: number
  /** bytes handed to the worker and not yet written, per stream, before `send` asks to wait (default 256 KiB) */
  highWaterBytes?: number
  /**
   * How much lower the worker thread's scheduling priority is than the
   * node's thread's, in `nice` steps (0-19, default 10; the result is at most
   * 19): when the machine's cores are all busy, the node's thread (realtime
   * messages, handlers) runs before the lane's. 0 leaves it as the node's.
   */
  nice?: number
}

/**
 * What happens to a node's bulk lane, for its logs: it listens (`port`), it
 * will not run (`failed`: it did not start, or its worker exited), a lane to
 * a peer opened, closed, or could not be opened (`peer` as a string)
 */
export type LaneEvent =
  | { type: 'listening', port: number }
  | { type: 'failed', error: string }
  | { type: 'open', peer: string }
  | { type: 'closed', peer: string }
  | { type: 'dialFailed', peer: string, error: string }

export const DEFAULT_LANE_STACK = new URL('./default-stack.js', import.meta.url).href
const STOP_TIMEOUT_MS = 5_000
const DIAL_TIMEOUT_MS = 10_000

/**
 * The node's thread's side of the bulk lane: starts the worker thread when
 * first needed, opens lane streams to peers and hands the ones peers open to
 * `onInbound`. Errors: `open` rejects with LaneUnavailableError when the
 * worker could not start or the dial failed; a worker that exits closes its
 * streams with an error (their requests fail with StreamResetError).
 */
export class BulkLane {
  private readonly init: Required<Omit<BulkLaneInit, 'stackInit'>> & { stackInit?: unknown }
  private readonly privateKey: PrivateKey
  private readonly protocol: string
  private readonly hosts: string[]
  private readonly log: Logger
  private readonly onInbound: (peer: PeerId, stream: LaneStream) => void
  private readonly admits: (peer: PeerId) => boolean
  private readonly emit: (event: LaneEvent) => void
  private worker?: Worker
  private starting?: Promise<number>
  private failed?: Error
  /** the worker thread has ended (it failed to start, crashed, or was stopped) */
  private exited = false
  private readonly streams = new Map<number, LaneStream>()
  private readonly dials = new Map<number, { resolve: (s: LaneStream) => void, reject: (err: Error) => void }>()
  private nextId = 1
  /** the port the lane listens on, once it does */
  port?: number

  /**
   * `onInbound` takes the streams peers open on the lane; `admits` says whether a peer
   * (its handshake done) may have a lane connection at all; `emit` hears when it listens or fails
   */
  constructor (privateKey: PrivateKey, protocol: string, hosts: string[], init: BulkLaneInit, log: Logger, onInbound: (peer: PeerId, stream: LaneStream) => void, admits: (peer: PeerId) => boolean, emit: (event: LaneEvent) => void = () => {}) {
    this.admits = admits
    this.emit = emit
    this.privateKey = privateKey
    this.protocol = protocol
    this.hosts = hosts
    this.log = log
    this.onInbound = onInbound
    this.init = {
      stack: init.stack ?? DEFAULT_LANE_STACK,
      stackInit: init.stackInit,
      port: init.port ?? 0,
      maxConnections: init.maxConnections ?? 128,
      maxUnreadBytes: init.maxUnreadBytes ?? 4 * 1024 * 1024,
      highWaterBytes: init.highWaterBytes ?? 256 * 1024,
      nice: Math.max(0, Math.min(19, Math.round(init.nice ?? 10)))
    }
  }

  /** True once the worker failed to start or exited: the lane is not used again */
  get broken (): boolean {
    return this.failed != null
  }

  /** Why the lane is not used: it did not start, its worker exited, or it is stopped */
  get error (): string | undefined {
    return this.failed?.message
  }

  /** Starts the worker (once); resolves with the port it listens on */
  async start (): Promise<number> {
    if (this.failed != null) throw this.failed
    this.starting ??= new Promise<number>((resolve, reject) => {
      const workerData: LaneWorkerData = {
        privateKey: privateKeyToProtobuf(this.privateKey),
        protocol: this.protocol,
        stack: this.init.stack,
        stackInit: this.init.stackInit,
        hosts: this.hosts,
        port: this.init.port,
        maxConnections: this.init.maxConnections,
        // an opener uses one lane stream per peer; a second covers one that is still closing
        maxStreamsPerConnection: 2,
        maxUnreadBytes: this.init.maxUnreadBytes,
        nice: this.init.nice,
        dialTimeoutMs: DIAL_TIMEOUT_MS
      }
      const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData })
      this.worker = worker
      // a node that is not stopped still exits
      worker.unref()
      worker.on('message', (msg: FromLane) => {
        if (msg.op === 'listening') {
          this.port = msg.port
          this.log('bulk lane listening on port %d', msg.port)
          this.emit({ type: 'listening', port: msg.port })
          resolve(msg.port)
        } else if (msg.op === 'failed') {
          this.fail(new LaneUnavailableError(`the bulk lane did not start: ${msg.reason}`))
          reject(this.failed)
          // it is not used again: its thread goes now, not when the service stops
          worker.terminate().catch(() => {})
        } else {
          this.onMessage(msg)
        }
      })
      worker.on('error', (err) => {
        this.log.error('bulk lane worker failed - %e', err)
        this.fail(new LaneUnavailableError(`the bulk lane worker failed: ${err.message}`))
        reject(this.failed)
      })
      worker.on('exit', (code) => {
        this.exited = true
        this.fail(new LaneUnavailableError(`the bulk lane worker exited (${code})`))
        reject(this.failed)
      })
    })
    return this.starting
  }

  /**
   * Opens a lane stream to `peer` at `addr` (a multiaddr ending in the
   * peer's `/p2p/` id, so the handshake proves who answers).
   *
   * @throws LaneUnavailableError
   */
  async open (addr: string): Promise<LaneStream> {
    await this.start()
    // stopped or exited since it listened: nobody would answer the dial
    if (this.failed != null) throw this.failed
    const id = this.nextId++
    return new Promise<LaneStream>((resolve, reject) => {
      this.dials.set(id, { resolve, reject })
      this.post({ op: 'dial', id, addr })
    })
  }

  /** Closes the lane's connections to a peer (and so its streams), if the lane runs */
  hangUp (peer: string): void {
    this.post({ op: 'hangUp', peer })
  }

  /** Stops the worker; its streams close */
  async stop (): Promise<void> {
    const worker = this.worker
    if (worker == null) return
    this.worker = undefined
    this.failed ??= new LaneUnavailableError('the bulk lane is stopped')
    // a worker that has ended already would neither answer nor exit again
    if (!this.exited) {
      await new Promise<void>(resolve => {
        const timer = setTimeout(() => { worker.terminate().finally(resolve).catch(() => {}) }, STOP_TIMEOUT_MS)
        worker.once('exit', () => { clearTimeout(timer); resolve() })
        worker.on('message', (msg: FromLane) => { if (msg.op === 'stopped') worker.terminate().catch(() => {}) })
        worker.postMessage({ op: 'stop' } satisfies ToLane)
      })
    }
    this.closeAll('the bulk lane stopped')
  }

  private readonly post = (msg: ToLane, transfer?: ArrayBuffer[]): void => {
    this.worker?.postMessage(msg, transfer)
  }

  private onMessage (msg: FromLane): void {
    switch (msg.op) {
      case 'admit': {
        let ok = false
        try {
          ok = this.admits(peerIdFromString(msg.peer))
        } catch {}
        this.post({ op: 'admitted', id: msg.id, ok })
        return
      }
      case 'inbound': {
        const stream = new LaneStream(msg.id, this.post, this.init.highWaterBytes)
        this.streams.set(msg.id, stream)
        let peer: PeerId
        try {
          peer = peerIdFromString(msg.peer)
        } catch (err: any) {
          stream.abort(err)
          return
        }
        this.onInbound(peer, stream)
        return
      }
      case 'opened': {
        const dial = this.dials.get(msg.id)
        this.dials.delete(msg.id)
        const stream = new LaneStream(msg.id, this.post, this.init.highWaterBytes)
        this.streams.set(msg.id, stream)
        if (dial == null) stream.abort(new Error('nobody waits for this lane stream'))
        else dial.resolve(stream)
        return
      }
      case 'dialFailed': {
        const dial = this.dials.get(msg.id)
        this.dials.delete(msg.id)
        dial?.reject(new LaneUnavailableError(`the bulk lane could not be opened: ${msg.reason}`))
        return
      }
      case 'data':
        this.streams.get(msg.id)?.onData(msg.chunks)
        return
      case 'written':
        this.streams.get(msg.id)?.onWritten(msg.bytes)
        return
      case 'remoteCloseWrite':
        this.streams.get(msg.id)?.onRemoteCloseWrite()
        return
      case 'closed':
        this.streams.get(msg.id)?.onClosed(msg.reason)
        this.streams.delete(msg.id)
    }
  }

  private fail (err: Error): void {
    if (this.failed == null) {
      this.failed = err
      this.emit({ type: 'failed', error: err.message })
    }
    this.closeAll(err.message)
  }

  private closeAll (reason: string): void {
    for (const stream of this.streams.values()) stream.onClosed(reason)
    this.streams.clear()
    for (const dial of this.dials.values()) dial.reject(new LaneUnavailableError(reason))
    this.dials.clear()
  }
}
