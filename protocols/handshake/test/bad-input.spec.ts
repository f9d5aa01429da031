import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { connectionEncrypters, nodeKem, PQ_NOISE_PROTOCOL, SIGNATURE_PREFIX, XXhfsHandshake } from '../src/index.js'
import { x25519Generate } from '../src/noise/crypto.js'
import { NoiseHandshakePayload } from '../src/pb/payload.js'
import { captureLogger, createNode, waitFor } from './helpers.js'
import type { Kem } from '../src/index.js'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

const MSS = '/multistream/1.0.0\n'

/** a TCP socket with a buffered reader */
class RawConn {
  readonly socket: net.Socket
  private buffer = Buffer.alloc(0)
  private waiters: Array<() => void> = []
  ended = false
  readonly closed: Promise<void>

  constructor (socket: net.Socket) {
    this.socket = socket
    socket.on('data', (d: Buffer) => { this.buffer = Buffer.concat([this.buffer, d]); this.wake() })
    socket.on('error', () => {})
    this.closed = new Promise(resolve => socket.on('close', () => { this.ended = true; this.wake(); resolve() }))
  }

  static async connect (port: number): Promise<RawConn> {
    const socket = net.connect(port, '127.0.0.1')
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    return new RawConn(socket)
  }

  private wake (): void {
    const w = this.waiters
    this.waiters = []
    w.forEach(f => { f() })
  }

  async read (n: number): Promise<Buffer> {
    while (this.buffer.byteLength < n) {
      if (this.ended) throw new Error('socket closed')
      await new Promise<void>(resolve => this.waiters.push(resolve))
    }
    const out = this.buffer.subarray(0, n)
    this.buffer = this.buffer.subarray(n)
    return out
  }

  /** one multistream-select message (varint length < 128) */
  async readMss (): Promise<string> {
    const [len] = await this.read(1)
    return (await this.read(len)).toString()
  }

  writeMss (s: string): void {
    this.socket.write(Buffer.concat([Buffer.of(Buffer.byteLength(s)), Buffer.from(s)]))
  }

  /** one Noise message with its 2-byte length */
  async readFrame (): Promise<Buffer> {
    const len = (await this.read(2)).readUInt16BE(0)
    return this.read(len)
  }

  writeFrame (data: Uint8Array, declared = data.byteLength): void {
    const h = Buffer.alloc(2)
    h.writeUInt16BE(declared)
    this.socket.write(Buffer.concat([h, data]))
  }
}

async function payload (key: PrivateKey, staticKey: Uint8Array, signOver?: Uint8Array): Promise<Uint8Array> {
  const sig = await key.sign(signOver ?? Buffer.concat([Buffer.from(SIGNATURE_PREFIX), staticKey]))
  return NoiseHandshakePayload.encode({ identityKey: publicKeyToProtobuf(key.publicKey), identitySig: sig, extensions: { streamMuxers: ['/yamux/1.0.0'], webtransportCerthashes: [] } })
}

function port (node: Libp2p<any>): number {
  return Number(node.getMultiaddrs()[0].getComponents().find(c => c.name === 'tcp')?.value)
}

describe('bad handshake input on raw sockets', function () {
  this.timeout(30_000)
  let node: Libp2p<any>
  let peer: Libp2p<any>
  let lines: string[]

  beforeEach(async () => {
    lines = []
    node = await createNode({ encrypters: connectionEncrypters('required'), logger: captureLogger(lines), inboundUpgradeTimeout: 2000 })
    peer = await createNode({ encrypters: connectionEncrypters('required') })
  })

  afterEach(async () => {
    await node?.stop()
    await peer?.stop()
  })

  async function stillServes (): Promise<void> {
    const conn = await peer.dial(node.getMultiaddrs()[0])
    assert.equal(conn.encryption, PQ_NOISE_PROTOCOL)
    await conn.close()
  }

  async function logged (pattern: RegExp): Promise<void> {
    await waitFor(() => lines.some(l => pattern.test(l)), 5000, `a log line matching ${String(pattern)}`)
  }

  /** connects as an initiator and gets through multistream-select */
  async function open (): Promise<RawConn> {
    const c = await RawConn.connect(port(node))
    c.writeMss(MSS)
    c.writeMss(PQ_NOISE_PROTOCOL + '\n')
    assert.equal(await c.readMss(), MSS)
    assert.equal(await c.readMss(), PQ_NOISE_PROTOCOL + '\n')
    return c
  }

  describe('the node as responder', () => {
    it('truncated message A', async () => {
      const c = await open()
      c.writeFrame(randomBytes(100), 1216)
      c.socket.end()
      await c.closed
      await logged(/inbound hybrid handshake failed: .*EOF/i)
      await stillServes()
    })

    it('oversize message A', async () => {
      const c = await open()
      const i = new XXhfsHandshake({ initiator: true, s: x25519Generate(), kem: nodeKem })
      c.writeFrame(Buffer.concat([i.writeMessageA(), randomBytes(4000)]))
      await c.closed
      await logged(/HandshakeMessageError: Message A must be 1216 bytes, got 5216/)
      await stillServes()
    })

    it('an ML-KEM public key of the wrong length', async () => {
      const c = await open()
      const i = new XXhfsHandshake({ initiator: true, s: x25519Generate(), kem: nodeKem })
      c.writeFrame(i.writeMessageA().subarray(0, 1215))
      await c.closed
      await logged(/HandshakeMessageError: Message A must be 1216 bytes, got 1215/)
      await stillServes()
    })

    it('garbage message A', async () => {
      const c = await open()
      c.writeFrame(Buffer.alloc(1216, 0xff))
      await c.closed
      await logged(/inbound hybrid handshake failed: (KemError|HandshakeMessageError)/)
      await stillServes()
    })

    it('garbage message C', async () => {
      const c = await open()
      const i = new XXhfsHandshake({ initiator: true, s: x25519Generate(), kem: nodeKem })
      c.writeFrame(i.writeMessageA())
      i.readMessageB(await c.readFrame())
      c.writeFrame(randomBytes(200))
      await c.closed
      await logged(/HandshakeDecryptError/)
      await stillServes()
    })

    it('a bad identity signature', async () => {
      const c = await open()
      const s = x25519Generate()
      const i = new XXhfsHandshake({ initiator: true, s, kem: nodeKem })
      c.writeFrame(i.writeMessageA())
      i.readMessageB(await c.readFrame())
      const key = await generateKeyPair('Ed25519')
      // signs another static key than the one in the handshake
      c.writeFrame(i.writeMessageC(await payload(key, x25519Generate().publicKey)))
      await c.closed
      await logged(/IdentitySignatureError/)
      await stillServes()
    })

    it('an identity key that is not a key', async () => {
      const c = await open()
      const i = new XXhfsHandshake({ initiator: true, s: x25519Generate(), kem: nodeKem })
      c.writeFrame(i.writeMessageA())
      i.readMessageB(await c.readFrame())
      c.writeFrame(i.writeMessageC(NoiseHandshakePayload.encode({ identityKey: randomBytes(40), identitySig: randomBytes(64) })))
      await c.closed
      await logged(/HandshakeMessageError: Malformed handshake payload/)
      await stillServes()
    })

    it('a peer that stalls after message A', async () => {
      const c = await open()
      const i = new XXhfsHandshake({ initiator: true, s: x25519Generate(), kem: nodeKem })
      c.writeFrame(i.writeMessageA())
      await c.readFrame()
      // never sends message C: the upgrade timeout ends it
      await c.closed
      await logged(/inbound hybrid handshake failed/)
      await stillServes()
    })
  })

  describe('the node as initiator', () => {
    let server: net.Server

    afterEach(async () => {
      await new Promise(resolve => server?.close(resolve))
    })

    /** a raw responder that answers message A with `respond` */
    async function rawResponder (respond: (c: RawConn, a: Buffer) => Promise<void>): Promise<number> {
      server = net.createServer(socket => {
        const c = new RawConn(socket);
        (async () => {
          assert.equal(await c.readMss(), MSS)
          assert.equal(await c.readMss(), PQ_NOISE_PROTOCOL + '\n')
          c.writeMss(MSS)
          c.writeMss(PQ_NOISE_PROTOCOL + '\n')
          await respond(c, await c.readFrame())
        })().catch(() => { socket.destroy() })
      })
      await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
      return (server.address() as net.AddressInfo).port
    }

    function shortKem (cut: number): Kem {
      return {
        name: 'node',
        generateKeyPair: () => nodeKem.generateKeyPair(),
        encapsulate: (pk) => {
          const e = nodeKem.encapsulate(pk)
          return { ciphertext: e.ciphertext.subarray(0, e.ciphertext.byteLength - cut), sharedSecret: e.sharedSecret }
        }
      }
    }

    async function answer (c: RawConn, a: Buffer, key: PrivateKey, kem: Kem = nodeKem, signOver?: Uint8Array): Promise<void> {
      const s = x25519Generate()
      const r = new XXhfsHandshake({ initiator: false, s, kem })
      r.readMessageA(a)
      c.writeFrame(r.writeMessageB(await payload(key, s.publicKey, signOver)))
    }

    it('a KEM ciphertext of the wrong length (message B too short)', async () => {
      const key = await generateKeyPair('Ed25519')
      const p = await rawResponder(async (c, a) => {
        const r = new XXhfsHandshake({ initiator: false, s: x25519Generate(), kem: shortKem(1) })
        r.readMessageA(a)
        c.writeFrame(r.writeMessageB())
      })
      await assert.rejects(node.dial(multiaddr(`/ip4/127.0.0.1/tcp/${p}/p2p/${peerIdFromPrivateKey(key).toString()}`)))
      await logged(/outbound hybrid handshake failed: HandshakeMessageError: Message B too short: 1199 bytes/)
      await stillServes()
    })

    it('a KEM ciphertext of the wrong length followed by a payload', async () => {
      const key = await generateKeyPair('Ed25519')
      const p = await rawResponder(async (c, a) => { await answer(c, a, key, shortKem(8)) })
      await assert.rejects(node.dial(multiaddr(`/ip4/127.0.0.1/tcp/${p}/p2p/${peerIdFromPrivateKey(key).toString()}`)))
      await logged(/outbound hybrid handshake failed: HandshakeDecryptError/)
      await stillServes()
    })

    it('a responder whose peer ID is not the one dialled', async () => {
      const key = await generateKeyPair('Ed25519')
      const expected = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
      const p = await rawResponder(async (c, a) => { await answer(c, a, key) })
      await assert.rejects(node.dial(multiaddr(`/ip4/127.0.0.1/tcp/${p}/p2p/${expected.toString()}`)))
      await logged(/UnexpectedPeerIdError: Remote proved/)
      await stillServes()
    })

    it('a responder with a bad identity signature', async () => {
      const key = await generateKeyPair('Ed25519')
      const p = await rawResponder(async (c, a) => { await answer(c, a, key, nodeKem, randomBytes(56)) })
      await assert.rejects(node.dial(multiaddr(`/ip4/127.0.0.1/tcp/${p}/p2p/${peerIdFromPrivateKey(key).toString()}`)))
      await logged(/outbound hybrid handshake failed: IdentitySignatureError/)
      await stillServes()
    })

    it('garbage message B', async () => {
      const key = await generateKeyPair('Ed25519')
      const p = await rawResponder(async (c) => { c.writeFrame(randomBytes(1500)) })
      await assert.rejects(node.dial(multiaddr(`/ip4/127.0.0.1/tcp/${p}/p2p/${peerIdFromPrivateKey(key).toString()}`)))
      await logged(/outbound hybrid handshake failed: (HandshakeDecryptError|HandshakeMessageError)/)
      await stillServes()
    })
  })
})
