import { QOS_CLASSES, StreamResetError } from '@aistack/sembatch'
import type { CapabilityRegistry } from './capabilities/index.js'
import type { SemanticAnycast } from '@aistack/semantic-anycast'
import type { QosClass, SembatchService } from '@aistack/sembatch'
import type { PeerId } from '@libp2p/interface'

/** A capability's context key with this suffix answers in pieces */
export const STREAM_SUFFIX = '#stream'

/** Most requests handed to a batch-aware capability in one call */
export const MAX_HANDLER_BATCH = 256

/** Most inputs in one `POST /v1/ask/batch` */
export const MAX_BATCH_INPUTS = 10_000

const encoder = new TextEncoder()
const decoder = new TextDecoder()

type Entry = NonNullable<Parameters<SembatchService['setResolver']>[0]> extends (key: string) => infer R ? R : never

/**
 * Serves the node's capabilities over sembatch: the context key is the
 * capability name, payloads and answers are JSON. Requests run through the
 * registry (its limits), at most the capability's concurrency at once per
 * stream. Entries are rebuilt when the capabilities change.
 */
export function serveCapabilities (sembatch: SembatchService, capabilities: CapabilityRegistry): void {
  let entries = new Map<string, Entry>()
  const rebuild = (): void => {
    const next = new Map<string, Entry>()
    for (const c of capabilities.entriesList()) {
      const name = c.capability.name
      if (capabilities.takesBatches(name)) {
        // requests that arrive together reach the handler as one call
        next.set(name, {
          batch: true,
          concurrency: c.limits.concurrency,
          maxBatch: MAX_HANDLER_BATCH,
          fn: async (payloads, { signal }) => {
            const inputs: unknown[] = []
            const bad = new Map<number, Error>()
            payloads.forEach((p, i) => {
              try {
                inputs.push(JSON.parse(decoder.decode(p)))
              } catch (err: any) {
                bad.set(i, err)
                inputs.push(null)
              }
            })
            const results = await capabilities.invokeBatch(name, inputs, { signal })
            return results.map((r, i) => bad.get(i) ?? ('error' in r ? r.error : encoder.encode(JSON.stringify(r.output ?? null))))
          }
        })
      } else {
        next.set(name, {
          batch: false,
          concurrency: c.limits.concurrency,
          maxBatch: 1,
          fn: async (payload, { signal }) => {
            const output = await capabilities.invoke(name, JSON.parse(decoder.decode(payload)), { signal, inputBytes: payload.byteLength })
            return encoder.encode(JSON.stringify(output ?? null))
          }
        })
      }
      // the same capability with its output in pieces (one JSON value each)
      next.set(`${name}${STREAM_SUFFIX}`, {
        batch: false,
        concurrency: c.limits.concurrency,
        maxBatch: 1,
        fn: async function * (payload, { signal }) {
          for await (const piece of capabilities.invokeStream(name, JSON.parse(decoder.decode(payload)), { signal, inputBytes: payload.byteLength })) {
            yield encoder.encode(JSON.stringify(piece ?? null))
          }
        }
      })
    }
    entries = next
  }
  rebuild()
  capabilities.onChange(rebuild)
  sembatch.setResolver(key => entries.get(key))
}

/** One output of a batch: the value, or why that input failed */
export type BatchOutput = { output: unknown } | { error: { code: string, message: string } }

export interface AskBatchResult {
  outputs: BatchOutput[]
  peerId: string
  capability: string
  similarity: number
  /** 'sembatch' when the inputs went over one sembatch stream, 'anycast' when each was asked on its own */
  transport: 'sembatch' | 'anycast'
  latencyMs: number
}

export interface AskBatchOptions {
  timeoutMs?: number
  /**
   * Sembatch class of the requests (default `interactive`): `realtime` goes
   * first and is never held back to fill a batch, `bulk` last; `bulk` takes
   * the bulk lane when both nodes have one
   */
  qos?: QosClass
}

/** The `qos` of a batch: one of QOS_CLASSES, `interactive` when absent; TypeError naming `field` otherwise */
export function parseQos (value: unknown, field = 'qos'): QosClass {
  if (value == null) return 'interactive'
  if (typeof value !== 'string' || !(QOS_CLASSES as readonly string[]).includes(value)) throw new TypeError(`${field} must be one of ${QOS_CLASSES.join(', ')}`)
  return value as QosClass
}

/**
 * Sends every input to the capability that best matches `query`: resolved
 * once with anycast's `find`, then all inputs over sembatch to that peer (in
 * batches, in input order, in class `options.qos`). If the peer does not
 * speak sembatch, each input goes through anycast's `ask`. A failed input
 * fails alone.
 *
 * @throws TypeError for a `qos` that is not a sembatch class
 * @throws NoCandidatesError-like errors of `find` when nothing matches
 */
export async function askBatch (anycast: SemanticAnycast, sembatch: SembatchService, query: string, inputs: unknown[], options: AskBatchOptions & { peerIdFromString: (s: string) => PeerId }): Promise<AskBatchResult> {
  const qos = parseQos(options.qos, 'options.qos')
  const started = performance.now()
  const timeoutMs = options.timeoutMs ?? 60_000
  const signal = AbortSignal.timeout(timeoutMs)
  const [best] = await anycast.find(query, { k: 1, signal })
  if (best == null) {
    const err = new Error(`no peer offers a capability matching "${query.slice(0, 80)}"`)
    err.name = 'NoCandidatesError'
    throw err
  }
  const peer = options.peerIdFromString(best.peerId)
  const payloads = inputs.map(i => encoder.encode(JSON.stringify(i ?? null)))
  const failed = (err: any): BatchOutput => ({ error: { code: String(err?.name ?? 'Error'), message: String(err?.message ?? err) } })
  const viaSembatch = await Promise.allSettled(payloads.map(async p => sembatch.send(peer, best.name, p, { qos, timeoutMs, signal })))
  const unsupported = viaSembatch.every(r => r.status === 'rejected' && isUnsupported(r.reason))
  let outputs: BatchOutput[]
  let transport: AskBatchResult['transport'] = 'sembatch'
  if (unsupported && viaSembatch.length > 0) {
    transport = 'anycast'
    const asked = await Promise.allSettled(inputs.map(async input => anycast.ask(query, input, { timeoutMs })))
    outputs = asked.map(r => r.status === 'fulfilled' ? { output: r.value.output } : failed(r.reason))
  } else {
    outputs = viaSembatch.map(r => r.status === 'fulfilled' ? { output: JSON.parse(decoder.decode(r.value)) } : failed(r.reason))
  }
  return { outputs, peerId: best.peerId, capability: best.name, similarity: best.similarity, transport, latencyMs: performance.now() - started }
}

/** The peer could not be asked over sembatch at all (it does not speak it, or the stream could not be opened) */
function isUnsupported (err: any): boolean {
  return err?.name === 'UnsupportedProtocolError' || err?.code === 'ERR_UNSUPPORTED_PROTOCOL' || (err instanceof StreamResetError && /protocol/i.test(err.message))
}

export interface AskStreamResult {
  peerId: string
  capability: string
  similarity: number
  transport: 'local' | 'sembatch' | 'anycast'
  /** the output's pieces; the first has arrived already */
  pieces: AsyncGenerator<unknown>
}

export interface AskStreamNode {
  anycast: SemanticAnycast
  sembatch: SembatchService
  capabilities: CapabilityRegistry
  peerId: PeerId
}

/**
 * Asks the capability that best matches `query` for its output in pieces: a
 * capability of this node runs here, another node's over sembatch (key
 * `<name>#stream`, pieces of the request's class), and a node without
 * sembatch answers whole through anycast (one piece). Resolves once the
 * first piece is there, so failures before it reject this promise.
 */
export async function askStream (node: AskStreamNode, query: string, input: unknown, options: { timeoutMs?: number, peerIdFromString: (s: string) => PeerId }): Promise<AskStreamResult> {
  const timeoutMs = options.timeoutMs ?? 60_000
  const signal = AbortSignal.timeout(timeoutMs)
  const [best] = await node.anycast.find(query, { k: 1, signal })
  if (best == null) {
    const err = new Error(`no peer offers a capability matching "${query.slice(0, 80)}"`)
    err.name = 'NoCandidatesError'
    throw err
  }
  const base = { peerId: best.peerId, capability: best.name, similarity: best.similarity }
  if (best.peerId === node.peerId.toString()) {
    return { ...base, transport: 'local', pieces: await primed(node.capabilities.invokeStream(best.name, input, { signal })) }
  }
  const remote = (async function * () {
    for await (const piece of node.sembatch.stream(options.peerIdFromString(best.peerId), `${best.name}${STREAM_SUFFIX}`, encoder.encode(JSON.stringify(input ?? null)), { timeoutMs, signal })) {
      yield JSON.parse(decoder.decode(piece))
    }
  })()
  try {
    return { ...base, transport: 'sembatch', pieces: await primed(remote) }
  } catch (err) {
    if (!isUnsupported(err)) throw err
  }
  const answer = await node.anycast.ask(query, input, { timeoutMs })
  return { peerId: answer.peerId, capability: answer.capability, similarity: answer.similarity, transport: 'anycast', pieces: (async function * () { yield answer.output })() }
}

/** Waits for the first piece, and gives back a generator that starts with it */
async function primed (pieces: AsyncGenerator<unknown>): Promise<AsyncGenerator<unknown>> {
  const first = await pieces.next()
  return (async function * () {
    if (first.done === true) return
    yield first.value
    yield * pieces
  })()
}
