import assert from 'node:assert/strict'
import { sealRecord } from '@aistack/handshake'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { encodeRecord, fullRecord, telemetry } from '../src/index.js'
import type { TelemetryAlertEvent, TelemetryService } from '../src/index.js'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p } from '@libp2p/interface'

type Node = Libp2p<{ pubsub: GossipSub, telemetry: TelemetryService }>

async function waitFor (fn: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

describe('telemetry between nodes', function () {
  this.timeout(120_000)
  const nodes: Node[] = []

  async function node (init: Parameters<typeof telemetry>[0] = {}): Promise<Node> {
    const n = await createLibp2p({
      privateKey: await generateKeyPair('Ed25519'),
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: {
        identify: identify(),
        pubsub: gossipsub({ allowPublishToZeroTopicPeers: true }),
        telemetry: telemetry({ intervalMs: 300, fullEvery: 4, nvidiaSmi: false, ...init })
      }
    }) as unknown as Node
    nodes.push(n)
    return n
  }

  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async n => { await Promise.resolve(n.stop()).catch(() => {}) }))
  })

  it('every node holds every other in its table; a stopped node turns down', async () => {
    let inFlight = 0
    const a = await node({ capabilities: () => [{ name: 'echo', inFlight, capacity: 4 }] })
    const b = await node()
    const c = await node()
    await b.dial(a.getMultiaddrs()[0])
    await c.dial(a.getMultiaddrs()[0])
    const ids = [a, b, c].map(n => n.peerId.toString())
    const sees = (n: Node, peer: string, status = 'up'): boolean => n.services.telemetry.node(peer)?.status === status
    await waitFor(() => [a, b, c].every(n => ids.every(id => sees(n, id))), 'full tables')
    assert.deepEqual(b.services.telemetry.nodes().map(e => e.peerId).sort(), [...ids].sort())
    assert.equal(b.services.telemetry.nodes()[0].self, true)
    // a's full records name its neighbours: b sees the link between a and c
    await waitFor(() => [...b.services.telemetry.node(ids[0])?.telemetry.links ?? []].sort().join() === [ids[1], ids[2]].sort().join(), 'a\'s links in b\'s table')
    assert.deepEqual(b.services.telemetry.node(ids[2])?.telemetry.links, [ids[0]])

    a.services.telemetry.recordRequest('echo', 12, true)
    inFlight = 3
    await waitFor(() => b.services.telemetry.loadOf(a.peerId)?.load === 0.75, 'a change of load to reach b')
    const seen = b.services.telemetry.node(ids[0])
    assert.equal(seen?.telemetry.capabilities[0].requests, 1)
    assert.ok((seen?.telemetry.rssBytes ?? 0) > 0)
    assert.equal(seen?.telemetry.gpus, undefined)
    // deltas made up most of the traffic and every record was accepted
    assert.equal(b.services.telemetry.traffic.rejected, 0)

    await c.stop()
    await waitFor(() => sees(a, ids[2], 'down') && sees(b, ids[2], 'down'), 'c to be down')
    assert.equal(a.services.telemetry.node(ids[1])?.status, 'up')
  })

  it('a quiet node sends less than a record per interval and stays up between heartbeats', async () => {
    const a = await node({ fullEvery: 8 })
    const b = await node()
    await b.dial(a.getMultiaddrs()[0])
    const id = a.peerId.toString()
    await waitFor(() => b.services.telemetry.node(id)?.status === 'up', 'a in b\'s table')
    const published = a.services.telemetry.traffic.published
    let samples = 0
    let downSeen = 0
    const onSample = (): void => {
      samples++
      if (b.services.telemetry.node(id)?.status !== 'up') downSeen++
    }
    a.services.telemetry.addEventListener('sample', onSample)
    try {
      await waitFor(() => samples >= 16, '16 samples of a')
    } finally {
      a.services.telemetry.removeEventListener('sample', onSample)
    }
    assert.equal(downSeen, 0)
    assert.ok(a.services.telemetry.traffic.published - published < samples, `${a.services.telemetry.traffic.published - published} records in ${samples} intervals`)
    assert.equal(b.services.telemetry.node(id)?.telemetry.heartbeatMs, 2400)
  })

  it('rejects what is not a bare record of format 2: a format-1 envelope, another format', async () => {
    const a = await node()
    const b = await node({ publish: false })
    await b.dial(a.getMultiaddrs()[0])
    await waitFor(() => b.services.pubsub.getSubscribers('aistack/2/telemetry').length === 1, 'a subscribed, seen by b')
    const record = fullRecord({ timeMs: 1, intervalMs: 1000, capabilities: [], alerts: [] }, 99n)
    const envelope = await sealRecord(await generateKeyPair('Ed25519'), 'aistack/1/telemetry-record', encodeRecord(record))
    const before = a.services.telemetry.traffic.rejected
    await b.services.pubsub.publish('aistack/2/telemetry', envelope)
    await b.services.pubsub.publish('aistack/2/telemetry', encodeRecord({ ...record, format: 1 }))
    await waitFor(() => a.services.telemetry.traffic.rejected >= before + 2, 'two rejections')
    assert.equal(a.services.telemetry.node(b.peerId.toString()), undefined)
  })

  it('takes at most two records per declared interval from one author', async () => {
    const a = await node()
    const b = await node({ publish: false })
    await b.dial(a.getMultiaddrs()[0])
    await waitFor(() => b.services.pubsub.getSubscribers('aistack/2/telemetry').length === 1, 'a subscribed, seen by b')
    const before = { ...a.services.telemetry.traffic }
    for (let seq = 1n; seq <= 8n; seq++) {
      const record = encodeRecord(fullRecord({ timeMs: Date.now(), intervalMs: 60_000, capabilities: [], alerts: [] }, seq))
      await b.services.pubsub.publish('aistack/2/telemetry', record)
    }
    await waitFor(() => a.services.telemetry.traffic.ignored + a.services.telemetry.traffic.received - before.ignored - before.received >= 8, 'a to judge all eight')
    const accepted = a.services.telemetry.traffic.received - before.received
    assert.ok(accepted >= 1 && accepted <= 3, `accepted ${accepted} of 8`)
    assert.equal(a.services.telemetry.traffic.ignored - before.ignored, 8 - accepted)
  })

  it('raises and clears a latency alert as an event', async () => {
    const a = await node({ capabilities: () => [{ name: 'slow', inFlight: 0, capacity: 1 }], windowIntervals: 1, alerts: { p95Ms: 100 } })
    const events: TelemetryAlertEvent[] = []
    a.services.telemetry.addEventListener('alert', evt => { events.push(evt.detail) })
    a.services.telemetry.recordRequest('slow', 500, true)
    await waitFor(() => events.length >= 1, 'the alert')
    assert.equal(events[0].type, 'telemetry.alert')
    assert.equal(events[0].alert.name, 'latency-p95:slow')
    assert.equal(events[0].alert.active, true)
    assert.deepEqual(a.services.telemetry.self().telemetry.alerts, ['latency-p95:slow'])
    await waitFor(() => events.length >= 2, 'the alert to clear')
    assert.equal(events[1].alert.active, false)
  })
})
