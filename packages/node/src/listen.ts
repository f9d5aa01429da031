import { multiaddr } from '@multiformats/multiaddr'
import type { PqMode } from '@aistack/handshake'

/** A listen address the node leaves out, and why (for a warning at start and in `/v1/id`). */
export interface DroppedAddress {
  addr: string
  reason: string
}

const IP = new Set(['ip4', 'ip6'])

/** 'tcp' or 'quic' for an address the node's transports can listen on, else undefined. */
function listenTransport (addr: string): 'tcp' | 'quic' | undefined {
  let names: string[]
  try {
    names = multiaddr(addr).getComponents().map(c => c.name)
  } catch {
    return undefined
  }
  if (names.length === 2 && IP.has(names[0]) && names[1] === 'tcp') return 'tcp'
  if (names.length === 3 && IP.has(names[0]) && names[1] === 'udp' && names[2] === 'quic-v1') return 'quic'
  return undefined
}

/**
 * Splits configured listen addresses into those the node listens on and those it leaves out:
 * addresses of transports it does not have (`/ws`, a bare `/udp/N`, a DNS name) and, with
 * `pq: required`, QUIC (its TLS 1.3 handshake is classical).
 */
export function usableListenAddrs (addrs: string[], pq: PqMode): { listen: string[], dropped: DroppedAddress[] } {
  const listen: string[] = []
  const dropped: DroppedAddress[] = []
  for (const addr of addrs) {
    const transport = listenTransport(addr)
    if (transport == null) {
      dropped.push({ addr, reason: 'no transport for it: aistack listens on /ip4|ip6/<ip>/tcp/<port> and /ip4|ip6/<ip>/udp/<port>/quic-v1' })
    } else if (transport === 'quic' && pq === 'required') {
      dropped.push({ addr, reason: 'QUIC is not listened on with --pq required (its TLS 1.3 handshake is classical)' })
    } else {
      listen.push(addr)
    }
  }
  return { listen, dropped }
}
