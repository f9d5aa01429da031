import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { MemoryDatastore } from 'datastore-core'
import { createLibp2p } from 'libp2p'
import { taskQueue } from '../src/index.js'
import type { TaskEvent, TaskExecutor, TaskQueueInit, TaskService, TaskSpec, RunContext } from '../src/index.js'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

export type Node = Libp2p<{ pubsub: GossipSub, tasks: TaskService }>

export interface TestNodeOptions {
  executor?: TaskExecutor
  datastore?: Datastore
  privateKey?: PrivateKey
  init?: Partial<TaskQueueInit>
}

/** Fast timings for tests */
export const FAST: Partial<TaskQueueInit> = {
  sweepIntervalMs: 25,
  backoffMs: 20,
  maxBackoffMs: 200,
  reannounceMs: 300,
  resultRetryMs: 200,
  offerTimeoutMs: 500,
  retryElsewhereMs: 300,
  defaultLeaseMs: 2000
}

export async function createNode (opts: TestNodeOptions = {}): Promise<Node> {
  return createLibp2p({
    privateKey: opts.privateKey ?? await generateKeyPair('Ed25519'),
    datastore: opts.datastore ?? new MemoryDatastore(),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false }),
      tasks: taskQueue({ ...FAST, ...opts.init, executor: opts.executor })
    }
  }) as unknown as Promise<Node>
}

export async function waitFor (fn: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}`)
    }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/** Connect a to b and wait until both see each other on the tasks topic */
export async function connect (a: Node, b: Node): Promise<void> {
  await a.dial(b.getMultiaddrs())
  const topic = a.services.tasks.tasksTopic
  await waitFor(() =>
    a.services.pubsub.getSubscribers(topic).some(p => p.equals(b.peerId)) &&
    b.services.pubsub.getSubscribers(topic).some(p => p.equals(a.peerId)), 10_000, 'topic subscription')
}

export function nextEvent (service: TaskService, pred: (e: TaskEvent) => boolean, timeoutMs = 20_000): Promise<TaskEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      service.removeEventListener('event', listener)
      reject(new Error('timed out waiting for an event'))
    }, timeoutMs)
    const listener = (evt: CustomEvent<TaskEvent>): void => {
      if (pred(evt.detail)) {
        clearTimeout(timer)
        service.removeEventListener('event', listener)
        resolve(evt.detail)
      }
    }
    service.addEventListener('event', listener)
  })
}

export type Handler = (input: any, ctx: RunContext) => Promise<unknown>

/** An executor with a fixed number of slots serving a set of capabilities */
export class TestExecutor implements TaskExecutor {
  readonly capabilities: Set<string>
  slots: number
  busy = 0
  runs = 0
  handler: Handler

  constructor (capabilities: string[], handler: Handler, slots = 4) {
    this.capabilities = new Set(capabilities)
    this.handler = handler
    this.slots = slots
  }

  canRun (spec: TaskSpec): boolean {
    return spec.capability != null && this.capabilities.has(spec.capability)
  }

  capacity (): number {
    return this.slots - this.busy
  }

  async run (_spec: TaskSpec, input: unknown, ctx: RunContext): Promise<unknown> {
    this.busy++
    this.runs++
    try {
      return await this.handler(input, ctx)
    } finally {
      this.busy--
    }
  }
}

export const echo: Handler = async (input) => input

/** Resolves when the signal aborts (a handler that never finishes on its own) */
export const hang: Handler = async (_input, ctx) => new Promise((_resolve, reject) => {
  ctx.signal.addEventListener('abort', () => { reject(new Error('aborted')) })
})

/** Deterministic PRNG (mulberry32) */
export function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
