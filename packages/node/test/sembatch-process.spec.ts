import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, removeTempDirs, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'

describe('POST /v1/ask/batch across node processes (sembatch)', function () {
  this.timeout(180_000)
  const nodes: NodeProcess[] = []
  let asker: NodeProcess
  let server: NodeProcess

  before(async () => {
    const home = await tempDir()
    await writeFile(join(home, 'config.json'), JSON.stringify({
      capabilities: [{
        name: 'shout-echo',
        description: 'Repeat the given text back unchanged, an echo service',
        examples: ['echo this text back', 'repeat what I say'],
        handler: { type: 'builtin', name: 'echo', maxInputBytes: 200, concurrency: 8 }
      }]
    }))
    server = await startNodeProcess(home)
    nodes.push(server)
    asker = await startNodeProcess(await tempDir(), ['--bootstrap', server.run.multiaddrs[0]])
    nodes.push(asker)
    await waitFor(async () => {
      const { json } = await api(asker.run, 'GET', '/v1/capabilities/search?q=echo%20this%20text%20back&k=5')
      return (json?.results ?? []).some((r: any) => r.name === 'shout-echo')
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'the capability visible to the asker' })
  })

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    await removeTempDirs()
  })

  it('answers 500 inputs in input order, with a failure for the one input over the limit', async () => {
    const inputs: unknown[] = Array.from({ length: 500 }, (_, i) => ({ n: i, text: `item ${i}` }))
    inputs[123] = 'x'.repeat(500)
    const { status, json, text } = await api(asker.run, 'POST', '/v1/ask/batch', { body: { query: 'echo this text back', inputs } })
    assert.equal(status, 200, text)
    assert.equal(json.peerId, server.run.peerId)
    assert.equal(json.capability, 'shout-echo')
    assert.equal(json.transport, 'sembatch')
    assert.equal(json.outputs.length, 500)
    json.outputs.forEach((o: any, i: number) => {
      if (i === 123) {
        assert.equal(o.error?.code, 'RemoteError')
        assert.match(o.error.message, /InputTooLargeError/)
      } else {
        assert.deepEqual(o, { output: { n: i, text: `item ${i}` } })
      }
    })
  })

  it('refuses a body without inputs with 400', async () => {
    const { status, json } = await api(asker.run, 'POST', '/v1/ask/batch', { body: { query: 'echo', inputs: [] } })
    assert.equal(status, 400)
    assert.equal(json.error.code, 'bad_request')
  })
})
