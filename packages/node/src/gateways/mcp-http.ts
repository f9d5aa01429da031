/**
 * The MCP server over Streamable HTTP at the node API's `/mcp` (behind the API's bearer token):
 * one MCP session per client, each with its own McpGateway and the SDK's
 * StreamableHTTPServerTransport, kept in memory with a cap on their number and an idle expiry.
 */
import { randomUUID } from 'node:crypto'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js'
import { HttpError } from '../api/server.js'
import { McpGateway } from './mcp.js'
import type { NodeApi } from './node-api.js'
import type { ApiServer, RouteContext } from '../api/server.js'

export interface McpHttpInit {
  /** the node's API as the sessions call it */
  api: () => NodeApi
  /** most open sessions (default 32); a new one beyond it replaces the least recently used */
  maxSessions?: number
  /** a session unused this long is closed, ms (default 10 minutes) */
  idleMs?: number
  /** see McpGatewayInit.refreshMs */
  refreshMs?: number
}

interface Session {
  transport: StreamableHTTPServerTransport
  gateway: McpGateway
  lastUsed: number
}

/** The open MCP sessions of the `/mcp` endpoint */
export class McpSessions {
  private readonly sessions = new Map<string, Session>()
  private readonly init: McpHttpInit
  private readonly maxSessions: number
  private readonly idleMs: number

  constructor (init: McpHttpInit) {
    this.init = init
    this.maxSessions = init.maxSessions ?? 32
    this.idleMs = init.idleMs ?? 600_000
  }

  get size (): number {
    return this.sessions.size
  }

  /** Handles one request to /mcp (POST, GET or DELETE) and writes its response */
  async handle ({ req, res, json }: RouteContext): Promise<void> {
    this.expire()
    const header = req.headers['mcp-session-id']
    const id = Array.isArray(header) ? header[0] : header
    const body = req.method === 'POST' ? await json() : undefined
    let session = id != null ? this.sessions.get(id) : undefined
    if (id != null && session == null) throw new HttpError(404, 'not_found', `no MCP session ${id.slice(0, 64)} (it ended or expired); initialize a new one`)
    if (session == null) {
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        throw new HttpError(400, 'bad_request', 'no mcp-session-id header: the first request of a session must be an MCP initialize request')
      }
      session = await this.open()
    }
    session.lastUsed = Date.now()
    await session.transport.handleRequest(req, res, body)
  }

  /** Closes every session */
  async close (): Promise<void> {
    const all = [...this.sessions.values()]
    this.sessions.clear()
    await Promise.all(all.map(async s => { await s.gateway.close().catch(() => {}) }))
  }

  private async open (): Promise<Session> {
    while (this.sessions.size >= this.maxSessions) {
      const [oldest] = [...this.sessions.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed)
      this.sessions.delete(oldest[0])
      await oldest[1].gateway.close().catch(() => {})
    }
    const gateway = new McpGateway({ api: this.init.api(), refreshMs: this.init.refreshMs })
    const session: Session = { gateway, lastUsed: Date.now(), transport: undefined as unknown as StreamableHTTPServerTransport }
    session.transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => { this.sessions.set(sid, session) },
      onsessionclosed: (sid) => {
        this.sessions.delete(sid)
        gateway.close().catch(() => {})
      }
    })
    await gateway.server.connect(session.transport)
    return session
  }

  private expire (now = Date.now()): void {
    for (const [sid, s] of this.sessions) {
      if (now - s.lastUsed > this.idleMs) {
        this.sessions.delete(sid)
        s.gateway.close().catch(() => {})
      }
    }
  }
}

/** Adds POST, GET and DELETE `/mcp` to the API (bearer token required, as on every route). */
export function mcpRoutes (api: ApiServer, sessions: McpSessions): void {
  for (const method of ['POST', 'GET', 'DELETE']) {
    api.route(method, '/mcp', async (ctx) => {
      await sessions.handle(ctx)
      return undefined
    })
  }
}
