import { askResponse, capabilitiesResponse, errorStatus, parseAskBody, parseSearchParams, searchResponse } from '../capabilities/index.js'
import { HttpError, withErrorStatus } from './server.js'
import type { RouteHandler, ApiServer } from './server.js'
import type { AgentNode } from '../node.js'

// capability, handler and anycast errors answer with their own status
const mapped = (handler: RouteHandler): RouteHandler => withErrorStatus(handler, errorStatus)

// a full lookup queue answers 503 with Retry-After (the error maps to the status)
const retryLater = (handler: RouteHandler): RouteHandler => async (ctx) => {
  try {
    return await handler(ctx)
  } catch (err: any) {
    if (err?.name === 'LookupQueueFullError') ctx.res.setHeader('Retry-After', String(err.retryAfterSeconds ?? 1))
    throw err
  }
}

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

  api.route('GET', '/v1/capabilities/search', mapped(retryLater(async ({ query }) => {
    const { q, k, explain } = parseSearchParams(query)
    const { candidates, stats } = await node.libp2p.services.anycast.findWithStats(q, { k })
    return { body: searchResponse(candidates, explain ? { ...stats.explain, ms: Math.round(stats.ms) } : undefined) }
  })))

  api.route('POST', '/v1/ask', mapped(retryLater(async ({ json }) => {
    const { query, input, timeoutMs } = parseAskBody(await json())
    return { body: askResponse(await node.libp2p.services.anycast.ask(query, input, { timeoutMs })) }
  })))
}
