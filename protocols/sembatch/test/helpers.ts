import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { sembatch } from '../src/index.js'
import type { SembatchInit, SembatchService } from '../src/index.js'
import type { Libp2p } from '@libp2p/interface'

export type Node = Libp2p<{ sembatch: SembatchService }>

export async function createNode (init: SembatchInit = {}): Promise<Node> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      sembatch: sembatch(init)
    }
  }) as unknown as Promise<Node>
}

/** Two started nodes, a connected to b */
export async function pair (initA: SembatchInit = {}, initB: SembatchInit = {}): Promise<[Node, Node]> {
  const a = await createNode(initA)
  const b = await createNode(initB)
  await a.dial(b.getMultiaddrs())
  return [a, b]
}

export async function waitFor (fn: () => boolean, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s)
export const str = (b: Uint8Array): string => new TextDecoder().decode(b)

/** A seeded PRNG (mulberry32) */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
