import { askResponse, capabilitiesResponse, errorStatus, forgetCapability, networkCapabilitiesResponse, parseAskBody, parseSearchParams, persistCapability, searchResponse } from '../capabilities/index.js'
import { MAX_BATCH_INPUTS, parseQos } from '../sembatch.js'
import { SseStream } from './routes-tasks.js'
import { tracedAsk } from '../telemetry.js'
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

// a full lookup queue answers 503 with Retry-After (the error maps to the status)
const retryLater = (handler: RouteHandler): RouteHandler => async (ctx) => {
  try {
    return await handler(ctx)
  } catch (err: any) {
    if (err?.name === 'LookupQueueFullError') ctx.res.setHeader('Retry-After', String(err.retryAfterSeconds ?? 1))
    throw err
  }
}

/** Capability and anycast routes: /v1/capabilities, /v1/capabilities/search, /v1/ask, /v1/ask/batch. */
export function capabilityRoutes (api: ApiServer, { node }: { node: AgentNode }): void {
  api.route('GET', '/v1/capabilities', () => ({ body: capabilitiesResponse(node.capabilities.entriesList()) }))

  // only handlers that run outside this process may be added at run time
  api.route('POST', '/v1/capabilities', mapped(async ({ json }) => {
    const name = node.capabilities.add(await json(), 'body', { allowedTypes: ['http', 'exec'] })
    const added = node.capabilities.entriesList().find(c => c.capability.name === name)
    // kept in the datastore: served again after a restart, until DELETE
    if (added?.spec != null) await persistCapability(node.datastore, added.spec)
    return { status: 201, body: capabilitiesResponse(added != null ? [added] : []).capabilities[0] }
  }))

  api.route('DELETE', '/v1/capabilities/:name', mapped(async ({ params }) => {
    if (!node.capabilities.remove(params.name)) throw new HttpError(404, 'not_found', `no capability named "${params.name}"`)
    await forgetCapability(node.datastore, params.name)
    return { body: { removed: params.name } }
  }))

  // what this node knows of the network: its own records and those it has cached
  api.route('GET', '/v1/capabilities/network', mapped(({ query }) => {
    const raw = query.get('limit')
    const limit = raw == null ? 1000 : Number(raw)
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new HttpError(400, 'bad_request', 'limit must be an integer in 1..10000')
    return { body: networkCapabilitiesResponse(node.libp2p.services.anycast.knownRecords(limit)) }
  }))

  api.route('GET', '/v1/capabilities/search', mapped(retryLater(async ({ query }) => {
    const { q, k, explain } = parseSearchParams(query)
    const { candidates, stats } = await node.libp2p.services.anycast.findWithStats(q, { k })
    return { body: searchResponse(candidates, explain ? { ...stats.explain, ms: Math.round(stats.ms) } : undefined) }
  })))

  api.route('POST', '/v1/ask', mapped(retryLater(async (ctx) => {
    const body = await ctx.json()
    const { query, input, timeoutMs, minSimilarity } = parseAskBody(body)
    const stream = (body as Record<string, unknown>).stream
    if (stream != null && typeof stream !== 'boolean') throw new HttpError(400, 'bad_request', 'stream must be true or false')
    if (stream === true) {
      // server-sent events: `piece` {piece} as the output arrives, then `done` or `error`
      const started = performance.now()
      const answer = await node.askStream(query, input, { timeoutMs })
      const sse = new SseStream(ctx)
      ;(async () => {
        for await (const piece of answer.pieces) {
          if (sse.aborted) break
          sse.send('piece', { piece })
        }
        sse.send('done', { peerId: answer.peerId, capability: answer.capability, similarity: Math.round(answer.similarity * 10_000) / 10_000, transport: answer.transport, latencyMs: Math.round((performance.now() - started) * 100) / 100 })
      })().catch((err: any) => {
        sse.send('error', { code: errorStatus(err).code, message: String(err?.message ?? err) })
      }).finally(() => { sse.end() })
      return undefined
    }
    const { ask } = node.config
    const { traceId, ...result } = await tracedAsk(node.libp2p.services.anycast, node.libp2p.services.telemetry.tracing, query, input, { timeoutMs, minSimilarity: minSimilarity ?? ask.minSimilarity, minRelativeSimilarity: ask.minRelativeSimilarity })
    return { body: { ...askResponse(result), traceId } }
  })))

  // every input to the best match, over sembatch; outputs in input order, failures per input
  api.route('POST', '/v1/ask/batch', mapped(retryLater(async ({ json }) => {
    const body = await json() as Record<string, unknown>
    const { inputs, qos: rawQos, ...rest } = typeof body === 'object' && body != null && !Array.isArray(body) ? body : { inputs: undefined, qos: undefined }
    if ('input' in rest || 'stream' in rest) throw new HttpError(400, 'bad_request', 'a batch takes inputs (an array), not input or stream')
    const { query, timeoutMs } = parseAskBody(rest)
    if (!Array.isArray(inputs) || inputs.length === 0 || inputs.length > MAX_BATCH_INPUTS) {
      throw new HttpError(400, 'bad_request', `inputs must be an array of 1-${MAX_BATCH_INPUTS} inputs`)
    }
    let qos
    try {
      qos = parseQos(rawQos)
    } catch (err: any) {
      throw new HttpError(400, 'bad_request', String(err.message))
    }
    const r = await node.askMany(query, inputs, { timeoutMs, qos })
    return { body: { ...r, similarity: Math.round(r.similarity * 10_000) / 10_000, latencyMs: Math.round(r.latencyMs * 100) / 100 } }
  })))
}
