import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { Compression, Frame, FrameSplitter, Kind, MalformedFrameError, QoS, decodeFrame, encodeFrame, withPrefix } from '../src/index.js'
import { createNode, pair, text, str, waitFor } from './helpers.js'
import type { LaneEvent } from '../src/index.js'
import type { Node } from './helpers.js'
import type { Libp2p } from '@libp2p/interface'
import type { AddressInfo } from 'node:net'

/** The service's lane, for what a test must reach inside (its port, its worker) */
const laneOf = (n: Node): { port?: number, broken: boolean, worker?: { terminate(): Promise<number> } } => (n.services.sembatch as any).lane?.lane

describe('bulk lane', function () {
  this.timeout(120_000)
  let nodes: Array<Node | Libp2p> = []
  afterEach(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    nodes = []
  })

  /** a and b with lanes (unless told), `echo` served at b, and the lane open from a to b */
  async function lanePair (initA: object = { bulkLane: true }, initB: object = { bulkLane: true }): Promise<[Node, Node]> {
    const [a, b] = await pair(initA, initB)
    nodes.push(a, b)
    b.services.sembatch.handle('echo', (p) => p)
    return [a, b]
  }

  async function openLane (a: Node, b: Node): Promise<void> {
    // the first bulk request goes on the main stream and starts b's lane; b offers it, a dials it
    assert.equal(str(await a.services.sembatch.send(b.peerId, 'echo', text('first'), { qos: 'bulk' })), 'first')
    await waitFor(() => a.services.sembatch.stats().laneLinks === 1, 60_000, 'a lane link')
    // and b took it: its first frame reached a (until then a's bulk stays on the stream)
    await waitFor(() => b.services.sembatch.stats().inboundLaneLinks >= 1 && (a.services.sembatch as any).lane.outbound.get(b.peerId.toString())?.heard === true, 60_000, 'the lane link taken')
  }

  const bulkEchoes = async (a: Node, b: Node, n: number): Promise<string[]> =>
    (await Promise.all(Array.from({ length: n }, async (_, i) => a.services.sembatch.send(b.peerId, 'echo', text(`bulk ${i}`), { qos: 'bulk' })))).map(str)
  const expected = (n: number): string[] => Array.from({ length: n }, (_, i) => `bulk ${i}`)

  it('carries bulk requests on a connection of its own once both ends have a lane; other classes stay on the stream', async () => {
    const [a, b] = await lanePair()
    const events: Record<string, LaneEvent[]> = { a: [], b: [] }
    a.services.sembatch.onLane(e => events.a.push(e))
    b.services.sembatch.onLane(e => events.b.push(e))
    await openLane(a, b)
    // what the node logs: b's lane listens, a's listens (its worker dials) and a's lane to b opens
    assert.deepEqual(events.b, [{ type: 'listening', port: laneOf(b).port }])
    assert.deepEqual(events.a, [{ type: 'listening', port: laneOf(a).port }, { type: 'open', peer: b.peerId.toString() }])
    const sentBefore = a.services.sembatch.stats().messagesSent
    assert.deepEqual(await bulkEchoes(a, b, 200), expected(200))
    assert.equal(b.services.sembatch.stats().inboundLaneLinks, 1)
    assert.equal(b.services.sembatch.stats().lanePort, laneOf(b).port)
    assert.equal(b.services.sembatch.stats().laneError, undefined)
    assert.equal(a.services.sembatch.stats().messagesSent - sentBefore, 200)
    // the node's own connections to b are the ones it had: the lane's is the worker's
    assert.equal(a.getConnections(b.peerId).length, 1)
    assert.equal(str(await a.services.sembatch.send(b.peerId, 'echo', text('rt'), { qos: 'realtime' })), 'rt')
    assert.equal(str(await a.services.sembatch.send(b.peerId, 'echo', text('int'))), 'int')
  })

  it('streams answers of the bulk class over the lane', async () => {
    const [a, b] = await lanePair()
    b.services.sembatch.handle('tokens', async function * () {
      yield text('one ')
      yield text('two ')
      yield text('three')
    })
    await openLane(a, b)
    const pieces: string[] = []
    for await (const piece of a.services.sembatch.stream(b.peerId, 'tokens', text(''), { qos: 'bulk' })) pieces.push(str(piece))
    assert.deepEqual(pieces, ['one ', 'two ', 'three'])
  })

  it('stays on the stream when either end has no lane', async () => {
    for (const [initA, initB] of [[{}, { bulkLane: true }], [{ bulkLane: true }, {}]]) {
      const [a, b] = await lanePair(initA, initB)
      assert.deepEqual(await bulkEchoes(a, b, 100), expected(100))
      // what would open a lane has happened (b's lane offered, or a asked); answers keep coming on the stream
      assert.deepEqual(await bulkEchoes(a, b, 100), expected(100))
      assert.equal(a.services.sembatch.stats().laneLinks, 0)
      assert.equal(b.services.sembatch.stats().inboundLaneLinks, 0)
    }
  })

  it('keeps bulk on the stream when the lane cannot start', async () => {
    const broken = { bulkLane: { stack: 'data:text/javascript,throw new Error("no transports here")' } }
    const [a, b] = await lanePair(broken, broken)
    assert.deepEqual(await bulkEchoes(a, b, 50), expected(50))
    await waitFor(() => laneOf(b).broken, 30_000, 'b\'s lane to give up')
    assert.deepEqual(await bulkEchoes(a, b, 50), expected(50))
    assert.equal(a.services.sembatch.stats().laneLinks, 0)
    assert.match(b.services.sembatch.stats().laneError ?? '', /^the bulk lane did not start: no transports here$/)
    assert.equal(b.services.sembatch.stats().lanePort, undefined)
    // the worker that could not start does not stay behind until the service stops
    const worker = laneOf(b).worker as unknown as { threadId: number }
    await waitFor(() => worker.threadId === -1, 10_000, 'the worker thread to end')
  })

  it('a lane port already taken: bulk stays on the stream, and the stats say which address failed and why', async () => {
    const taken = createServer()
    await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', resolve))
    const port = (taken.address() as AddressInfo).port
    try {
      const [a, b] = await lanePair({ bulkLane: true }, { bulkLane: { port } })
      assert.deepEqual(await bulkEchoes(a, b, 20), expected(20))
      const failed: LaneEvent[] = []
      b.services.sembatch.onLane(e => failed.push(e))
      await waitFor(() => laneOf(b).broken, 30_000, 'b\'s lane to give up')
      assert.match(b.services.sembatch.stats().laneError ?? '', new RegExp(`^the bulk lane did not start: could not listen on /ip4/127\\.0\\.0\\.1/tcp/${port}: listen EADDRINUSE`))
      assert.deepEqual(failed.map(e => e.type), ['failed'])
    } finally {
      taken.close()
    }
  })

  it('falls back to the stream when the lane\'s worker exits', async () => {
    const [a, b] = await lanePair()
    await openLane(a, b)
    await laneOf(b).worker?.terminate()
    await waitFor(() => a.services.sembatch.stats().laneLinks === 0, 60_000, 'a\'s lane link to close')
    assert.deepEqual(await bulkEchoes(a, b, 50), expected(50))
    // stopping does not wait for a worker that is gone
    const started = Date.now()
    await b.stop()
    assert.ok(Date.now() - started < 2_000, `b stopped in ${Date.now() - started} ms`)
  })

  it('stops its worker when the service stops', async () => {
    const [a, b] = await lanePair()
    await openLane(a, b)
    const lane = laneOf(b)
    const worker = lane.worker as unknown as { threadId: number, once(event: 'exit', fn: () => void): void }
    const exited = new Promise<void>(resolve => { worker.once('exit', resolve) })
    await b.stop()
    await exited
    assert.equal(lane.broken, true)
    assert.equal(lane.worker, undefined)
    await waitFor(() => a.services.sembatch.stats().laneLinks === 0, 60_000, 'a\'s lane link to close')
  })

  it('a peer on the lane port is held to the protocol: bad frames reset its stream, the lane lives', async () => {
    const [a, b] = await lanePair()
    await openLane(a, b)
    const c = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    nodes.push(c)
    // a peer the node admitted (the lane serves only peers with a connection to the node)
    await c.dial(b.getMultiaddrs())
    const port = laneOf(b).port as number
    // the lane answers as b: a dial that names b's peer id succeeds
    const lane = multiaddr(`/ip4/127.0.0.1/tcp/${port}/p2p/${b.peerId.toString()}`)
    const attacks = [
      Uint8Array.from([5, 0xff, 0xff, 0xff, 0xff, 0xff]),
      Uint8Array.from([0xff, 0xff, 0xff, 0x7f]),
      // past the credits it was granted: 1025 requests
      withPrefix(encodeFrame({ batches: [{ key: 'echo', qos: QoS.BULK, compression: Compression.NONE, rawBytes: 0, messages: Array.from({ length: 1025 }, (_, i) => ({ id: i + 1, kind: Kind.REQUEST, payload: new Uint8Array(1) })) }] })),
      withPrefix(encodeFrame({ batches: [{ key: 'nobody-serves-this', qos: QoS.BULK, compression: Compression.NONE, rawBytes: 0, messages: [{ id: 1, kind: Kind.REQUEST, payload: new Uint8Array(1) }] }] }))
    ]
    for (const attack of attacks) {
      const s = await c.dialProtocol(lane, b.services.sembatch.protocol)
      s.send(attack)
      await waitFor(() => s.status !== 'open', 20_000, 'the lane stream to be reset')
    }
    // a's lane still carries bulk
    assert.deepEqual(await bulkEchoes(a, b, 50), expected(50))
    assert.equal(a.services.sembatch.stats().laneLinks, 1)
  })

  it('a peer that ends its writes in the frame that fills the lane\'s read buffer does not stop the lane', async () => {
    // a small read buffer, so one yamux frame fills it
    const [a, b] = await lanePair({ bulkLane: true }, { bulkLane: { maxUnreadBytes: 16 * 1024 } })
    let slowCalled = false
    b.services.sembatch.handle('slow', async (p) => {
      slowCalled = true
      await new Promise(resolve => setTimeout(resolve, 2_000))
      return p
    })
    await openLane(a, b)
    const c = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    nodes.push(c)
    await c.dial(b.getMultiaddrs())
    const lane = multiaddr(`/ip4/127.0.0.1/tcp/${laneOf(b).port as number}/p2p/${b.peerId.toString()}`)
    const s = await c.dialProtocol(lane, b.services.sembatch.protocol)
    // a request that keeps b's end of the stream open while it runs
    s.send(withPrefix(encodeFrame({ batches: [{ key: 'slow', qos: QoS.BULK, compression: Compression.NONE, rawBytes: 0, messages: [{ id: 1, kind: Kind.REQUEST, payload: text('x') }] }] })))
    await waitFor(() => slowCalled, 20_000, 'the slow request at b')
    // then one yamux DATA frame with FIN (the spec allows the half-close on a data frame): 32 KiB of a
    // frame that never completes, read by b's lane in one piece, past its read buffer
    const body = new Uint8Array(32 * 1024)
    body.set([0xff, 0xff, 0xff, 0x01])
    const yamuxStream = s as unknown as { streamId: number, sendFrame(header: object, data: Uint8Array): boolean }
    yamuxStream.sendFrame({ type: 0, flag: 4, streamID: yamuxStream.streamId, length: body.byteLength }, body)
    await new Promise(resolve => setTimeout(resolve, 1_000))
    assert.equal(laneOf(b).broken, false, 'b\'s lane worker lives')
    assert.deepEqual(await bulkEchoes(a, b, 50), expected(50))
    assert.equal(a.services.sembatch.stats().laneLinks, 1)
  })

  it('dials no lane over a relayed connection, even one without limits', async () => {
    const [a, b] = await lanePair()
    // a's connection to b as a circuit relay without limits shows it (the relay's address first);
    // the relay's "host" here is 127.0.0.1, where b's lane listens, so a dial there would succeed
    const relay = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const components = (a.services.sembatch as any).components
    const cm = components.connectionManager
    components.connectionManager = {
      openStream: cm.openStream.bind(cm),
      getConnections: (peer: any) => cm.getConnections(peer).map((c: any) => ({
        status: c.status,
        limits: undefined,
        remoteAddr: multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${relay}/p2p-circuit/p2p/${b.peerId.toString()}`)
      }))
    }
    assert.equal(str(await a.services.sembatch.send(b.peerId, 'echo', text('first'), { qos: 'bulk' })), 'first')
    await waitFor(() => laneOf(b).port != null, 30_000, 'b\'s lane to listen')
    assert.deepEqual(await bulkEchoes(a, b, 50), expected(50))
    await new Promise(resolve => setTimeout(resolve, 2_000))
    assert.equal(a.services.sembatch.stats().laneLinks, 0)
    assert.equal(b.services.sembatch.stats().inboundLaneLinks, 0)
  })

  it('a peer the node hangs up on keeps no lane, and a peer without a connection to the node gets no lane stream', async () => {
    const [a, b] = await lanePair()
    await openLane(a, b)
    // b hangs up on a (DELETE /v1/peers/:id in a node): the lane goes with the connection, both ways
    await b.hangUp(a.peerId)
    await waitFor(() => b.services.sembatch.stats().inboundLaneLinks === 0, 20_000, 'b\'s inbound lane link to close')
    await waitFor(() => a.services.sembatch.stats().laneLinks === 0, 20_000, 'a\'s lane link to close')
    // a peer that never connected to b itself is refused on b's lane port: its connection is
    // closed once the handshake says who it is, before any stream
    const c = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    nodes.push(c)
    const laneAddr = multiaddr(`/ip4/127.0.0.1/tcp/${laneOf(b).port as number}/p2p/${b.peerId.toString()}`)
    const s = await c.dialProtocol(laneAddr, b.services.sembatch.protocol).catch(() => undefined)
    if (s != null) await waitFor(() => s.status !== 'open', 20_000, 'the lane stream of a peer without a connection to be reset')
    await waitFor(() => c.getConnections(b.peerId).length === 0, 20_000, 'the lane connection of a peer without a connection to close')
    assert.equal(b.services.sembatch.stats().inboundLaneLinks, 0)
  })

  it('a peer the node hangs up on leaves the lane\'s connection slots to others', async () => {
    // b's lane takes one connection at a time
    const [a, b] = await lanePair({ bulkLane: true }, { bulkLane: { maxConnections: 1 } })
    await openLane(a, b)
    await b.hangUp(a.peerId)
    await waitFor(() => a.services.sembatch.stats().laneLinks === 0, 20_000, 'a\'s lane link to close')
    // a's node connects again and stays connected; another peer with a lane gets b's one lane connection
    await a.dial(b.getMultiaddrs())
    const c = await createNode({ bulkLane: true })
    nodes.push(c)
    await c.dial(b.getMultiaddrs())
    await openLane(c, b)
  })

  it('a frame that arrives in many small pieces (as the lane hands over what it read) is copied once, not once per piece', () => {
    // 4 MiB in 256-byte pieces: each piece a yamux frame of its own from a peer, and a chunk of
    // its own on the node's thread; joining what was held on every piece took seconds of its time
    const splitter = new FrameSplitter()
    const payload = new Uint8Array(4 * 1024 * 1024)
    payload.fill(7)
    const frame = withPrefix(payload)
    const started = performance.now()
    const frames: Uint8Array[] = []
    for (let at = 0; at < frame.byteLength; at += 256) frames.push(...splitter.push(frame.subarray(at, at + 256)))
    const ms = performance.now() - started
    assert.equal(frames.length, 1)
    assert.equal(frames[0].byteLength, payload.byteLength)
    assert.ok(frames[0].every(b => b === 7))
    assert.equal(splitter.pending, 0)
    assert.ok(ms < 1_000, `${Math.round(ms)} ms`)
    // and frames across pieces, and several in one, still split as before
    const two = [withPrefix(Uint8Array.from([1, 2, 3])), withPrefix(new Uint8Array(300).fill(9)), withPrefix(Uint8Array.from([4]))]
    const stream = new Uint8Array(two.reduce((n, f) => n + f.byteLength, 0))
    let o = 0
    for (const f of two) { stream.set(f, o); o += f.byteLength }
    for (const cut of [1, 2, 3, 5, 150, 305, stream.byteLength]) {
      const s = new FrameSplitter()
      const out: Uint8Array[] = []
      for (let at = 0; at < stream.byteLength; at += cut) out.push(...s.push(stream.subarray(at, at + cut)))
      assert.deepEqual(out.map(f => Array.from(f.subarray(0, 3))), [[1, 2, 3], [9, 9, 9], [4]], `cut ${cut}`)
      assert.equal(out[1].byteLength, 300)
      assert.equal(s.pending, 0)
    }
  })

  it('a lane whose connection alone closed is opened again on a later bulk request, a minute on', async () => {
    const [a, b] = await lanePair()
    await openLane(a, b)
    // the lane's connection closes (a network path that drops it, say); the node's connection stays
    ;(laneOf(b) as any).hangUp(a.peerId.toString())
    await waitFor(() => a.services.sembatch.stats().laneLinks === 0, 20_000, 'a\'s lane link to close')
    assert.equal(a.getConnections(b.peerId).length, 1)
    assert.deepEqual(await bulkEchoes(a, b, 20), expected(20))
    assert.equal(a.services.sembatch.stats().laneLinks, 0, 'not at once')
    // a minute on (its retry time, cleared here), the next bulk request opens it again
    const retryAt: Map<string, number> = (a.services.sembatch as any).lane.retryAt
    assert.ok((retryAt.get(b.peerId.toString()) ?? 0) > Date.now())
    retryAt.clear()
    assert.deepEqual(await bulkEchoes(a, b, 20), expected(20))
    await waitFor(() => a.services.sembatch.stats().laneLinks === 1, 20_000, 'a\'s lane link again')
    assert.deepEqual(await bulkEchoes(a, b, 20), expected(20))
  })

  it('a lane stream the serving node refuses loses no request: bulk goes on the lane only once it is taken', async () => {
    const [a, b] = await lanePair()
    // b refuses every lane stream as it arrives (as it does when its lane streams are all taken)
    let refused = 0
    const bLane = laneOf(b) as unknown as { onInbound: (peer: unknown, stream: { abort(err: Error): void }) => void }
    bLane.onInbound = (_peer, stream) => {
      refused++
      stream.abort(new Error('too many bulk lane streams'))
    }
    const failures: string[] = []
    let sent = 0
    // bulk requests all along while b offers its lane, a opens it, and b refuses it
    const retryAt: Map<string, number> = (a.services.sembatch as any).lane.retryAt
    const end = Date.now() + 60_000
    while (Date.now() < end && !retryAt.has(b.peerId.toString())) {
      const answers = await Promise.allSettled(Array.from({ length: 20 }, async (_, i) => a.services.sembatch.send(b.peerId, 'echo', text(`bulk ${i}`), { qos: 'bulk' })))
      sent += answers.length
      for (const r of answers) if (r.status === 'rejected') failures.push(String(r.reason))
    }
    const lanes = (a.services.sembatch as any).lane
    assert.ok(retryAt.has(b.peerId.toString()), `a opened the lane and b refused it: ${JSON.stringify({
      sent, refused, a: a.services.sembatch.stats(), b: b.services.sembatch.stats(), aLaneError: lanes.lane.error, opening: [...lanes.opening], outbound: [...lanes.outbound.keys()]
    })}`)
    assert.equal(refused, 1)
    assert.deepEqual(failures, [], `${failures.length} of ${sent} failed`)
    assert.equal(a.services.sembatch.stats().laneLinks, 0)
    assert.deepEqual(await bulkEchoes(a, b, 20), expected(20))
  })

  it('a lane port past 65535 in a credit is a malformed frame', () => {
    const bytes = Frame.encode({ batches: [], credit: { grant: 1, grantBytes: 1, queueDepth: 0, serviceRate: 0, lanePort: 70_000 } })
    assert.throws(() => decodeFrame(bytes, 'acceptor'), (err: Error) => err instanceof MalformedFrameError)
    const fine = Frame.encode({ batches: [], credit: { grant: 1, grantBytes: 1, queueDepth: 0, serviceRate: 0, lanePort: 4011 } })
    assert.equal(decodeFrame(fine, 'acceptor').credit?.lanePort, 4011)
  })
})
