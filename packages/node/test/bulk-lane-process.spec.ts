import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, removeTempDirs, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'

const QUERY = 'echo this text back'
const inputsOf = (count: number, tag: string): unknown[] => Array.from({ length: count }, (_, i) => ({ n: i, text: `${tag} ${i}` }))

/** B serves an echo capability with `sembatch` as given; A joins through B and sees the capability */
async function startPair (nodes: NodeProcess[], sembatch?: unknown): Promise<{ a: NodeProcess, b: NodeProcess }> {
  const home = await tempDir()
  await writeFile(join(home, 'config.json'), JSON.stringify({
    capabilities: [{
      name: 'lane-echo',
      description: 'Repeat the given text back unchanged, an echo service',
      examples: ['echo this text back', 'repeat what I say'],
      handler: { type: 'builtin', name: 'echo', concurrency: 8 }
    }],
    ...(sembatch != null ? { sembatch } : {})
  }))
  const b = await startNodeProcess(home, [], { timeoutMs: 60_000 })
  nodes.push(b)
  const a = await startNodeProcess(await tempDir(), ['--bootstrap', b.run.multiaddrs[0]], { timeoutMs: 60_000 })
  nodes.push(a)
  await waitFor(async () => {
    const { json } = await api(a.run, 'GET', `/v1/capabilities/search?q=${encodeURIComponent(QUERY)}&k=5`)
    return (json?.results ?? []).some((r: any) => r.name === 'lane-echo')
  }, { timeoutMs: 90_000, intervalMs: 250, what: 'the capability visible to the asker' })
  return { a, b }
}

/** A bulk batch of `count` inputs from `a`: every output from B, in input order */
async function bulkBatch (a: NodeProcess, b: NodeProcess, count: number, tag: string): Promise<void> {
  const inputs = inputsOf(count, tag)
  const { status, json, text } = await api(a.run, 'POST', '/v1/ask/batch', { body: { query: QUERY, inputs, qos: 'bulk', timeoutMs: 120_000 } })
  assert.equal(status, 200, text)
  assert.equal(json.peerId, b.run.peerId)
  assert.equal(json.capability, 'lane-echo')
  assert.equal(json.transport, 'sembatch')
  assert.deepEqual(json.outputs, inputs.map(output => ({ output })))
}

async function laneLinks (node: NodeProcess): Promise<{ laneLinks: number, inboundLaneLinks: number, lanePort?: number, laneError?: string, bulkLane: boolean }> {
  const { status, json, text } = await api(node.run, 'GET', '/v1/status')
  assert.equal(status, 200, text)
  return json.sembatch
}

describe('sembatch bulk lane across node processes', function () {
  this.timeout(300_000)
  const nodes: NodeProcess[] = []
  /** how long the lane took to open after the first bulk batch, when both ends have it */
  let laneOpenedAfterMs: number | undefined

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    await removeTempDirs()
  })

  describe('both nodes with the lane (the default)', () => {
    let a: NodeProcess
    let b: NodeProcess

    before(async () => {
      ({ a, b } = await startPair(nodes))
    })

    it('a bulk batch opens the lane, and a bulk batch with the lane open answers in order', async () => {
      const before = await laneLinks(a)
      assert.equal(before.bulkLane, true)
      assert.equal(before.laneLinks, 0, 'no lane before bulk traffic')
      await bulkBatch(a, b, 200, 'first')
      // the lane starts at B with the first bulk requests; A opens it once B offers its port
      const batchDone = Date.now()
      await waitFor(async () => (await laneLinks(a)).laneLinks === 1, { timeoutMs: 90_000, intervalMs: 200, what: 'a lane link at A' })
      laneOpenedAfterMs = Date.now() - batchDone
      await waitFor(async () => (await laneLinks(b)).inboundLaneLinks === 1, { timeoutMs: 30_000, intervalMs: 200, what: 'an inbound lane link at B' })
      await bulkBatch(a, b, 200, 'second')
      const atA = await laneLinks(a)
      const atB = await laneLinks(b)
      assert.equal(atA.laneLinks, 1, 'one lane link from A, still open')
      assert.equal(atA.inboundLaneLinks, 0)
      assert.equal(atB.laneLinks, 0)
      assert.equal(atB.inboundLaneLinks, 1, 'one lane link into B, still open')
      // both ends' lanes listen (A's worker started to dial B's), and say on which port
      for (const at of [atA, atB]) {
        assert.ok(Number.isInteger(at.lanePort) && (at.lanePort as number) > 0, `lanePort ${String(at.lanePort)}`)
        assert.equal(at.laneError, undefined)
      }
      // and their logs say so, at the default level
      assert.match(b.output(), new RegExp(`info  bulk lane listening on TCP port ${String(atB.lanePort)}`))
      assert.match(a.output(), new RegExp(`info  bulk lane to ${b.run.peerId} open`))
    })

    it('refuses a qos that is not a sembatch class with 400 naming the field, and takes the others', async () => {
      const bad = await api(a.run, 'POST', '/v1/ask/batch', { body: { query: QUERY, inputs: ['x'], qos: 'urgent' } })
      assert.equal(bad.status, 400, bad.text)
      assert.equal(bad.json.error.code, 'bad_request')
      assert.equal(bad.json.error.message, 'qos must be one of realtime, interactive, bulk')
      for (const qos of ['realtime', 'interactive']) {
        const { status, json, text } = await api(a.run, 'POST', '/v1/ask/batch', { body: { query: QUERY, inputs: [qos, 1], qos } })
        assert.equal(status, 200, text)
        assert.deepEqual(json.outputs, [{ output: qos }, { output: 1 }])
      }
    })
  })

  describe('the serving node with "sembatch": {"bulkLane": false}', () => {
    let a: NodeProcess
    let b: NodeProcess

    before(async () => {
      ({ a, b } = await startPair(nodes, { bulkLane: false }))
    })

    it('bulk batches are answered in order on the main connection, and no lane link appears', async () => {
      await bulkBatch(a, b, 200, 'first')
      await bulkBatch(a, b, 200, 'second')
      assert.equal((await laneLinks(b)).bulkLane, false)
      assert.equal((await laneLinks(a)).bulkLane, true)
      // watched for three times as long as the lane took to open between two nodes that have it
      // (above), at least 3 s, so a lane that would open late is seen too
      const watchUntil = Date.now() + Math.min(30_000, Math.max(3_000, 3 * (laneOpenedAfterMs ?? 0)))
      do {
        const atA = await laneLinks(a)
        const atB = await laneLinks(b)
        assert.deepEqual([atA.laneLinks, atA.inboundLaneLinks, atB.laneLinks, atB.inboundLaneLinks], [0, 0, 0, 0])
        await new Promise(resolve => setTimeout(resolve, 200))
      } while (Date.now() < watchUntil)
    })
  })
})
