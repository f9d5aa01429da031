import assert from 'node:assert/strict'
import { Kind, QoS, Compression, RemoteError, StreamResetError, RequestTimeoutError, encodeFrame, withPrefix } from '../src/index.js'
import { pair, str, text, waitFor } from './helpers.js'
import type { Node } from './helpers.js'
import type { Stream } from '@libp2p/interface'

describe('sembatch', function () {
  let a: Node
  let b: Node

  afterEach(async () => {
    await a?.stop()
    await b?.stop()
  })

  it('answers requests, many of them in few frames', async () => {
    [a, b] = await pair()
    b.services.sembatch.handle('upper', payload => text(str(payload).toUpperCase()))
    assert.equal(str(await a.services.sembatch.send(b.peerId, 'upper', text('hi'))), 'HI')
    const before = a.services.sembatch.stats()
    const answers = await Promise.all(Array.from({ length: 2000 }, async (_, i) => str(await a.services.sembatch.send(b.peerId, 'upper', text(`m${i}`)))))
    assert.deepEqual(answers, Array.from({ length: 2000 }, (_, i) => `M${i}`))
    const after = a.services.sembatch.stats()
    assert.equal(after.messagesSent - before.messagesSent, 2000)
    // messages sent in one turn share frames
    assert.ok(after.framesSent - before.framesSent < 100, `${after.framesSent - before.framesSent} < ${100}`)
    assert.equal(after.openLinks, 1)
  })

  it('fails a request with the handler\'s error, and the stream lives on', async () => {
    [a, b] = await pair()
    b.services.sembatch.handle('fail', () => { throw new TypeError('no good') })
    b.services.sembatch.handle('echo', p => p)
    const err = await a.services.sembatch.send(b.peerId, 'fail', text('x')).catch(e => e)
    assert.ok(err instanceof RemoteError, String(err))
    assert.match(err.message, /no good/)
    assert.equal(str(await a.services.sembatch.send(b.peerId, 'echo', text('still'))), 'still')
  })

  it('streams an answer piece by piece: the first piece arrives before the last is produced', async () => {
    [a, b] = await pair()
    const release = Promise.withResolvers<void>()
    b.services.sembatch.handle('tokens', async function * () {
      yield text('first ')
      await release.promise
      yield text('second ')
      yield text('third')
    })
    const pieces: string[] = []
    for await (const piece of a.services.sembatch.stream(b.peerId, 'tokens', text(''))) {
      pieces.push(str(piece))
      if (pieces.length === 1) release.resolve()
    }
    assert.deepEqual(pieces, ['first ', 'second ', 'third'])
    // send() joins the pieces
    assert.equal(str(await a.services.sembatch.send(b.peerId, 'tokens', text(''))), 'first second third')
  })

  it('hands a batch handler whole batches, answers in order, failures per item', async () => {
    [a, b] = await pair()
    const sizes: number[] = []
    b.services.sembatch.handleBatch('embed', payloads => {
      sizes.push(payloads.length)
      return payloads.map(p => str(p) === 'bad' ? new Error('bad input') : text(`v(${str(p)})`))
    })
    const inputs = Array.from({ length: 500 }, (_, i) => i === 7 ? 'bad' : `t${i}`)
    const results = await Promise.allSettled(inputs.map(async t => str(await a.services.sembatch.send(b.peerId, 'embed', text(t)))))
    results.forEach((r, i) => {
      if (i === 7) {
        assert.equal(r.status, 'rejected')
        assert.match((r as PromiseRejectedResult).reason.message, /bad input/)
      } else {
        assert.deepEqual(r, { status: 'fulfilled', value: `v(t${i})` })
      }
    })
    assert.ok(Math.max(...sizes) > 1)
    assert.equal(sizes.reduce((s, n) => s + n, 0), 500)
  })

  it('serves realtime before interactive before bulk at the receiver', async () => {
    [a, b] = await pair()
    const order: string[] = []
    const gate = Promise.withResolvers<void>()
    b.services.sembatch.handle('work', async p => {
      order.push(str(p))
      await gate.promise
      return p
    }, { concurrency: 1 })
    const sends = [
      ...Array.from({ length: 20 }, (_, i) => a.services.sembatch.send(b.peerId, 'work', text(`bulk${i}`), { qos: 'bulk' })),
      ...Array.from({ length: 5 }, (_, i) => a.services.sembatch.send(b.peerId, 'work', text(`int${i}`))),
      a.services.sembatch.send(b.peerId, 'work', text('rt'), { qos: 'realtime' })
    ]
    await waitFor(() => order.length === 1, 20_000, 'the first request')
    gate.resolve()
    await Promise.all(sends)
    assert.equal(order[0], 'rt')
    assert.deepEqual(order.slice(1, 6), ['int0', 'int1', 'int2', 'int3', 'int4'])
    assert.deepEqual(order.slice(6), Array.from({ length: 20 }, (_, i) => `bulk${i}`))
  })

  it('never has more requests in flight than the receiver granted', async () => {
    [a, b] = await pair()
    let started = 0
    let maxActive = 0
    let active = 0
    const gate = Promise.withResolvers<void>()
    b.services.sembatch.handle('slow', async p => {
      started++
      active++
      maxActive = Math.max(maxActive, active)
      await gate.promise
      active--
      return p
    }, { concurrency: 100_000 })
    const sends = Array.from({ length: 3000 }, (_, i) => a.services.sembatch.send(b.peerId, 'slow', text(String(i))))
    await waitFor(() => started === 1024, 20_000, '1024 requests started')
    // the rest are held at the sender: its queue says so
    const remote = b.services.sembatch
    assert.equal(remote.stats().inboundLinks, 1)
    gate.resolve()
    await Promise.all(sends)
    assert.equal(maxActive, 1024)
    assert.equal(started, 3000)
  })

  it('times out a request without an answer, and ignores the late answer', async () => {
    [a, b] = await pair()
    const gate = Promise.withResolvers<void>()
    b.services.sembatch.handle('late', async p => { await gate.promise; return p })
    b.services.sembatch.handle('echo', p => p)
    const err = await a.services.sembatch.send(b.peerId, 'late', text('x'), { timeoutMs: 50 }).catch(e => e)
    assert.ok(err instanceof RequestTimeoutError, String(err))
    gate.resolve()
    assert.equal(str(await a.services.sembatch.send(b.peerId, 'echo', text('ok'))), 'ok')
  })

  it('calls its own handlers for requests to itself', async () => {
    [a, b] = await pair()
    a.services.sembatch.handle('echo', p => p)
    assert.equal(str(await a.services.sembatch.send(a.peerId, 'echo', text('me'))), 'me')
  })

  it('compresses large batches of similar messages', async () => {
    [a, b] = await pair()
    b.services.sembatch.handle('echo', p => p)
    const payload = text(JSON.stringify({ role: 'user', content: 'summarise the following agent log line for the operator please', n: 1 }))
    const before = a.services.sembatch.stats()
    await Promise.all(Array.from({ length: 200 }, async () => a.services.sembatch.send(b.peerId, 'echo', payload)))
    const after = a.services.sembatch.stats()
    assert.ok(after.bytesSent - before.bytesSent < 200 * payload.byteLength / 4, `${after.bytesSent - before.bytesSent} < ${200 * payload.byteLength / 4}`)
  })

  describe('bad input: the stream is reset, the node lives', () => {
    async function raw (from: Node, to: Node): Promise<Stream> {
      return from.dialProtocol(to.peerId, to.services.sembatch.protocol)
    }

    async function expectReset (stream: Stream): Promise<void> {
      await waitFor(() => stream.status !== 'open', 20_000, 'the stream to be reset')
      assert.ok(['aborted', 'reset', 'closed'].includes(stream.status), stream.status)
    }

    async function stillServes (): Promise<void> {
      assert.equal(str(await a.services.sembatch.send(b.peerId, 'echo', text('alive'))), 'alive')
    }

    function request (key: string, n: number, bytes = 8): Uint8Array {
      return withPrefix(encodeFrame({
        batches: [{ key, qos: QoS.INTERACTIVE, compression: Compression.NONE, rawBytes: 0, messages: Array.from({ length: n }, (_, i) => ({ id: i + 1, kind: Kind.REQUEST, payload: new Uint8Array(bytes) })) }]
      }))
    }

    beforeEach(async () => {
      [a, b] = await pair()
      b.services.sembatch.handle('echo', p => p)
      b.services.sembatch.handle('hold', async () => new Promise<Uint8Array>(() => {}), { concurrency: 100_000 })
    })

    it('malformed frame', async () => {
      const s = await raw(a, b)
      s.send(Uint8Array.from([5, 0xff, 0xff, 0xff, 0xff, 0xff]))
      await expectReset(s)
      await stillServes()
    })

    it('oversize frame (length prefix past the limit)', async () => {
      const s = await raw(a, b)
      s.send(Uint8Array.from([0xff, 0xff, 0xff, 0x7f]))
      await expectReset(s)
      await stillServes()
    })

    it('oversize batch (more messages than a batch may hold)', async () => {
      const s = await raw(a, b)
      s.send(request('echo', 5000, 0))
      await expectReset(s)
      await stillServes()
    })

    it('unknown context key', async () => {
      const s = await raw(a, b)
      s.send(request('nobody-serves-this', 1))
      await expectReset(s)
      await stillServes()
      const err = await a.services.sembatch.send(b.peerId, 'nobody-serves-this', text('x')).catch(e => e)
      assert.ok(err instanceof StreamResetError, String(err))
      await stillServes()
    })

    it('credit violation', async () => {
      const s = await raw(a, b)
      s.send(request('hold', 1000))
      s.send(request('hold', 25))
      await expectReset(s)
      await stillServes()
    })

    it('answers on the request direction', async () => {
      const s = await raw(a, b)
      s.send(withPrefix(encodeFrame({
        batches: [{ key: 'echo', qos: QoS.INTERACTIVE, compression: Compression.NONE, rawBytes: 0, messages: [{ id: 1, kind: Kind.RESPONSE, payload: new Uint8Array(1) }] }]
      })))
      await expectReset(s)
      await stillServes()
    })
  })
})
