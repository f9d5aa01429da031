import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { validateConfig } from '../src/config.js'
import { ConnectionLimiter, DEFAULT_CONNECTION_LIMITS, ipOf } from '../src/gater.js'
import type { Connection, MultiaddrConnection, PeerId } from '@libp2p/interface'

/** a raw connection as the gater sees it: a remote address and a close event */
function maConn (ip: string): MultiaddrConnection & { close: () => void } {
  const events = new EventTarget()
  return Object.assign(events, {
    remoteAddr: multiaddr(`/ip4/${ip}/tcp/4000`),
    close: () => { events.dispatchEvent(new Event('close')) }
  }) as any
}

function connection (ip: string, peer: PeerId, direction: 'inbound' | 'outbound' = 'inbound'): Connection {
  return { remoteAddr: multiaddr(`/ip4/${ip}/tcp/4000/p2p/${peer.toString()}`), remotePeer: peer, direction } as any
}

async function peer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

describe('connection limiter (gater)', () => {
  it('lets everything through until it is attached', () => {
    const limiter = new ConnectionLimiter({ maxPendingPerAddress: 1 })
    assert.equal(limiter.denyInboundConnection(maConn('10.0.0.1')), false)
    assert.equal(limiter.denyInboundConnection(maConn('10.0.0.1')), false)
  })

  it('holds connections in their handshake to maxPendingPerAddress per address, and frees a slot on close', () => {
    const refused: string[] = []
    const limiter = new ConnectionLimiter({ maxPendingPerAddress: 2 }, (reason) => refused.push(reason))
    limiter.attach({ connections: () => [], isKnown: async () => false })
    const a = maConn('10.0.0.1')
    assert.equal(limiter.denyInboundConnection(a), false)
    assert.equal(limiter.denyInboundConnection(maConn('10.0.0.1')), false)
    assert.equal(limiter.denyInboundConnection(maConn('10.0.0.1')), true)
    assert.equal(limiter.denyInboundConnection(maConn('10.0.0.2')), false, 'another address is not affected')
    a.close()
    a.close()
    assert.equal(limiter.pendingFrom('10.0.0.1'), 1, 'a second close does not free twice')
    assert.equal(limiter.denyInboundConnection(maConn('10.0.0.1')), false)
    assert.deepEqual(refused, ['pending-per-address'])
  })

  it('frees the slot when the upgrade completes', async () => {
    const limiter = new ConnectionLimiter({ maxPendingPerAddress: 1 })
    limiter.attach({ connections: () => [], isKnown: async () => false })
    const a = maConn('10.0.0.1')
    assert.equal(limiter.denyInboundConnection(a), false)
    assert.equal(limiter.denyInboundUpgradedConnection(await peer(), a), false)
    assert.equal(limiter.pendingFrom('10.0.0.1'), 0)
  })

  it('counts open inbound connections of an address against maxInboundPerAddress', async () => {
    const open: Connection[] = []
    const limiter = new ConnectionLimiter({ maxInboundPerAddress: 3 })
    limiter.attach({ connections: () => open, isKnown: async () => false })
    open.push(connection('10.0.0.1', await peer()), connection('10.0.0.1', await peer()), connection('10.0.0.1', await peer(), 'outbound'))
    assert.equal(limiter.denyInboundConnection(maConn('10.0.0.1')), false, 'outbound ones do not count')
    assert.equal(limiter.denyInboundConnection(maConn('10.0.0.1')), true)
  })

  it('refuses a peer over maxPerPeer, and unknown peers in the slots reserved for known ones', async () => {
    const known = await peer()
    const greedy = await peer()
    const open: Connection[] = [connection('10.0.0.9', greedy), connection('10.0.0.9', greedy)]
    const limiter = new ConnectionLimiter({ maxPerPeer: 2, maxConnections: 6, reservedForKnown: 2 })
    limiter.attach({ connections: () => open, isKnown: async (p) => p.equals(known) })
    assert.equal(await limiter.denyInboundEncryptedConnection(greedy), true)
    assert.equal(await limiter.denyInboundEncryptedConnection(await peer()), false)
    for (let i = 0; i < 2; i++) open.push(connection(`10.0.1.${i}`, await peer()))
    // four inbound of six, two reserved: only known peers now
    assert.equal(await limiter.denyInboundEncryptedConnection(await peer()), true)
    assert.equal(await limiter.denyInboundEncryptedConnection(known), false)
  })

  it('reads the IP of ip4 and ip6 addresses, and none of others', () => {
    assert.equal(ipOf(multiaddr('/ip4/1.2.3.4/tcp/1')), '1.2.3.4')
    assert.equal(ipOf(multiaddr('/ip6/::1/udp/1/quic-v1')), '::1')
    assert.equal(ipOf(multiaddr('/dns4/example.com/tcp/1')), undefined)
  })

  it('takes its limits from the config, with defaults, and checks them', () => {
    const config = validateConfig({ connections: { maxPerPeer: 2 } })
    assert.equal(config.connections.maxPerPeer, 2)
    assert.equal(config.connections.maxConnections, DEFAULT_CONNECTION_LIMITS.maxConnections)
    assert.throws(() => validateConfig({ connections: { maxPerPeer: 0 } }), /connections.maxPerPeer must be a positive integer/)
    assert.throws(() => validateConfig({ connections: { reservedForKnown: 300 } }), /reservedForKnown \(300\) must be below connections.maxConnections/)
    assert.throws(() => validateConfig({ connections: { perAddress: 1 } }), /connections.perAddress is not a known field/)
  })
})
