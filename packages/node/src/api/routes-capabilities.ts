import { askResponse, capabilitiesResponse, errorStatus, networkCapabilitiesResponse, parseAskBody, parseSearchParams, searchResponse } from '../capabilities/index.js'
import { HttpError, withErrorStatus } from './server.js'
import type { RouteHandler, ApiServer } from './server.js'
import type { AgentNode } from '../node.js'

/** Whether every candidate of a failed ask timed out (its handler, or the asker's wait) */
function allTimedOut (err: unknown): boolean {
  const failures = (err as { failures?: Array<{ error: string }> })?.failures
  return Array.isArray(failures) && failures.length > 0 && failures.every(f => /^(RemoteError: handler timed out|TimeoutError)/.test(f.error))
}

// capability, handler and anycast errors answer with their own status; an ask whose every
// candidate timed out is a timeout (504), not an upstream failure
const mapped = (handler: RouteHandler): RouteHandler => withErrorStatus(handler, err => {
  if ((err as Error)?.name === 'AllCandidatesFailedError' && allTimedOut(err)) return { status: 504, code: 'timeout' }
  return errorStatus(err)
})

/** Capability and anycast routes: /v1/capabilities, /v1/capabilities/search, /v1/ask. */
export function capabilityRoutes (api: ApiServer, { node }: { node: AgentNode }): void {
  api.route('GET', '/v1/capabilities', () => ({ body: capabilitiesResponse(node.capabilities.entriesList()) }))

  // only handlers that run outside this process may be added at run time
  api.route('POST', '/v1/capabilities', mapped(async ({ json }) => {
    const name = node.capabilities.add(await json(), 'body', { allowedTypes: ['http', 'exec'] })
    const added = node.capabilities.entriesList().find(c => c.capability.name === name)
    return { status: 201, body: capabilitiesResponse(added != null ? [added] : []).capabilities[0] }
  }))

  api.route('DELETE', '/v1/capabilities/:name', mapped(({ params }) => {
    if (!node.capabilities.remove(params.name)) throw new HttpError(404, 'not_found', `no capability named "${params.name}"`)
    return { body: { removed: params.name } }
  }))

  // what this node knows of the network: its own records and those it has cached
  api.route('GET', '/v1/capabilities/network', mapped(({ query }) => {
    const raw = query.get('limit')
    const limit = raw == null ? 1000 : Number(raw)
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new HttpError(400, 'bad_request', 'limit must be an integer in 1..10000')
    return { body: networkCapabilitiesResponse(node.libp2p.services.anycast.knownRecords(limit)) }
  }))

  api.route('GET', '/v1/capabilities/search', mapped(async ({ query }) => {
    const { q, k } = parseSearchParams(query)
    return { body: searchResponse(await node.libp2p.services.anycast.find(q, { k })) }
  }))

  api.route('POST', '/v1/ask', mapped(async ({ json }) => {
    const { query, input, timeoutMs } = parseAskBody(await json())
    return { body: askResponse(await node.libp2p.services.anycast.ask(query, input, { timeoutMs })) }
  }))
}
