import assert from 'node:assert/strict'
import { pair, text, str, waitFor } from './helpers.js'
import type { Node } from './helpers.js'

describe('bulk lane', function () {
  this.timeout(120_000)
  let nodes: Node[] = []
  afterEach(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    nodes = []
  })

  it('carries bulk requests on a connection of its own once both ends have a lane', async () => {
    const [a, b] = nodes = await pair({ bulkLane: true }, { bulkLane: true })
    b.services.sembatch.handle('echo', (p) => p)
    // the first bulk request goes on the main stream and starts b's lane; b offers it, a dials it
    assert.equal(str(await a.services.sembatch.send(b.peerId, 'echo', text('first'), { qos: 'bulk' })), 'first')
    await waitFor(() => a.services.sembatch.stats().laneLinks === 1, 60_000, 'a lane link')
    const answers = await Promise.all(Array.from({ length: 200 }, async (_, i) => a.services.sembatch.send(b.peerId, 'echo', text(`bulk ${i}`), { qos: 'bulk' })))
    assert.deepEqual(answers.map(str), Array.from({ length: 200 }, (_, i) => `bulk ${i}`))
    assert.equal(b.services.sembatch.stats().inboundLaneLinks, 1)
    // realtime stays on the main stream
    assert.equal(str(await a.services.sembatch.send(b.peerId, 'echo', text('rt'), { qos: 'realtime' })), 'rt')
  })
})
