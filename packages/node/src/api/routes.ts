import { didDocument } from '@aistack/handshake'
import { HttpError } from './server.js'
import type { ApiServer } from './server.js'
import type { AgentNode } from '../node.js'

export interface CoreRoutesInit {
  node: AgentNode
  /** Called by `POST /v1/stop`, after the response is sent. */
  onStop?: () => void
}

/** The node's own routes: health, identity, peers, DHT, metrics and stop. */
export function coreRoutes (api: ApiServer, { node, onStop }: CoreRoutesInit): void {
  api.route('GET', '/healthz', () => ({ body: { ok: true, peerId: node.peerId.toString() } }), { auth: false })

  api.route('GET', '/v1/id', () => ({ body: node.id() }))

  api.route('GET', '/v1/did', () => ({ body: didDocument(node.id().did) }))

  api.route('GET', '/v1/peers', async () => ({ body: { peers: await node.peers() } }))

  api.route('GET', '/v1/dht', () => {
    const peers = node.routingTable()
    return { body: { mode: node.dhtMode(), protocol: `/${node.network.id}/kad/1.0.0`, routingTableSize: peers.length, routingTable: peers } }
  })

  api.route('GET', '/metrics', async () => {
    const registry = node.metricsRegistry
    if (registry == null) throw new HttpError(404, 'not_found', 'metrics are disabled on this node')
    return { text: await registry.metrics(), contentType: registry.contentType }
  })

  api.route('POST', '/v1/stop', ({ res }) => {
    res.once('finish', () => { onStop?.() })
    return { status: 202, body: { stopping: true } }
  })
}
