/**
 * Messages between the node's thread and its bulk lane worker
 * (docs/protocols/sembatch.md, "Bulk lane"). Stream ids: positive for
 * streams the node's thread opened, negative for streams the lane accepted.
 */

/** What the lane worker is started with (`workerData`) */
export interface LaneWorkerData {
  /** the node's private key, protobuf-encoded (`privateKeyToProtobuf`) */
  privateKey: Uint8Array
  /** the sembatch protocol id */
  protocol: string
  /** module the worker imports for its transports, encrypters and muxers (default export `(init) => options`) */
  stack: string
  stackInit?: unknown
  /** hosts to listen on (IP addresses) and the port (0: one the system picks, then the same on every host) */
  hosts: string[]
  port: number
  /** connections the lane accepts at once, streams per connection */
  maxConnections: number
  maxStreamsPerConnection: number
  /** bytes handed to the node's thread and not yet consumed, per stream, before the lane stops reading it */
  maxUnreadBytes: number
  /** how much lower (nice steps, 0-19) the worker thread runs than the node's thread: above 0, the node's thread goes first for a core */
  nice: number
  /** opening a lane stream gives up after this long (ms) */
  dialTimeoutMs: number
}

/** The node's thread to the worker */
export type ToLane =
  | { op: 'dial', id: number, addr: string }
  | { op: 'send', id: number, chunks: Uint8Array[] }
  | { op: 'consumed', id: number, bytes: number }
  | { op: 'close', id: number }
  | { op: 'abort', id: number, reason: string }
  | { op: 'hangUp', peer: string }
  | { op: 'admitted', id: number, ok: boolean }
  | { op: 'stop' }

/** The worker to the node's thread */
export type FromLane =
  | { op: 'listening', port: number }
  | { op: 'failed', reason: string }
  | { op: 'inbound', id: number, peer: string }
  | { op: 'opened', id: number }
  | { op: 'dialFailed', id: number, reason: string }
  | { op: 'data', id: number, chunks: Uint8Array[] }
  | { op: 'written', id: number, bytes: number }
  | { op: 'remoteCloseWrite', id: number }
  | { op: 'closed', id: number, reason?: string }
  | { op: 'stopped' }
  /** may this peer have a lane connection? (asked once its handshake is done, before any stream) */
  | { op: 'admit', id: number, peer: string }
