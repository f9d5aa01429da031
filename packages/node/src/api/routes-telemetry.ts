import { isTraceId } from '@aistack/telemetry'
import { HttpError } from './server.js'
import type { ApiServer } from './server.js'
import type { AgentNode } from '../node.js'
import type { NodeEntry } from '@aistack/telemetry'

/** A row of `GET /v1/network`: the node's telemetry fields beside its liveness */
export function networkRow (e: NodeEntry): Record<string, unknown> {
  return { peerId: e.peerId, status: e.status, lastSeenMs: e.lastSeenMs, self: e.self, complete: e.complete, ...e.telemetry }
}

/** Telemetry routes: /v1/network (the table of the network) and /v1/traces/:traceId */
export function telemetryRoutes (api: ApiServer, { node }: { node: AgentNode }): void {
  const service = (): AgentNode['libp2p']['services']['telemetry'] => node.libp2p.services.telemetry

  api.route('GET', '/v1/network', () => {
    const nodes = service().nodes()
    return {
      body: {
        network: node.network.id,
        self: node.peerId.toString(),
        intervalMs: service().intervalMs,
        up: nodes.filter(n => n.status === 'up').length,
        nodes: nodes.map(networkRow)
      }
    }
  })

  api.route('GET', '/v1/traces/:traceId', ({ params }) => {
    const id = params.traceId.toLowerCase()
    if (!isTraceId(id)) throw new HttpError(400, 'bad_request', 'a trace id is 32 hex digits (W3C trace context)')
    const trace = service().trace(id)
    if (trace == null) throw new HttpError(404, 'not_found', `this node holds no spans of trace ${id} (traces are kept 15 minutes)`)
    return { body: trace }
  })
}
