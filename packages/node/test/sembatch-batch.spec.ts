import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createAgentNode } from '../src/index.js'
import type { AgentNode } from '../src/index.js'

const loopback = { listen: ['/ip4/127.0.0.1/tcp/0'], logLevel: 'warn' as const }
const json = (x: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(x))
const parse = (b: Uint8Array): any => JSON.parse(new TextDecoder().decode(b))

describe('batch-aware capabilities over sembatch (in process)', function () {
  this.timeout(120_000)
  let a: AgentNode
  let b: AgentNode
  let dir: string

  // one JSON line per input in; each output says how many inputs its run had
  const batchScript = 'let s=\'\';process.stdin.on(\'data\',d=>s+=d).on(\'end\',()=>{const ls=s.split(\'\\n\').filter(Boolean);for(const l of ls){const v=JSON.parse(l);process.stdout.write(JSON.stringify(typeof v===\'number\'?{n:v*2,batch:ls.length}:{error:\'not a number\'})+\'\\n\')}})'
  // writes "first", then waits for a file the test creates, then "second"
  const streamScript = (flag: string): string => `process.stdout.write('first ');const fs=require('fs');const t=setInterval(()=>{if(fs.existsSync(${JSON.stringify(flag)})){clearInterval(t);process.stdout.write('second')}},10)`

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aistack-sembatch-'))
    a = await createAgentNode({ config: loopback, metricsRegistry: false })
    b = await createAgentNode({
      config: {
        ...loopback,
        capabilities: [
          { name: 'embed-text', description: 'Embed texts into vectors', handler: { type: 'builtin', name: 'embed', concurrency: 2 } },
          { name: 'double-lines', description: 'Double numbers, a batch at a time', handler: { type: 'exec', command: [process.execPath, '-e', batchScript], batch: true, concurrency: 2 } },
          { name: 'slow-writer', description: 'Writes in two steps', handler: { type: 'exec', command: [process.execPath, '-e', streamScript(join(dir, 'go'))], timeoutMs: 60_000 } }
        ]
      },
      metricsRegistry: false
    })
    await a.start()
    await b.start()
    await a.dial(b.libp2p.getMultiaddrs()[0].toString())
  })

  after(async () => {
    await a?.stop()
    await b?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('node.serve(name, fn, {batch: true}) gets requests that arrive together as one call, answers in order, fails per input', async () => {
    const calls: number[] = []
    b.serve('double', { description: 'Double numbers', batch: true, concurrency: 2 }, async (inputs: unknown[]) => {
      calls.push(inputs.length)
      return inputs.map(n => typeof n === 'number' ? n * 2 : new Error('not a number'))
    })
    const inputs: unknown[] = Array.from({ length: 300 }, (_, i) => i)
    inputs[5] = 'five'
    const results = await Promise.allSettled(inputs.map(async i => parse(await a.sembatch.send(b.peerId, 'double', json(i)))))
    results.forEach((r, i) => {
      if (i === 5) assert.equal(r.status, 'rejected')
      else assert.deepEqual(r, { status: 'fulfilled', value: i * 2 })
    })
    assert.ok(Math.max(...calls) > 1, `batch sizes ${calls.join(',')}`)
    assert.equal(calls.reduce((s, n) => s + n, 0), 300)
    // called directly, one input is a batch of one
    assert.equal(await b.capabilities.invoke('double', 21), 42)
  })

  it('the builtin embed answers a batch with one embedder call, as it answers each text alone', async () => {
    assert.equal(b.capabilities.takesBatches('embed-text'), true)
    const texts = Array.from({ length: 100 }, (_, i) => `text number ${i}`)
    const batched = await Promise.all(texts.map(async t => parse(await a.sembatch.send(b.peerId, 'embed-text', json(t)))))
    const alone = await b.capabilities.invoke('embed-text', texts[17]) as any
    assert.deepEqual(batched[17], alone)
    assert.equal(batched.length, 100)
    assert.equal(batched[0].vectors[0].length, b.embedder.dim)
  })

  it('an exec handler with batch: true runs once per batch, JSON lines in and out, a failed line failing its input', async () => {
    const inputs: unknown[] = Array.from({ length: 120 }, (_, i) => i)
    inputs[3] = 'three'
    const results = await Promise.allSettled(inputs.map(async i => parse(await a.sembatch.send(b.peerId, 'double-lines', json(i)))))
    let largest = 0
    results.forEach((r, i) => {
      if (i === 3) {
        assert.equal(r.status, 'rejected')
        assert.match(String((r as PromiseRejectedResult).reason.message), /not a number/)
        return
      }
      assert.equal(r.status, 'fulfilled')
      const v = (r as PromiseFulfilledResult<any>).value
      assert.equal(v.n, i * 2)
      largest = Math.max(largest, v.batch)
    })
    assert.ok(largest > 1, `largest batch ${largest}`)
  })

  it('an exec handler streams its stdout: the first chunk arrives before the command writes the rest', async () => {
    const pieces: string[] = []
    for await (const piece of a.sembatch.stream(b.peerId, 'slow-writer#stream', json('go'))) {
      pieces.push(parse(piece))
      if (pieces.length === 1) {
        assert.equal(existsSync(join(dir, 'go')), false)
        await writeFile(join(dir, 'go'), '')
      }
    }
    assert.equal(pieces[0], 'first ')
    assert.equal(pieces.join(''), 'first second')
  })
})
