import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { serviceCapabilities } from '@libp2p/interface'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { ENCRYPTION_PQ, MSG_A_LENGTH, NOISE_MSG_MAX_LENGTH, PQ_NOISE_PROTOCOL, SIGNATURE_PREFIX } from './constants.js'
import { HandshakeClosedError, HandshakeMessageError, IdentitySignatureError, UnexpectedPeerIdError } from './errors.js'
import { selectKem } from './kem.js'
import { handshakeCounter } from './metrics.js'
import { x25519FromPrivate, x25519Generate } from './noise/crypto.js'
import { XXhfsHandshake } from './noise/xxhfs.js'
import { NoiseHandshakePayload } from './pb/payload.js'
import { EncryptedStream, TransportCipher } from './stream.js'
import type { KemChoice, Kem } from './kem.js'
import type { KeyPair } from './noise/crypto.js'
import type { NoiseExtensions } from './pb/payload.js'
import type {
  AbortOptions, ComponentLogger, ConnectionEncrypter, Logger, MessageStream, Metrics, PeerId, PrivateKey,
  PublicKey, SecureConnectionOptions, SecuredConnection, StreamMuxerFactory, Upgrader
} from '@libp2p/interface'
import type { LengthPrefixedStream } from '@libp2p/utils'

type ByteList = Awaited<ReturnType<LengthPrefixedStream['read']>>

export interface PqNoiseInit {
  /** ML-KEM-768 backend: node:crypto when available (`auto`, the default), `node` or `noble` */
  kem?: KemChoice
  /** 32-byte X25519 static key; by default a fresh one per encrypter instance */
  staticNoiseKey?: Uint8Array
  /** Noise prologue, empty by default (both sides must agree) */
  prologue?: Uint8Array
  /** extra handshake extensions to announce (the stream muxers are filled in) */
  extensions?: Partial<NoiseExtensions>
}

export interface PqNoiseComponents {
  privateKey: PrivateKey
  peerId?: PeerId
  logger: ComponentLogger
  upgrader: Upgrader
  metrics?: Metrics
}

export type { NoiseExtensions }

const u16Encode = (n: number): Uint8Array => Uint8Array.of(n >> 8, n & 0xff)
const u16Decode = (data: ByteList): number => {
  if (data.byteLength < 2) throw new RangeError('Need two bytes')
  return data.getUint16(0)
}

function reason (err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}

/**
 * The libp2p connection encrypter of `/noise-mlkem768-hfs/0.2.0`: libp2p's
 * Noise (same framing, payload and transport phase) with the XXhfs pattern,
 * X25519 plus a fresh ML-KEM-768 key pair per handshake.
 */
export class PqNoise implements ConnectionEncrypter<NoiseExtensions> {
  readonly protocol = PQ_NOISE_PROTOCOL
  readonly kem: Kem
  private readonly components: PqNoiseComponents
  private readonly staticKey: KeyPair
  private readonly prologue: Uint8Array
  private readonly extensions: Partial<NoiseExtensions>
  private readonly log: Logger
  private readonly count: ReturnType<typeof handshakeCounter>

  constructor (components: PqNoiseComponents, init: PqNoiseInit = {}) {
    this.components = components
    this.kem = selectKem(init.kem ?? 'auto')
    this.staticKey = init.staticNoiseKey != null ? x25519FromPrivate(init.staticNoiseKey) : x25519Generate()
    this.prologue = init.prologue ?? new Uint8Array(0)
    this.extensions = init.extensions ?? {}
    this.log = components.logger.forComponent('aistack:handshake')
    this.count = handshakeCounter(components)
  }

  readonly [Symbol.toStringTag] = '@aistack/handshake'
  readonly [serviceCapabilities]: string[] = ['@libp2p/connection-encryption', '@aistack/handshake']

  async secureOutbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection<NoiseExtensions>> {
    return this.secure(true, connection, options)
  }

  async secureInbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection<NoiseExtensions>> {
    return this.secure(false, connection, options)
  }

  private async secure (initiator: boolean, connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection<NoiseExtensions>> {
    const log = connection.log?.newScope('noise-mlkem768-hfs') ?? this.log
    const lp = lpStream(connection, {
      lengthEncoder: u16Encode,
      lengthDecoder: u16Decode,
      maxLengthLength: 2,
      maxDataLength: NOISE_MSG_MAX_LENGTH
    })
    const streamMuxers = options?.skipStreamMuxerNegotiation === true ? [] : [...this.components.upgrader.getStreamMuxers().keys()]
    const extensions: NoiseExtensions = { webtransportCerthashes: [], ...this.extensions, streamMuxers }
    const hs = new XXhfsHandshake({ initiator, s: this.staticKey, kem: this.kem, prologue: this.prologue })
    let remote: NoiseHandshakePayload
    try {
      const payload = await this.payload(extensions)
      if (initiator) {
        await lp.write(hs.writeMessageA(), options)
        const b = await read(lp, options)
        remote = await this.verify(hs.readMessageB(b), hs.rs, options?.remotePeer)
        await lp.write(hs.writeMessageC(payload), options)
      } else {
        const a = await read(lp, options)
        if (a.byteLength !== MSG_A_LENGTH) {
          throw new HandshakeMessageError(`Message A must be ${MSG_A_LENGTH} bytes, got ${a.byteLength}`)
        }
        hs.readMessageA(a)
        await lp.write(hs.writeMessageB(payload), options)
        const c = await read(lp, options)
        remote = await this.verify(hs.readMessageC(c), hs.rs, options?.remotePeer)
      }
      if (connection.status !== 'open') {
        // the peer hung up during the last step: nothing may be built on a closed stream
        throw new HandshakeClosedError(`The ${initiator ? 'outbound' : 'inbound'} connection closed during the hybrid handshake`)
      }
    } catch (err) {
      this.count(ENCRYPTION_PQ, 'error')
      log.error('%s hybrid handshake failed: %s', initiator ? 'outbound' : 'inbound', reason(err))
      throw err
    }
    const [cs1, cs2] = hs.split()
    const k1 = cs1.key
    const k2 = cs2.key
    if (k1 == null || k2 == null) throw new Error('Handshake produced no keys')
    const send = new TransportCipher(initiator ? k1 : k2)
    const receive = new TransportCipher(initiator ? k2 : k1)
    const publicKey = publicKeyFromProtobuf(remote.identityKey)
    this.count(ENCRYPTION_PQ, 'success')
    log.trace('hybrid handshake complete with %s', initiator ? 'responder' : 'initiator')
    return {
      connection: new EncryptedStream(lp.unwrap(), send, receive),
      remoteExtensions: remote.extensions,
      remotePeer: peerIdFromPublicKey(publicKey),
      streamMuxer: options?.skipStreamMuxerNegotiation === true ? undefined : this.streamMuxer(remote.extensions?.streamMuxers)
    }
  }

  private async payload (extensions: NoiseExtensions): Promise<Uint8Array> {
    const { privateKey } = this.components
    const identitySig = await privateKey.sign(signedBytes(this.staticKey.publicKey))
    return NoiseHandshakePayload.encode({
      identityKey: publicKeyToProtobuf(privateKey.publicKey),
      identitySig,
      extensions
    })
  }

  private async verify (bytes: Uint8Array, remoteStatic: Uint8Array | undefined, expected?: PeerId): Promise<NoiseHandshakePayload> {
    let payload: NoiseHandshakePayload
    let publicKey: PublicKey
    try {
      payload = NoiseHandshakePayload.decode(bytes, { limits: { extensions: { webtransportCerthashes: 16, streamMuxers: 16 } } })
      publicKey = publicKeyFromProtobuf(payload.identityKey)
    } catch (err) {
      throw new HandshakeMessageError(`Malformed handshake payload: ${reason(err)}`)
    }
    if (remoteStatic == null) throw new HandshakeMessageError('Remote static key missing')
    if (expected != null && !peerIdFromPublicKey(publicKey).equals(expected)) {
      throw new UnexpectedPeerIdError(`Remote proved ${peerIdFromPublicKey(publicKey).toString()}, expected ${expected.toString()}`)
    }
    let ok = false
    try {
      ok = await publicKey.verify(signedBytes(remoteStatic), payload.identitySig)
    } catch {
      ok = false
    }
    if (!ok) throw new IdentitySignatureError('Identity signature over the static Noise key does not verify')
    return payload
  }

  private streamMuxer (protocols?: string[]): StreamMuxerFactory | undefined {
    if (protocols == null || protocols.length === 0) return undefined
    const muxers = this.components.upgrader.getStreamMuxers()
    for (const protocol of protocols) {
      const muxer = muxers.get(protocol)
      if (muxer != null) return muxer
    }
    throw new HandshakeMessageError('Early muxer negotiation found no common stream muxer')
  }
}

async function read (lp: LengthPrefixedStream, options?: AbortOptions): Promise<Uint8Array> {
  return (await lp.read(options)).subarray()
}

function signedBytes (staticKey: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from(SIGNATURE_PREFIX), staticKey])
}

/**
 * The hybrid encrypter for libp2p's `connectionEncrypters`:
 * `createLibp2p({ connectionEncrypters: [pqNoise(), noise()] })`.
 */
export function pqNoise (init: PqNoiseInit = {}): (components: PqNoiseComponents) => ConnectionEncrypter<NoiseExtensions> {
  return (components) => new PqNoise(components, init)
}
