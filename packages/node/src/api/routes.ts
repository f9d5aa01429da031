import { didDocument } from '@aistack/handshake'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { HttpError } from './server.js'
import type { ApiServer } from './server.js'
import type { AgentNode } from '../node.js'

export interface CoreRoutesInit {
  node: AgentNode
  /** Called by `POST /v1/stop`, after the response is sent. */
  onStop?: () => void
}

/** The node's own routes: health, identity, status, peers, DHT, metrics and stop. */
export function coreRoutes (api: ApiServer, { node, onStop }: CoreRoutesInit): void {
  api.route('GET', '/healthz', () => ({ body: { ok: true, peerId: node.peerId.toString() } }), { auth: false })

  api.route('GET', '/v1/id', () => ({ body: node.id() }))

  api.route('GET', '/v1/did', () => ({ body: didDocument(node.id().did) }))

  // connections and sembatch counters, with the bulk lane's links
  api.route('GET', '/v1/status', () => ({ body: node.status() }))

  api.route('GET', '/v1/peers', async () => ({ body: { peers: await node.peers() } }))

  // connect to a peer by multiaddr (with /p2p/): `{"multiaddr": "..."}`; 10 s limit
  api.route('POST', '/v1/peers', async ({ json }) => {
    const body = await json() as { multiaddr?: unknown }
    const extra = body != null && typeof body === 'object' ? Object.keys(body).find(k => k !== 'multiaddr') : undefined
    if (typeof body?.multiaddr !== 'string' || extra != null) throw new HttpError(400, 'bad_request', 'body must be {"multiaddr": "/ip4/.../tcp/.../p2p/<peer id>"}')
    let addr
    try {
      addr = multiaddr(body.multiaddr)
    } catch (err: any) {
      throw new HttpError(400, 'bad_request', `"${body.multiaddr}" is not a valid multiaddr (${String(err.message)})`)
    }
    try {
      const connection = await node.libp2p.dial(addr, { signal: AbortSignal.timeout(10_000) })
      return { status: 201, body: { peerId: connection.remotePeer.toString(), multiaddr: connection.remoteAddr.toString() } }
    } catch (err: any) {
      throw new HttpError(502, 'dial_failed', `cannot connect to ${body.multiaddr}: ${String(err.message ?? err).split('\n')[0]}`)
    }
  })

  // close every connection to a peer
  api.route('DELETE', '/v1/peers/:peerId', async ({ params }) => {
    let peer
    try {
      peer = peerIdFromString(params.peerId)
    } catch {
      throw new HttpError(400, 'bad_request', `"${params.peerId}" is not a peer ID`)
    }
    if (node.libp2p.getConnections(peer).length === 0) throw new HttpError(404, 'not_found', `not connected to ${params.peerId}`)
    await node.libp2p.hangUp(peer)
    return { body: { disconnected: params.peerId } }
  })

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
