import { randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
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
}

/** A small JSON HTTP server: bearer-token auth, body limits and uniform errors. */
export class ApiServer {
  readonly token: string
  private readonly init: ApiServerInit
  private readonly routes: Route[] = []
  private server?: Server

  constructor (init: ApiServerInit) {
    this.init = init
    this.token = init.token ?? randomBytes(32).toString('hex')
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
    const server = createServer((req, res) => { this.handle(req, res).catch(() => {}) })
    server.keepAliveTimeout = 5000
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.init.port, this.init.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.server = server
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
    try {
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
    try {
      return JSON.parse(text)
    } catch (err: any) {
      throw new ApiError(400, 'bad_json', `the request body is not valid JSON (${String(err.message ?? err)})`)
    }
  }
}

export function sendJson (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}
