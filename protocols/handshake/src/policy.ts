import { noise } from '@chainsafe/libp2p-noise'
import { serviceCapabilities } from '@libp2p/interface'
import { ENCRYPTION_NOISE, ENCRYPTION_PQ, ENCRYPTION_QUIC, NOISE_PROTOCOL, PQ_NOISE_PROTOCOL, PQ_PEER_METADATA_KEY } from './constants.js'
import { DowngradeError, HandshakeClosedError, InvalidPqModeError } from './errors.js'
import { pqNoise } from './encrypter.js'
import { handshakeCounter } from './metrics.js'
import type { PqNoiseInit } from './encrypter.js'
import type {
  ComponentLogger, ConnectionEncrypter, Metrics, MessageStream, PeerId, PeerStore, PrivateKey,
  SecureConnectionOptions, SecuredConnection, Upgrader
} from '@libp2p/interface'

/** the part of a multiaddr these helpers read */
export interface AddrLike {
  getComponents(): Array<{ name: string }>
}

/**
 * How a node uses the hybrid handshake:
 * - `preferred` (default): hybrid with aistack peers, `/noise` with stock
 *   peers; a peer that once completed the hybrid is refused on `/noise`
 * - `required`: hybrid only; no `/noise` and no QUIC
 * - `off`: stock `/noise` only
 */
export type PqMode = 'preferred' | 'required' | 'off'

export const PQ_MODES: readonly PqMode[] = ['preferred', 'required', 'off']
export const DEFAULT_PQ_MODE: PqMode = 'preferred'

/** parses a `--pq` flag or config value; undefined gives the default */
export function parsePqMode (value?: string | null): PqMode {
  if (value == null || value === '') return DEFAULT_PQ_MODE
  const v = String(value).trim().toLowerCase()
  if ((PQ_MODES as readonly string[]).includes(v)) return v as PqMode
  throw new InvalidPqModeError(`Invalid PQ mode "${String(value)}": expected one of ${PQ_MODES.join(', ')}`)
}

/** true when the mode allows QUIC (its TLS 1.3 is classical) */
export function allowsQuic (mode: PqMode): boolean {
  return mode !== 'required'
}

/** true for a QUIC multiaddr, to filter listen and dial addresses under `required` */
export function isQuicAddr (ma: AddrLike): boolean {
  return ma.getComponents().some(c => c.name === 'quic' || c.name === 'quic-v1')
}

interface ConnectionLike {
  encryption?: string
  remoteAddr: AddrLike
}

/** `noise-mlkem768-hfs`, `noise`, `quic-tls`, or the raw protocol id of anything else */
export function encryptionName (connection: ConnectionLike): string {
  if (connection.encryption === PQ_NOISE_PROTOCOL) return ENCRYPTION_PQ
  if (connection.encryption === NOISE_PROTOCOL) return ENCRYPTION_NOISE
  if (isQuicAddr(connection.remoteAddr)) return ENCRYPTION_QUIC
  return connection.encryption ?? 'unknown'
}

/** true when the connection is protected by the hybrid handshake */
export function isPq (connection: ConnectionLike): boolean {
  return connection.encryption === PQ_NOISE_PROTOCOL
}

/** true when the peer store remembers that this peer completed the hybrid handshake */
export async function hasCompletedPq (peerStore: PeerStore, peer: PeerId): Promise<boolean> {
  try {
    const p = await peerStore.get(peer)
    return p.metadata.has(PQ_PEER_METADATA_KEY)
  } catch {
    return false
  }
}

export interface ClassicalNoiseComponents {
  privateKey: PrivateKey
  peerId: PeerId
  logger: ComponentLogger
  upgrader: Upgrader
  metrics?: Metrics
  peerStore?: PeerStore
}

export interface ClassicalNoiseInit {
  /** refuse peers that the peer store remembers as hybrid-capable (downgrade protection) */
  downgradeProtection?: boolean
}

/**
 * Stock `/noise` (@chainsafe/libp2p-noise) with handshake metrics and,
 * optionally, downgrade protection: a peer that once completed the hybrid
 * handshake fails the `/noise` handshake with a `DowngradeError` before any
 * stream can be opened.
 */
export function classicalNoise (init: ClassicalNoiseInit = {}): (components: ClassicalNoiseComponents) => ConnectionEncrypter {
  const factory = noise()
  return (components) => {
    const inner = factory(components)
    const count = handshakeCounter(components)
    const log = components.logger.forComponent('aistack:handshake')
    const wrap = (secure: (c: MessageStream, o?: SecureConnectionOptions) => Promise<SecuredConnection>, direction: string) =>
      async (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> => {
        let result: SecuredConnection
        try {
          result = await secure(connection, options)
        } catch (err: any) {
          count(ENCRYPTION_NOISE, 'error')
          log.error('%s /noise handshake failed: %s', direction, err?.message ?? err)
          throw err
        }
        if (init.downgradeProtection === true && components.peerStore != null &&
          await hasCompletedPq(components.peerStore, result.remotePeer)) {
          count(ENCRYPTION_NOISE, 'downgrade_refused')
          const err = new DowngradeError(`Peer ${result.remotePeer.toString()} completed the hybrid handshake before; refusing ${direction} /noise`)
          log.error('%s', err.message)
          result.connection.abort(err)
          throw err
        }
        if (result.connection.status !== 'open') {
          // the peer hung up while the peer store was read: a muxer put on this stream would
          // never hear of its close, so the upgrade ends here
          count(ENCRYPTION_NOISE, 'error')
          throw new HandshakeClosedError(`The ${direction} /noise connection closed during the handshake`)
        }
        count(ENCRYPTION_NOISE, 'success')
        return result
      }
    return {
      protocol: inner.protocol,
      secureInbound: wrap(inner.secureInbound.bind(inner), 'inbound'),
      secureOutbound: wrap(inner.secureOutbound.bind(inner), 'outbound'),
      [Symbol.toStringTag]: '@aistack/handshake:noise',
      [serviceCapabilities]: ['@libp2p/connection-encryption']
    } as unknown as ConnectionEncrypter
  }
}

export interface ConnectionEncryptersInit {
  pq?: PqNoiseInit
}

/**
 * The list for libp2p's `connectionEncrypters` in a given mode:
 * `preferred` → [pqNoise(), noise() with downgrade protection],
 * `required` → [pqNoise()], `off` → [noise()].
 */
export function connectionEncrypters (mode: PqMode, init: ConnectionEncryptersInit = {}): Array<(components: any) => ConnectionEncrypter> {
  switch (mode) {
    case 'preferred':
      return [pqNoise(init.pq), classicalNoise({ downgradeProtection: true })]
    case 'required':
      return [pqNoise(init.pq)]
    case 'off':
      return [classicalNoise()]
    default:
      throw new InvalidPqModeError(`Invalid PQ mode "${String(mode)}"`)
  }
}
