import { randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import { isIP } from 'node:net'
import { ApiError } from '../errors.js'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * An error a route throws to answer with a given status and `{"error":{"code","message"}}`: the
 * same class the CLI's client raises for such an answer.
 */
export { ApiError as HttpError }

export interface RouteContext {
  req: IncomingMessage
  res: ServerResponse
  params: Record<string, string>
  query: URLSearchParams
  /** Reads and parses the JSON body (400 when malformed, 413 over the limit). */
  json: () => Promise<unknown>
}

/**
 * What a route returns: a JSON body (status 200 unless given), text, or nothing when the
 * route has written the response itself (server-sent events).
 */
export type RouteResult = { status?: number, body: unknown } | { status?: number, text: string, contentType: string } | undefined
export type RouteHandler = (ctx: RouteContext) => Promise<RouteResult> | RouteResult

/** Names the HTTP status and code of a module's error, or undefined to leave it a 500. */
export type ErrorStatus = (err: unknown) => { status: number, code: string } | undefined

/** Wraps a route so that the named errors of a module answer with their own status. */
export function withErrorStatus (handler: RouteHandler, statusOf: ErrorStatus): RouteHandler {
  return async (ctx) => {
    try {
      return await handler(ctx)
    } catch (err: any) {
      if (err instanceof ApiError) throw err
      const mapped = statusOf(err)
      if (mapped == null) throw err
      throw new ApiError(mapped.status, mapped.code, String(err?.message ?? err))
    }
  }
}

interface Route {
  method: string
  parts: string[]
  auth: boolean
  handler: RouteHandler
}

export interface ApiServerInit {
  host: string
  port: number
  maxBodyBytes: number
  /** Bearer token; a random one when absent. */
  token?: string
  /**
   * Further names (`host` or `host:port`) the `Host` header may carry, e.g. the name of a
   * reverse proxy; the API's own addresses are always allowed.
   */
  allowedHosts?: string[]
  /** Overrides of the server limits (see API_LIMITS) */
  limits?: Partial<ApiLimits>
}

/** The limits of the HTTP server; every one is documented in docs/security.md */
export interface ApiLimits {
  /** Deepest nesting of arrays and objects in a JSON body */
  maxJsonDepth: number
  /** Time to receive a request's headers, in ms (slow clients are cut off with 408) */
  headersTimeoutMs: number
  /** Time to receive a whole request, body included, in ms */
  requestTimeoutMs: number
  /** Idle time of a kept-alive connection, in ms */
  keepAliveTimeoutMs: number
  /** Largest size of the request line and headers, in bytes */
  maxHeaderBytes: number
  /** Most headers in one request */
  maxHeadersCount: number
  /** Most open connections; more are closed at once */
  maxConnections: number
  /** Connections waiting to be accepted (the listen backlog, capped by the kernel's somaxconn) */
  listenBacklog: number
  /** Most requests being answered at once (server-sent event streams not counted); more get 503 */
  maxConcurrentRequests: number
  /** Most requests on one kept-alive connection */
  maxRequestsPerSocket: number
}

export const API_LIMITS: ApiLimits = {
  maxJsonDepth: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxHeaderBytes: 16 * 1024,
  maxHeadersCount: 100,
  // a burst of clients each on its own connection (1,000 searches at once) gets answers, 503
  // `busy` beyond maxConcurrentRequests, instead of resets
  maxConnections: 2048,
  listenBacklog: 2048,
  maxConcurrentRequests: 256,
  maxRequestsPerSocket: 10_000
}

/**
 * A small JSON HTTP server: bearer-token auth, `Host` check, body and time limits and uniform
 * errors.
 */
export class ApiServer {
  readonly token: string
  readonly limits: ApiLimits
  private readonly init: ApiServerInit
  private readonly routes: Route[] = []
  private server?: Server
  private hosts = new Set<string>()
  private inflight = 0

  constructor (init: ApiServerInit) {
    this.init = init
    this.token = init.token ?? randomBytes(32).toString('hex')
    this.limits = { ...API_LIMITS, ...init.limits }
  }

  /** Adds a route; `pattern` segments starting with `:` are parameters. */
  route (method: string, pattern: string, handler: RouteHandler, { auth = true } = {}): this {
    this.routes.push({ method, parts: pattern.split('/').filter(Boolean), auth, handler })
    return this
  }

  get url (): string {
    const address = this.server?.address() as AddressInfo | null
    if (address == null) throw new Error('the API server is not listening')
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    return `http://${host}:${address.port}`
  }

  async start (): Promise<void> {
    const limits = this.limits
    const server = createServer({
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      requireHostHeader: true
    }, (req, res) => { this.handle(req, res).catch(() => {}) })
    server.maxHeadersCount = limits.maxHeadersCount
    server.maxConnections = limits.maxConnections
    server.maxRequestsPerSocket = limits.maxRequestsPerSocket
    // a bad or slow request is answered 400 or 408 and its socket closed by Node's default clientError handling
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ port: this.init.port, host: this.init.host, backlog: limits.listenBacklog }, () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.server = server
    this.hosts = allowedHosts(this.init.host, this.init.allowedHosts ?? [])
  }

  /**
   * Whether a `Host` header names this API (the guard against DNS rebinding): an IP address
   * (v4, or v6 in brackets), `localhost`, the configured host or one of `allowedHosts`, with any
   * port. A page that reaches the API through a DNS name its author controls sends that name and
   * is refused; the port is not checked, so port forwarding and published container ports work.
   */
  hostAllowed (header: string | undefined): boolean {
    const name = hostName(header)
    if (name == null) return false
    return isIP(name) !== 0 || this.hosts.has(name)
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server == null) return
    this.server = undefined
    await new Promise<void>(resolve => {
      server.close(() => { resolve() })
      server.closeAllConnections()
    })
  }

  private match (method: string, path: string): { route?: Route, params: Record<string, string>, pathKnown: boolean } {
    const parts = path.split('/').filter(Boolean)
    let pathKnown = false
    for (const route of this.routes) {
      if (route.parts.length !== parts.length) continue
      const params: Record<string, string> = {}
      let ok = true
      for (let i = 0; i < parts.length; i++) {
        const want = route.parts[i]
        if (want.startsWith(':')) {
          try {
            params[want.slice(1)] = decodeURIComponent(parts[i])
          } catch {
            ok = false
          }
        } else if (want !== parts[i]) {
          ok = false
        }
        if (!ok) break
      }
      if (!ok) continue
      pathKnown = true
      if (route.method === method) return { route, params, pathKnown }
    }
    return { params: {}, pathKnown }
  }

  private authorised (req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? ''
    const match = /^Bearer\s+(\S+)$/i.exec(header)
    if (match == null) return false
    const given = Buffer.from(match[1])
    const want = Buffer.from(this.token)
    return given.length === want.length && timingSafeEqual(given, want)
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    let counted = false
    try {
      if (!this.hostAllowed(req.headers.host)) {
        // a page on another origin that reaches the API through a rebound DNS name is refused
        throw new ApiError(421, 'misdirected_request', `the Host header "${String(req.headers.host ?? '').slice(0, 100)}" does not name this API; use the URL in run.json (or add the name to api.allowedHosts)`)
      }
      if (this.inflight >= this.limits.maxConcurrentRequests) {
        res.setHeader('retry-after', '1')
        throw new ApiError(503, 'busy', `the API is answering ${this.inflight} requests already; retry later`)
      }
      this.inflight++
      counted = true
      res.once('close', () => { if (counted) { counted = false; this.inflight-- } })
      const url = new URL(req.url ?? '/', 'http://localhost')
      const method = req.method ?? 'GET'
      const { route, params, pathKnown } = this.match(method, url.pathname)
      if (route == null) {
        if (pathKnown) throw new ApiError(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}`)
        throw new ApiError(404, 'not_found', `no route ${method} ${url.pathname}`)
      }
      if (route.auth && !this.authorised(req)) {
        res.setHeader('WWW-Authenticate', 'Bearer')
        throw new ApiError(401, 'unauthorized', 'missing or wrong bearer token (see api.token in run.json)')
      }
      const result = await route.handler({ req, res, params, query: url.searchParams, json: async () => this.readJson(req) })
      if (res.headersSent && counted) {
        // a stream (server-sent events) does not hold a request slot while it lasts
        counted = false
        this.inflight--
      }
      if (result == null || res.headersSent) return
      if ('text' in result) {
        res.writeHead(result.status ?? 200, { 'content-type': result.contentType })
        res.end(result.text)
      } else {
        sendJson(res, result.status ?? 200, result.body)
      }
    } catch (err: any) {
      if (res.headersSent) {
        res.destroy()
        return
      }
      if (err instanceof ApiError) {
        sendJson(res, err.status, { error: { code: err.code, message: err.message } })
      } else {
        sendJson(res, 500, { error: { code: 'internal', message: String(err?.message ?? err) } })
      }
    }
  }

  private async readJson (req: IncomingMessage): Promise<unknown> {
    const limit = this.init.maxBodyBytes
    const declared = Number(req.headers['content-length'] ?? NaN)
    if (Number.isFinite(declared) && declared > limit) {
      req.resume()
      throw new ApiError(413, 'body_too_large', `the request body is over the limit of ${limit} bytes (api.maxBodyBytes in config.json)`)
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of req) {
      size += (chunk as Buffer).length
      if (size > limit) {
        req.resume()
        throw new ApiError(413, 'body_too_large', `the request body is over the limit of ${limit} bytes (api.maxBodyBytes in config.json)`)
      }
      chunks.push(chunk as Buffer)
    }
    const text = Buffer.concat(chunks).toString('utf8')
    if (text.trim() === '') return {}
    const depth = jsonDepth(text)
    if (depth > this.limits.maxJsonDepth) {
      throw new ApiError(400, 'too_deep', `the request body nests arrays and objects ${depth} deep; the limit is ${this.limits.maxJsonDepth}`)
    }
    try {
      return JSON.parse(text)
    } catch (err: any) {
      throw new ApiError(400, 'bad_json', `the request body is not valid JSON (${String(err.message ?? err)})`)
    }
  }
}

/**
 * The deepest nesting of `[` and `{` in a JSON text, counted outside strings in one pass and
 * without recursion (so a body nested 100,000 deep costs no stack). Malformed text gives some
 * number; JSON.parse rejects it afterwards.
 */
export function jsonDepth (text: string): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return max
}

/**
 * The host name of a `Host` header (RFC 9110 §7.2: `uri-host [":" port]`), lower-cased, without
 * brackets, port or a final dot; undefined when absent or malformed.
 */
export function hostName (header: string | undefined): string | undefined {
  if (header == null) return undefined
  const m = /^\[([0-9a-f:.]+)\](?::\d*)?$/i.exec(header.trim()) ?? /^([^:[\]\s/@]+)(?::\d*)?$/.exec(header.trim())
  if (m == null) return undefined
  const name = m[1].toLowerCase().replace(/\.$/, '')
  return name === '' ? undefined : name
}

/**
 * The host names (not IP addresses, which are always allowed) the API answers to: `localhost`,
 * the host it is bound to, and `extra` (names, or `name:port` of which the port is ignored).
 */
export function allowedHosts (host: string, extra: string[]): Set<string> {
  const out = new Set<string>(['localhost'])
  for (const h of [host, ...extra]) {
    const name = hostName(h) ?? hostName(`[${h}]`)
    if (name != null && isIP(name) === 0) out.add(name)
  }
  return out
}

export function sendJson (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}
