import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { Control } from '../src/pb/task.js'
import { waitFor } from './helpers.js'
import type { ChildProcess } from 'node:child_process'
import type { Libp2p, Stream } from '@libp2p/interface'

/**
 * Limits the ASSIGN flood is held to (docs/security.md, "Task protocol"):
 * what the target's resident memory may grow by while 4,000 frames
 * (about 120 MB of them) arrive, which is mostly the allocator's high-water
 * mark of that traffic; what it may keep once the flood is over (V8 heap and
 * external memory after a garbage collection: what the node still holds);
 * and the CPU it may use once the hostile peer has gone.
 */
const MAX_RSS_GROWTH_DURING = 512 * 1024 * 1024
const MAX_RETAINED_GROWTH_AFTER = 48 * 1024 * 1024
const MAX_CPU_SHARE_AFTER = 0.1
const HELD_CAP = 256

interface Stats {
  rss: number
  heapUsed: number
  external: number
  arrayBuffers: number
  cpuMs: number
  held: number
  running: number
  executed: number
  dropped: Record<string, number>
}

function varint (n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Uint8Array.from(out)
}

/** Writes frames on a stream, waiting for it to drain when its buffer is full */
async function writeFrames (stream: Stream, frames: Iterable<Control>): Promise<void> {
  for (const msg of frames) {
    const frame = Control.encode(msg)
    const prefix = varint(frame.byteLength)
    const out = new Uint8Array(prefix.byteLength + frame.byteLength)
    out.set(prefix, 0)
    out.set(frame, prefix.byteLength)
    if (!stream.send(out)) {
      await stream.onDrain()
    }
  }
}

function * assigns (count: number, idOf: (i: number) => string, capability: string): Generator<Control> {
  for (let i = 0; i < count; i++) {
    const id = idOf(i)
    yield {
      type: Control.Type.ASSIGN,
      taskId: id,
      attempt: 1,
      leaseMs: 0,
      free: 0,
      task: { id, capability, requirements: new Map(), deadline: 0n, timeoutMs: 0, payloadSize: 2, payload: Uint8Array.from([0x22, 0x22]), index: 0 }
    }
  }
}

describe('an ASSIGN flood from a hostile peer', function () {
  this.timeout(180_000)
  let target: ChildProcess | undefined
  let attacker: Libp2p | undefined

  after(async () => {
    await attacker?.stop()
    if (target?.pid != null && target.exitCode == null) {
      target.kill('SIGKILL')
    }
  })

  it('keeps results only for accepted assignments, bounded per submitter, at a bounded cost in memory and CPU', async () => {
    const here = dirname(fileURLToPath(import.meta.url))
    target = fork(join(here, 'fixtures', 'flood-target.js'), [String(HELD_CAP)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    const child = target
    const ready = await new Promise<{ addr: string, protocol: string }>((resolve, reject) => {
      child.once('message', (m: any) => { resolve(m) })
      child.once('exit', code => { reject(new Error(`the target exited with ${code}`)) })
    })
    const stats = async (gc = false): Promise<Stats> => new Promise(resolve => {
      const onMessage = (m: any): void => {
        if (m?.type === 'stats') {
          child.off('message', onMessage)
          resolve(m)
        }
      }
      child.on('message', onMessage)
      child.send({ type: 'stats', gc })
    })
    // a stock libp2p node: no task service, it only speaks the protocol's frames
    attacker = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify() }
    })
    const before = await stats(true)
    let peakRss = before.rss
    const sampling = { on: true }
    const sampler = (async () => {
      while (sampling.on) {
        peakRss = Math.max(peakRss, (await stats()).rss)
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    })()
    const stream = await attacker.dialProtocol(multiaddr(ready.addr), ready.protocol)
    const started = Date.now()
    // 1. 2,000 assignments with 60 KB task ids: dropped on arrival
    await writeFrames(stream, assigns(2000, i => `${i}-${'x'.repeat(60_000)}`, 'echo'))
    await waitFor(async () => (await stats()).dropped.oversize >= 2000, 60_000, 'the long ids dropped')
    // 2. 2,000 assignments of work the target cannot do: refused once, nothing held
    await writeFrames(stream, assigns(2000, i => `cannot-${i}`, 'no-such-capability'))
    // 3. assignments nobody offered for, of work it can do, never acknowledged: four at a time (its free slots),
    // more than it may hold
    // (frames on a stream are handled in order: once the offer for an unknown task that follows them is counted, they have been)
    for (let g = 0; g <= (HELD_CAP + 64) / 4; g++) {
      await writeFrames(stream, [...assigns(4, i => `echo-${g}-${i}`, 'echo'), { type: Control.Type.OFFER, taskId: 'marker', attempt: 0, leaseMs: 0, free: 1 }])
      await waitFor(async () => { const s = await stats(); return s.dropped.unknownTask > g && s.running === 0 }, 60_000, 'the assignments handled')
    }
    const during = await stats()
    const floodMs = Date.now() - started
    sampling.on = false
    await sampler
    assert.equal(during.dropped.oversize, 2000)
    assert.ok(during.held >= HELD_CAP - 4, `${during.held} results held, ${during.executed} run: the unsolicited assignments of work it can do were run`)
    assert.ok(during.held <= HELD_CAP, `${during.held} results held, the cap is ${HELD_CAP}`)
    assert.ok(during.executed <= HELD_CAP + 4, `${during.executed} tasks run for a submitter that acknowledges nothing`)

    // the hostile peer leaves: the node spends (nearly) nothing on it any more
    await attacker.stop()
    attacker = undefined
    await new Promise(resolve => setTimeout(resolve, 500))
    const idleFrom = await stats(true)
    const idleStart = Date.now()
    // a few result retry periods (2 s each)
    await new Promise(resolve => setTimeout(resolve, 6000))
    const idleTo = await stats(true)
    const cpuShare = (idleTo.cpuMs - idleFrom.cpuMs) / (Date.now() - idleStart)
    const mib = (n: number): string => (n / 1024 / 1024).toFixed(1)
    console.log(`      heap ${mib(before.heapUsed)} -> ${mib(idleTo.heapUsed)} MiB, external ${mib(before.external)} -> ${mib(idleTo.external)} MiB, array buffers ${mib(before.arrayBuffers)} -> ${mib(idleTo.arrayBuffers)} MiB`)
    console.log(`      ASSIGN flood (4,000 frames, then ${HELD_CAP + 68} assignments of work it can do; ${floodMs} ms): RSS ${mib(before.rss)} MiB before, ${mib(peakRss)} MiB at the peak, ` +
      `${mib(idleTo.rss)} MiB after; results held ${during.held} (cap ${HELD_CAP}); CPU after the peer left ${(cpuShare * 100).toFixed(1)} % of a core`)
    assert.ok(peakRss - before.rss < MAX_RSS_GROWTH_DURING, `RSS grew by ${mib(peakRss - before.rss)} MiB during the flood`)
    const retained = (x: Stats): number => x.heapUsed + x.external
    assert.ok(retained(idleTo) - retained(before) < MAX_RETAINED_GROWTH_AFTER, `the heap and external memory grew by ${mib(retained(idleTo) - retained(before))} MiB`)
    assert.ok(cpuShare < MAX_CPU_SHARE_AFTER, `${(cpuShare * 100).toFixed(1)} % of a core after the peer left`)
    assert.equal(idleTo.held, during.held, 'held results are not re-sent to a submitter that is gone; they expire')
    child.send({ type: 'stop' })
  })
})
