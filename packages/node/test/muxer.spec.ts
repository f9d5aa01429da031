import assert from 'node:assert/strict'
import { connectionEncrypters } from '@aistack/handshake'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { installLazyWindowUpdates, muxer } from '../src/muxer.js'
import { waitFor } from './helpers.js'
import type { Libp2p, Stream } from '@libp2p/interface'

const PROTOCOL = '/aistack-test/sink/1.0.0'
const INITIAL_WINDOW = 256 * 1024

async function node (): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: connectionEncrypters('preferred'),
    streamMuxers: [muxer()],
    connectionMonitor: { enabled: false }
  })
}

/** what YamuxStream keeps privately: the sender's view of the receiver's window */
function sendWindow (stream: Stream): number {
  return (stream as unknown as { sendWindowCapacity: number }).sendWindowCapacity
}

describe('stream muxer (yamux with lazy window updates)', () => {
  let sender: Libp2p
  let receiver: Libp2p
  let received = 0

  before(async () => {
    assert.equal(installLazyWindowUpdates(), true)
    sender = await node()
    receiver = await node()
    await receiver.handle(PROTOCOL, (stream) => {
      stream.addEventListener('message', (evt) => { received += evt.data.byteLength })
      stream.addEventListener('remoteCloseWrite', () => { stream.close().catch(() => {}) })
    })
  })

  after(async () => {
    await Promise.all([sender?.stop(), receiver?.stop()])
  })

  it('answers small messages with no window update until half the window is used', async () => {
    const stream = await sender.dialProtocol(receiver.getMultiaddrs()[0], PROTOCOL)
    assert.equal(sendWindow(stream), INITIAL_WINDOW)
    received = 0
    for (let i = 0; i < 100; i++) {
      stream.send(new Uint8Array(100).fill(i))
    }
    await waitFor(() => received === 10_000, { what: '10,000 bytes at the receiver' })
    // the receiver has had them all and sent nothing back: without the rule, each message
    // would have been answered with a window update and the window would be whole again
    assert.equal(sendWindow(stream), INITIAL_WINDOW - 10_000)
    await stream.close()
  })

  it('still moves many windows of data, with the window refilled as it is used', async () => {
    const stream = await sender.dialProtocol(receiver.getMultiaddrs()[0], PROTOCOL)
    received = 0
    const total = 4 * 1024 * 1024
    const chunk = new Uint8Array(16 * 1024).fill(7)
    let lowest = INITIAL_WINDOW
    for (let sent = 0; sent < total; sent += chunk.byteLength) {
      if (!stream.send(chunk)) {
        await stream.onDrain()
      }
      lowest = Math.min(lowest, sendWindow(stream))
    }
    await waitFor(() => received === total, { what: `${total} bytes at the receiver` })
    // updates came when half the window was used, not before and not never
    assert.ok(lowest < INITIAL_WINDOW / 2 + chunk.byteLength, `the window went down to ${lowest} bytes`)
    assert.ok(sendWindow(stream) > 0)
    await stream.close()
  })
})
