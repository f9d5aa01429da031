import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { generateKeyPair } from '@libp2p/crypto/keys'
import {
  pqNoise, connectionEncrypters, downgradeGuard, encryptionName, isPq, parsePqMode, allowsQuic, isQuicAddr,
  PQ_NOISE_PROTOCOL, PQ_PEER_METADATA_KEY, HANDSHAKE_METRIC, handshakeCounts
} from '../src/index.js'
import { createNode, echo, ECHO, waitFor } from './helpers.js'
import type { Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'

describe('libp2p integration', function () {
  this.timeout(30_000)
  let nodes: Array<Libp2p<any>> = []

  async function node (opts: Parameters<typeof createNode>[0]): Promise<Libp2p<any>> {
    const n = await createNode(opts)
    nodes.push(n)
    return n
  }

  afterEach(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    nodes = []
  })

  it('two aistack nodes negotiate the hybrid handshake and move data', async () => {
    const a = await node({ encrypters: connectionEncrypters('preferred') })
    const b = await node({ encrypters: connectionEncrypters('preferred') })
    const conn = await a.dial(b.getMultiaddrs()[0])
    assert.equal(conn.encryption, PQ_NOISE_PROTOCOL)
    assert.equal(encryptionName(conn), 'noise-mlkem768-hfs')
    assert.equal(isPq(conn), true)
    await waitFor(() => b.getConnections(a.peerId).length > 0, 5000, 'inbound connection')
    assert.equal(b.getConnections(a.peerId)[0].encryption, PQ_NOISE_PROTOCOL)
    assert.equal(conn.remotePeer.equals(b.peerId), true)
    // more than one 65535-byte Noise frame per write
    const data = randomBytes(1024 * 1024 + 17)
    const out = await echo(await conn.newStream(ECHO), data)
    assert.equal(out.byteLength, data.byteLength)
    assert.equal(Buffer.compare(out, data), 0)
  })

  for (const [i, r] of [['node', 'noble'], ['noble', 'node']] as const) {
    it(`a ${i} ML-KEM initiator completes with a ${r} ML-KEM responder`, async () => {
      const a = await node({ encrypters: [pqNoise({ kem: i })] })
      const b = await node({ encrypters: [pqNoise({ kem: r })] })
      const conn = await a.dial(b.getMultiaddrs()[0])
      assert.equal(conn.encryption, PQ_NOISE_PROTOCOL)
      const out = await echo(await conn.newStream(ECHO), Buffer.from('hello'))
      assert.equal(Buffer.from(out).toString(), 'hello')
    })
  }

  it('a stock libp2p node with only noise connects over /noise (both directions)', async () => {
    const ours = await node({ encrypters: connectionEncrypters('preferred') })
    const stock = await node({ encrypters: [noise()] })
    const c1 = await stock.dial(ours.getMultiaddrs()[0])
    assert.equal(c1.encryption, '/noise')
    assert.equal(encryptionName(c1), 'noise')
    assert.equal(isPq(c1), false)
    await c1.close()
    const c2 = await ours.dial(stock.getMultiaddrs()[0])
    assert.equal(c2.encryption, '/noise')
    const out = await echo(await c2.newStream(ECHO), Buffer.from('classic'))
    assert.equal(Buffer.from(out).toString(), 'classic')
  })

  it('required refuses a stock node both ways', async () => {
    const strict = await node({ encrypters: connectionEncrypters('required') })
    const stock = await node({ encrypters: [noise()] })
    await assert.rejects(stock.dial(strict.getMultiaddrs()[0]))
    await assert.rejects(strict.dial(stock.getMultiaddrs()[0]))
    // and still accepts an aistack node
    const ours = await node({ encrypters: connectionEncrypters('preferred') })
    const conn = await ours.dial(strict.getMultiaddrs()[0])
    assert.equal(conn.encryption, PQ_NOISE_PROTOCOL)
  })

  it('off speaks stock /noise only', async () => {
    const off = await node({ encrypters: connectionEncrypters('off') })
    const ours = await node({ encrypters: connectionEncrypters('preferred') })
    const conn = await ours.dial(off.getMultiaddrs()[0])
    assert.equal(conn.encryption, '/noise')
  })

  it('refuses /noise from a peer that once completed the hybrid handshake', async () => {
    const guarded = await node({
      encrypters: connectionEncrypters('preferred'),
      services: { downgradeGuard: downgradeGuard({ mode: 'preferred' }) }
    })
    const key = await generateKeyPair('Ed25519')
    const first = await node({ encrypters: connectionEncrypters('preferred'), privateKey: key })
    const conn = await first.dial(guarded.getMultiaddrs()[0])
    assert.equal(conn.encryption, PQ_NOISE_PROTOCOL)
    await waitFor(async () => (await guarded.peerStore.get(first.peerId)).metadata.has(PQ_PEER_METADATA_KEY), 5000, 'peer store record')
    await first.stop()

    // the same identity comes back speaking only /noise
    const downgraded = await node({ encrypters: [noise()], privateKey: key })
    await assert.rejects(async () => {
      const c = await downgraded.dial(guarded.getMultiaddrs()[0])
      // the refusal may land just after the dialler saw its side complete
      await c.newStream(ECHO)
    })
    await waitFor(() => guarded.getConnections(downgraded.peerId).length === 0, 5000, 'no connection')
    await assert.rejects(guarded.dial(downgraded.getMultiaddrs()[0]), { message: /hybrid handshake before/ })
    assert.equal(guarded.getConnections(downgraded.peerId).length, 0)

    // an unrelated stock peer is still welcome
    const stock = await node({ encrypters: [noise()] })
    const ok = await stock.dial(guarded.getMultiaddrs()[0])
    assert.equal(ok.encryption, '/noise')
  })

  it('the guard service alone closes a /noise connection of a known hybrid peer', async () => {
    // the guarded node offers plain noise() (no encrypter-level protection)
    const guarded = await node({
      encrypters: [pqNoise(), noise()],
      services: { downgradeGuard: downgradeGuard() }
    })
    const key = await generateKeyPair('Ed25519')
    const first = await node({ encrypters: [pqNoise()], privateKey: key })
    await first.dial(guarded.getMultiaddrs()[0])
    await waitFor(async () => guarded.services.downgradeGuard.hasCompletedPq(first.peerId), 5000, 'guard record')
    await first.stop()
    const downgraded = await node({ encrypters: [noise()], privateKey: key })
    await downgraded.dial(guarded.getMultiaddrs()[0]).catch(() => {})
    await waitFor(() => guarded.getConnections(downgraded.peerId).length === 0 && downgraded.getConnections(guarded.peerId).length === 0, 5000, 'connection closed')
  })

  it('counts handshakes by encrypter and outcome', async () => {
    const counts: Record<string, number> = {}
    const metrics = () => ({
      registerCounterGroup: (name: string) => ({
        increment: (v: Record<string, number | true>) => {
          if (name !== HANDSHAKE_METRIC) return
          for (const k of Object.keys(v)) counts[k] = (counts[k] ?? 0) + 1
        },
        reset: () => {}
      }),
      registerCounter: () => ({ increment: () => {}, reset: () => {} }),
      registerMetric: () => ({ update: () => {}, increment: () => {}, decrement: () => {}, reset: () => {}, timer: () => () => {} }),
      registerMetricGroup: () => ({ update: () => {}, increment: () => {}, decrement: () => {}, reset: () => {}, timer: () => () => {} }),
      registerHistogram: () => ({ observe: () => {}, reset: () => {}, timer: () => () => {} }),
      registerHistogramGroup: () => ({ observe: () => {}, reset: () => {}, timer: () => () => {} }),
      registerSummary: () => ({ observe: () => {}, reset: () => {}, timer: () => () => {} }),
      registerSummaryGroup: () => ({ observe: () => {}, reset: () => {}, timer: () => () => {} }),
      trackMultiaddrConnection: () => {},
      trackProtocolStream: () => {},
      createTrace: () => undefined,
      traceFunction: (_name: string, fn: any) => fn
    })
    const ours = await node({ encrypters: connectionEncrypters('preferred'), metrics })
    const peer = await node({ encrypters: connectionEncrypters('preferred') })
    const stock = await node({ encrypters: [noise()] })
    await peer.dial(ours.getMultiaddrs()[0])
    await stock.dial(ours.getMultiaddrs()[0])
    await waitFor(() => counts['noise-mlkem768-hfs_success'] === 1 && counts.noise_success === 1, 5000, 'metrics')
    // the same totals without a libp2p metrics implementation
    const bare = handshakeCounts(peer.peerId)
    assert.equal(bare['noise-mlkem768-hfs_success'], 1)
    await assert.rejects(stock.dial(multiaddr(`/ip4/127.0.0.1/tcp/${String(ours.getMultiaddrs()[0].getComponents().find(c => c.name === 'tcp')?.value)}/p2p/${peer.peerId.toString()}`)))
    await waitFor(() => (handshakeCounts(ours.peerId).noise_error ?? 0) + (handshakeCounts(ours.peerId).noise_success ?? 0) >= 1, 5000, 'totals')
  })
})

describe('PQ mode helpers', () => {
  it('parses modes and refuses bad values', () => {
    assert.equal(parsePqMode(undefined), 'preferred')
    assert.equal(parsePqMode('Required'), 'required')
    assert.equal(parsePqMode('off'), 'off')
    assert.throws(() => parsePqMode('maybe'), { name: 'InvalidPqModeError' })
    assert.throws(() => connectionEncrypters('sometimes' as any), { name: 'InvalidPqModeError' })
    assert.equal(connectionEncrypters('preferred').length, 2)
    assert.equal(connectionEncrypters('required').length, 1)
    assert.equal(connectionEncrypters('off').length, 1)
  })

  it('leaves QUIC out under required and reports it as quic-tls', () => {
    assert.equal(allowsQuic('required'), false)
    assert.equal(allowsQuic('preferred'), true)
    const quic = multiaddr('/ip4/127.0.0.1/udp/4001/quic-v1')
    assert.equal(isQuicAddr(quic), true)
    assert.equal(isQuicAddr(multiaddr('/ip4/127.0.0.1/tcp/4001')), false)
    assert.equal(encryptionName({ encryption: 'native', remoteAddr: quic }), 'quic-tls')
  })
})
