import assert from 'node:assert/strict'
import { Kind, QoS, Compression, FrameSplitter, decodeFrame, encodeFrame, withPrefix } from '../src/index.js'
import { Outbox } from '../src/outbox.js'
import { pair, str, text, waitFor } from './helpers.js'
import type { Frame } from '../src/index.js'
import type { OutItem } from '../src/outbox.js'
import type { Node } from './helpers.js'
import type { Stream } from '@libp2p/interface'

/** An outbox writing into an array of decoded frames */
function recordingOutbox (pipeBytes = 64 * 1024, more: { bulkWriteBytes?: number, yieldAfterBulk?: boolean } = {}): { outbox: Outbox, frames: Frame[] } {
  const frames: Frame[] = []
  const splitter = new FrameSplitter()
  const stream = {
    send (data: Uint8Array): boolean {
      for (const f of splitter.push(data)) frames.push(decodeFrame(f, 'opener'))
      return true
    },
    async onDrain (): Promise<void> {}
  } as unknown as Stream
  const outbox = new Outbox({
    stream,
    maxWriteBytes: 64 * 1024,
    maxBatchMessages: 512,
    compressThreshold: Infinity,
    lingerMs: { realtime: 0, interactive: 0, bulk: 0 },
    pipeBytes,
    ...more,
    onError: (err) => { throw err }
  })
  return { outbox, frames }
}

function item (qos: OutItem['qos'], id: number, bytes: number): OutItem {
  return { key: 'k', qos, message: { id, kind: Kind.REQUEST, payload: new Uint8Array(bytes) }, credited: false }
}

describe('sembatch realtime', function () {
  let a: Node
  let b: Node

  afterEach(async () => {
    await a?.stop()
    await b?.stop()
  })

  it('writes realtime messages in a frame of their own, ahead of the bulk queued with them', async () => {
    const { outbox, frames } = recordingOutbox()
    for (let i = 1; i <= 3; i++) outbox.push(item('bulk', i, 16 * 1024))
    outbox.push(item('realtime', 100, 64))
    outbox.push(item('interactive', 200, 64))
    await waitFor(() => outbox.queued === 0, 20_000, 'the queue to be written')
    assert.ok(frames.length >= 2, `${frames.length} frames`)
    assert.deepEqual(frames[0].batches.map(b => b.qos), [QoS.REALTIME])
    assert.deepEqual(frames[0].batches[0].messages.map(m => m.id), [100])
    const rest = frames.slice(1).flatMap(f => f.batches.flatMap(b => b.messages.map(m => m.id)))
    assert.deepEqual(rest, [200, 1, 2, 3])
  })

  it('cuts bulk into frames of bulkWriteBytes and lets the event loop turn between them, a realtime message cutting in', async () => {
    const { outbox, frames } = recordingOutbox(1024 * 1024, { bulkWriteBytes: 8 * 1024, yieldAfterBulk: true })
    for (let i = 1; i <= 8; i++) outbox.push(item('bulk', i, 4 * 1024))
    await new Promise<void>(resolve => { queueMicrotask(resolve) })
    // the first bulk frame went in the turn of the pushes, the next ones wait for a turn of the event loop
    assert.equal(frames.length, 1)
    assert.deepEqual(frames[0].batches.flatMap(b => b.messages.map(m => m.id)), [1])
    outbox.push(item('realtime', 100, 64))
    await new Promise<void>(resolve => { queueMicrotask(resolve) })
    assert.deepEqual(frames[1].batches.map(b => b.qos), [QoS.REALTIME], 'the realtime message goes before the next bulk frame')
    await waitFor(() => outbox.queued === 0, 20_000, 'the bulk messages')
    const bulkFrames = frames.filter(f => f.batches.some(b => b.qos === QoS.BULK))
    // 4 KiB and 12 bytes of framing each: one per 8 KiB frame
    for (const f of bulkFrames) assert.ok(f.batches.reduce((n, b) => n + b.messages.reduce((m, x) => m + x.payload.byteLength, 0), 0) <= 8 * 1024)
    assert.deepEqual(bulkFrames.flatMap(f => f.batches.flatMap(b => b.messages.map(m => m.id))), [1, 2, 3, 4, 5, 6, 7, 8])
    outbox.close()
  })

  it('sends a realtime message past a full pipe, while bulk waits for the acknowledgement', async () => {
    const { outbox, frames } = recordingOutbox(32 * 1024)
    for (let i = 1; i <= 4; i++) outbox.push(item('bulk', i, 16 * 1024))
    await waitFor(() => frames.length > 0, 20_000, 'the first bulk frame')
    const bulkWritten = (): number => frames.flatMap(f => f.batches.filter(b => b.qos === QoS.BULK).flatMap(b => b.messages)).length
    // a message goes whole while the pipe has any room: 32 KiB takes two of 16 KiB, the rest wait for the acknowledgement
    const before = bulkWritten()
    assert.ok(before < 4, `${before} bulk messages written past the pipe limit`)
    outbox.push(item('realtime', 100, 64))
    await waitFor(() => frames.some(f => f.batches.some(b => b.qos === QoS.REALTIME)), 20_000, 'the realtime frame')
    assert.ok(outbox.queued > 0, 'bulk still waits for the acknowledgement')
    outbox.onAck(outbox.inPipe)
    await waitFor(() => bulkWritten() > before, 20_000, 'bulk after the acknowledgement')
    outbox.close()
  })

  it('starts a realtime request first when it arrives in one chunk behind bulk ones', async () => {
    [a, b] = await pair()
    const order: string[] = []
    const gate = Promise.withResolvers<void>()
    b.services.sembatch.handle('work', async p => {
      order.push(str(p))
      await gate.promise
      return p
    }, { concurrency: 1 })
    const s = await a.dialProtocol(b.peerId, b.services.sembatch.protocol)
    const frame = (qos: QoS, id: number, body: string): Uint8Array => withPrefix(encodeFrame({
      batches: [{ key: 'work', qos, compression: Compression.NONE, rawBytes: 0, messages: [{ id, kind: Kind.REQUEST, payload: text(body) }] }]
    }))
    const bulk = frame(QoS.BULK, 1, 'bulk')
    const rt = frame(QoS.REALTIME, 2, 'rt')
    const chunk = new Uint8Array(bulk.byteLength + rt.byteLength)
    chunk.set(bulk, 0)
    chunk.set(rt, bulk.byteLength)
    s.send(chunk)
    await waitFor(() => order.length === 1, 20_000, 'the first request started')
    gate.resolve()
    await waitFor(() => order.length === 2, 20_000, 'both requests started')
    assert.deepEqual(order, ['rt', 'bulk'])
    s.abort(new Error('done'))
  })
})
