/**
 * The bulk lane's worker thread: a libp2p node of its own with the node's
 * identity (transports, encrypters and muxers from the stack module it is
 * given, nothing else), serving and opening sembatch streams whose bytes it
 * moves to and from the node's thread. It reads, decrypts, demultiplexes,
 * encrypts and writes on its own event loop, so the node's loop does none of
 * that for the bulk class. See docs/protocols/sembatch.md, "Bulk lane".
 */
import { randomFill } from 'node:crypto'
import { getPriority, setPriority } from 'node:os'
import { parentPort, workerData } from 'node:worker_threads'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { FromLane, LaneWorkerData, ToLane } from './messages.js'
import type { Libp2p, Stream, StreamMessageEvent } from '@libp2p/interface'

interface Carried {
  stream: Stream
  /** chunks from the node's thread waiting for the stream to drain */
  queue: Uint8Array[]
  writing: boolean
  /** bytes handed to the node's thread and not yet consumed */
  unread: number
  paused: boolean
  /** chunks read this turn, handed over together; bytes written this turn, told together */
  incoming: Uint8Array[]
  written: number
  closing: boolean
}

const data = workerData as LaneWorkerData
const port = parentPort
if (port == null) throw new Error('the bulk lane runs in a worker thread')
const post = (msg: FromLane, transfer?: ArrayBuffer[]): void => { port.postMessage(msg, transfer) }
const reasonOf = (err: any): string => String(err?.message ?? err).slice(0, 512)

const carried = new Map<number, Carried>()
let nextInbound = -1
let flushing = false
let node: Libp2p | undefined
/** What this turn read and wrote, told to the node's thread in one message each per stream */
const flush = (): void => {
  flushing = false
  for (const [id, c] of carried) {
    if (c.written > 0) {
      post({ op: 'written', id, bytes: c.written })
      c.written = 0
    }
    if (c.incoming.length === 0) continue
    const chunks = c.incoming
    c.incoming = []
    post({ op: 'data', id, chunks }, chunks.map(ch => ch.buffer as ArrayBuffer))
  }
}
const flushSoon = (): void => {
  if (flushing) return
  flushing = true
  setImmediate(flush)
}

function carry (id: number, stream: Stream): void {
  const c: Carried = { stream, queue: [], writing: false, unread: 0, paused: false, incoming: [], written: 0, closing: false }
  carried.set(id, c)
  stream.addEventListener('message', (evt: StreamMessageEvent) => {
    // a copy of its own: it is transferred, and the bytes read may share a buffer
    const bytes = new Uint8Array(evt.data.subarray())
    c.incoming.push(bytes)
    c.unread += bytes.byteLength
    if (c.unread > data.maxUnreadBytes && !c.paused && stream.readStatus === 'readable') {
      c.paused = true
      stream.pause()
    }
    flushSoon()
  })
  stream.addEventListener('remoteCloseWrite', () => { post({ op: 'remoteCloseWrite', id }) })
  stream.addEventListener('close', (evt) => {
    if (c.incoming.length > 0 || c.written > 0) flush()
    carried.delete(id)
    post({ op: 'closed', id, reason: evt.error == null ? undefined : reasonOf(evt.error) })
  }, { once: true })
}

/**
 * After the node's thread was told of a stream: a stream that ended before its listeners were
 * added (a reset that arrived while the dial resolved) has no 'close' event to come, so its end
 * is told now, or the node's thread would keep a link on it for good
 */
function endedEarly (id: number): void {
  const c = carried.get(id)
  if (c == null || c.stream.status === 'open' || c.stream.status === 'closing') return
  carried.delete(id)
  post({ op: 'closed', id, reason: `the stream ${c.stream.status} before it was handed over` })
}

async function write (id: number, c: Carried): Promise<void> {
  if (c.writing) return
  c.writing = true
  try {
    while (c.queue.length > 0) {
      const chunk = c.queue.shift() as Uint8Array
      if (!c.stream.send(chunk)) await c.stream.onDrain()
      c.written += chunk.byteLength
      flushSoon()
    }
    if (c.closing) await c.stream.close()
  } catch (err) {
    c.stream.abort(err as Error)
  } finally {
    c.writing = false
  }
}

async function dial (id: number, addr: string): Promise<void> {
  try {
    if (node == null) throw new Error('the lane is not started')
    const stream = await node.dialProtocol(multiaddr(addr), data.protocol, { signal: AbortSignal.timeout(data.dialTimeoutMs) })
    carry(id, stream)
    post({ op: 'opened', id })
    endedEarly(id)
  } catch (err) {
    post({ op: 'dialFailed', id, reason: reasonOf(err) })
  }
}

const ignore = (): void => {}

/** Admission questions to the node's thread, answered or refused within ADMIT_TIMEOUT_MS */
const ADMIT_TIMEOUT_MS = 5_000
const admissions = new Map<number, (ok: boolean) => void>()
let nextAdmission = 1
async function admitted (peer: string): Promise<boolean> {
  const id = nextAdmission++
  return new Promise<boolean>(resolve => {
    const timer = setTimeout(() => { admissions.delete(id); resolve(false) }, ADMIT_TIMEOUT_MS)
    admissions.set(id, (ok) => { clearTimeout(timer); admissions.delete(id); resolve(ok) })
    post({ op: 'admit', id, peer })
  })
}

async function stop (): Promise<void> {
  try {
    await node?.stop()
  } catch {}
  post({ op: 'stopped' })
  port?.close()
}

port.on('message', (msg: ToLane) => {
  if (msg.op === 'dial') {
    dial(msg.id, msg.addr).catch(ignore)
    return
  }
  if (msg.op === 'admitted') {
    admissions.get(msg.id)?.(msg.ok)
    return
  }
  if (msg.op === 'stop') {
    stop().catch(ignore)
    return
  }
  if (msg.op === 'hangUp') {
    for (const connection of node?.getConnections() ?? []) {
      if (connection.remotePeer.toString() === msg.peer) connection.close().catch(err => { connection.abort(err) })
    }
    return
  }
  const c = carried.get(msg.id)
  if (c == null) return
  try {
    switch (msg.op) {
      case 'send':
        c.queue.push(...msg.chunks)
        write(msg.id, c).catch(ignore)
        break
      case 'consumed':
        c.unread -= msg.bytes
        if (c.paused && c.unread <= data.maxUnreadBytes / 2) {
          c.paused = false
          // a peer can end its writes in the frame that paused the stream: its readable end is then
          // closed while it is paused, and resume() would throw
          if (c.stream.readStatus === 'paused') c.stream.resume()
        }
        break
      case 'close':
        c.closing = true
        write(msg.id, c).catch(ignore)
        break
      case 'abort':
        c.stream.abort(new Error(msg.reason))
        break
    }
  } catch (err) {
    // what one stream does never ends the worker, and with it every lane of the node
    c.stream.abort(err as Error)
  }
})

try {
  // on Linux this thread alone: the scheduler runs the node's thread first when both want a core.
  // Threads inherit their creator's priority, and libuv's thread pool (the process's, for file,
  // DNS and crypto work) is made by the first thread that uses it: it is made first, at the
  // node's priority, if it does not exist yet
  if (data.nice > 0) {
    await new Promise<void>(resolve => { randomFill(new Uint8Array(1), () => { resolve() }) })
    try {
      // below the node's own priority (a node started with `nice` keeps the gap)
      setPriority(0, Math.min(19, getPriority(0) + data.nice))
    } catch {}
  }
  const stack = await import(data.stack)
  const options = await stack.default(data.stackInit)
  const listenOn = (p: number): string[] => data.hosts.map(h => `/${h.includes(':') ? 'ip6' : 'ip4'}/${h}/tcp/${p}`)
  const [first, ...rest] = listenOn(data.port)
  node = await createLibp2p({
    ...options,
    privateKey: privateKeyFromProtobuf(data.privateKey),
    addresses: { listen: [first] },
    connectionManager: { maxConnections: data.maxConnections },
    connectionMonitor: { enabled: false },
    // a lane connection is for a peer the node is connected to (admitted by the node's own
    // limits): the node's thread is asked once the handshake has proved who it is
    connectionGater: { denyInboundEncryptedConnection: async (peer) => !(await admitted(peer.toString())) },
    services: {}
  })
  const bound = node.getMultiaddrs().map(ma => Number(ma.getComponents().find(c => c.name === 'tcp')?.value)).find(p => p > 0) ?? 0
  // the other hosts on the same port, so one port number reaches the lane on every address
  const transports = (node as unknown as { components?: { transportManager?: { listen(addrs: unknown[]): Promise<void> } } }).components?.transportManager
  if (rest.length > 0) await transports?.listen(listenOn(bound).slice(1).map(a => multiaddr(a))).catch(() => {})
  await node.handle(data.protocol, (stream, connection) => {
    const id = nextInbound--
    carry(id, stream)
    post({ op: 'inbound', id, peer: connection.remotePeer.toString() })
    endedEarly(id)
  }, { maxInboundStreams: data.maxStreamsPerConnection, maxOutboundStreams: data.maxStreamsPerConnection })
  post({ op: 'listening', port: bound })
} catch (err: any) {
  post({ op: 'failed', reason: startFailure(err) })
}

/**
 * Why the lane did not start, for the node's status: for addresses it could not listen on,
 * each address and its error (`/ip4/0.0.0.0/tcp/4012: listen EADDRINUSE: …`) rather than
 * libp2p's advice about its own settings
 */
function startFailure (err: any): string {
  if (err?.name === 'UnsupportedListenAddressesError') {
    const failures = String(err.message).split('\n').map(line => line.trim()).filter(line => line.startsWith('/'))
    if (failures.length > 0) return `could not listen on ${failures.map(f => f.replace(': Error: ', ': ')).join('; ')}`.slice(0, 512)
  }
  return reasonOf(err)
}
