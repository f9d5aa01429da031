/**
 * The A2A endpoints on the node's API, served by the SDK's Express handlers: the agent card at
 * `/.well-known/agent-card.json` (no token, as A2A discovery expects; the card names the bearer
 * scheme) and the JSON-RPC binding at `/a2a` (behind the API's bearer token), both with the v0.3
 * compatibility layer on.
 */
import { AGENT_CARD_PATH } from '@a2a-js/sdk'
import { DefaultRequestHandler } from '@a2a-js/sdk/server'
import { UserBuilder, agentCardHandler, jsonRpcHandler } from '@a2a-js/sdk/server/express'
import express from 'express'
import { BoundedTaskStore, NodeAgentExecutor, agentCard, placeholderCard } from './a2a.js'
import type { A2aGatewayInit } from './a2a.js'
import type { AgentCard } from '@a2a-js/sdk'
import type { ApiServer, RouteContext } from '../api/server.js'
import type { ServerResponse } from 'node:http'

/** Adds `GET /.well-known/agent-card.json` and `POST /a2a` to the API */
export function a2aRoutes (api: ApiServer, init: A2aGatewayInit): void {
  const executor = new NodeAgentExecutor(init)
  // one card object: the request handler checks protocol versions against it, and each card
  // request refreshes it (skills change as capabilities come and go)
  const card = placeholderCard(init)
  const cardOf = async (): Promise<AgentCard> => Object.assign(card, await agentCard(init))
  const handler = new DefaultRequestHandler(card, new BoundedTaskStore(init.maxTasks), executor)
  const app = express()
  app.disable('x-powered-by')
  app.use(`/${AGENT_CARD_PATH}`, agentCardHandler({ agentCardProvider: cardOf, legacyCompat: { enabled: true } }))
  app.use('/a2a', jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication, legacyCompat: { enabled: true } }))

  const viaExpress = async ({ req, res, json }: RouteContext): Promise<undefined> => {
    if (req.method === 'POST') {
      // the API's reader bounds size and nesting; Express's parsers then see a consumed request
      try {
        (req as any).body = await json()
      } catch (err: any) {
        finalHandler({ type: err?.code === 'body_too_large' ? 'entity.too.large' : err?.code === 'too_deep' ? 'entity.too.deep' : 'entity.parse.failed' }, res)
        return undefined
      }
    }
    await new Promise<void>(resolve => {
      res.once('close', resolve)
      res.once('finish', resolve)
      app(req as any, res as any, (err?: any) => { finalHandler(err, res) })
    })
    return undefined
  }
  api.route('GET', `/${AGENT_CARD_PATH}`, viaExpress, { auth: false })
  api.route('POST', '/a2a', viaExpress)
}

/**
 * What could not be routed or parsed, as JSON-RPC error objects: -32700 for a body that is not
 * JSON, -32600 for one nested too deep or (status 413) over `api.maxBodyBytes`, 404 for an
 * unknown path.
 */
function finalHandler (err: any, res: ServerResponse): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const reply = (status: number, code: number, message: string): void => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } })
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  }
  if (err?.type === 'entity.parse.failed') reply(200, -32700, 'Parse error: the request body is not valid JSON')
  else if (err?.type === 'entity.too.large') reply(413, -32600, 'Invalid Request: the body is over the API\'s limit (api.maxBodyBytes)')
  else if (err?.type === 'entity.too.deep') reply(200, -32600, 'Invalid Request: the body nests arrays and objects deeper than 64 levels')
  else if (err != null) reply(500, -32603, 'Internal error')
  else reply(404, -32601, 'no A2A endpoint at this path')
}
