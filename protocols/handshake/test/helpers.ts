import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { format } from 'node:util'
import type { ComponentLogger, ConnectionEncrypter, Libp2p, Logger, PrivateKey, Stream } from '@libp2p/interface'

export const ECHO = '/aistack-test/echo/1.0.0'

export interface NodeOptions {
  encrypters: Array<(components: any) => ConnectionEncrypter>
  services?: Record<string, (components: any) => unknown>
  privateKey?: PrivateKey
  metrics?: (components: any) => any
  logger?: ComponentLogger
  inboundUpgradeTimeout?: number
}

export async function createNode (opts: NodeOptions): Promise<Libp2p<any>> {
  const node = await createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    streamMuxers: [yamux()],
    connectionEncrypters: opts.encrypters,
    services: opts.services ?? {},
    metrics: opts.metrics,
    logger: opts.logger,
    connectionManager: opts.inboundUpgradeTimeout != null ? { inboundUpgradeTimeout: opts.inboundUpgradeTimeout } : undefined
  })
  await node.handle(ECHO, async (stream: Stream) => {
    for await (const buf of stream) {
      if (!stream.send(buf)) await stream.onDrain()
    }
    await stream.close()
  })
  return node
}

/** sends `data` over an echo stream and returns what came back */
export async function echo (stream: Stream, data: Uint8Array): Promise<Uint8Array> {
  const received: Uint8Array[] = []
  const reading = (async () => {
    for await (const buf of stream) received.push(buf.subarray())
  })()
  const chunk = 64 * 1024
  for (let i = 0; i < data.byteLength; i += chunk) {
    if (!stream.send(data.subarray(i, i + chunk))) await stream.onDrain()
  }
  await stream.close()
  await reading
  return Buffer.concat(received)
}

/** polls `fn` until it returns true or the deadline passes */
export async function waitFor (fn: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      if (await fn()) return
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  throw new Error(`Timed out waiting for ${what}`)
}

/** a component logger that keeps error lines in `lines` */
export function captureLogger (lines: string[]): ComponentLogger {
  const make = (name: string): Logger => {
    const log: any = () => {}
    log.error = (fmt: string, ...args: unknown[]) => { lines.push(`${name} ${format(fmt, ...args)}`) }
    log.trace = () => {}
    log.enabled = false
    log.newScope = (scope: string) => make(`${name}:${scope}`)
    return log
  }
  return { forComponent: make }
}
