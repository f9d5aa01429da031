import assert from 'node:assert/strict'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { answerPing } from '../src/ping.js'
import { waitFor } from './helpers.js'
import type { Libp2p, Stream } from '@libp2p/interface'

const PROTOCOL = '/test/ping-answer/1.0.0'

async function node (): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false }
  })
}

describe('answering pings', function () {
  this.timeout(30_000)
  const nodes: Libp2p[] = []

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
  })

  it('echoes and closes when the pinger\'s bytes and its close arrived before the answer started reading', async () => {
    const [a, b] = await Promise.all([node(), node()])
    nodes.push(a, b)
    const answered: Array<Promise<void>> = []
    await b.handle(PROTOCOL, async (stream: Stream) => {
      // a busy node: by the time the answer runs, the 32 bytes and the close have both arrived
      await waitFor(() => stream.remoteWriteStatus === 'closed', { timeoutMs: 10_000, what: 'the pinger to close its end' })
      const done = answerPing(stream, 10_000)
      answered.push(done)
      await done
    })
    const stream = await a.dialProtocol(b.getMultiaddrs()[0], PROTOCOL)
    const echo: Uint8Array[] = []
    stream.addEventListener('message', evt => { echo.push(evt.data.subarray()) })
    const data = Uint8Array.from({ length: 32 }, (_, i) => i)
    stream.send(data)
    const t0 = Date.now()
    await stream.close()
    // the answer closes its end once it has echoed: the pinger's stream ends, long before the 10 s timeout
    await waitFor(() => stream.status === 'closed', { timeoutMs: 8000, what: 'the answer to close its end' })
    assert.ok(Date.now() - t0 < 8000)
    assert.deepEqual(Buffer.concat(echo), Buffer.from(data))
    await Promise.all(answered)
  })
})
