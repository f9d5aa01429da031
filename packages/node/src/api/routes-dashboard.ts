import { readFile, readdir } from 'node:fs/promises'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HttpError } from './server.js'
import type { ApiServer, RouteContext } from './server.js'

/**
 * The Content-Security-Policy of the dashboard and its assets: everything from the API's own
 * origin, no inline or evaluated scripts or styles (scripts may still set element styles through
 * the DOM), no framing, no plugins, forms nowhere.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8'
}

/** Where `scripts/build-web.js` puts the built page: packages/node/dist/web */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../web/', import.meta.url))

interface Asset { body: Buffer, type: string }

/**
 * The web dashboard: `GET /` (index.html) and `GET /assets/:file` (the bundle), without a token
 * since they hold no data; the page's own API calls carry the token it takes from the URL
 * fragment. Only the files the build wrote are served (read once, kept in memory); a node whose
 * page was not built answers 503 saying how to build it.
 */
export function dashboardRoutes (api: ApiServer, { dir = DASHBOARD_DIR }: { dir?: string } = {}): void {
  let assets: Promise<Map<string, Asset>> | undefined
  const load = async (): Promise<Map<string, Asset>> => {
    const map = new Map<string, Asset>()
    const add = async (name: string, path: string): Promise<void> => {
      const type = TYPES[extname(name)]
      if (type != null) map.set(name, { body: await readFile(path), type })
    }
    await add('index.html', join(dir, 'index.html'))
    for (const name of await readdir(join(dir, 'assets'))) await add(`assets/${name}`, join(dir, 'assets', name))
    return map
  }
  const get = async (name: string): Promise<Asset | undefined> => {
    assets ??= load()
    try {
      return (await assets).get(name)
    } catch {
      assets = undefined
      throw new HttpError(503, 'dashboard_not_built', 'the web dashboard is not built on this node: run `npm run build` in the aistack checkout')
    }
  }
  const send = async (ctx: RouteContext, name: string): Promise<undefined> => {
    const asset = await get(name)
    if (asset == null) throw new HttpError(404, 'not_found', `no dashboard file ${name}`)
    ctx.res.writeHead(200, {
      'content-type': asset.type,
      'content-length': asset.body.length,
      'content-security-policy': DASHBOARD_CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cross-origin-resource-policy': 'same-origin',
      'cache-control': 'no-cache'
    })
    ctx.res.end(asset.body)
    return undefined
  }
  api.route('GET', '/', async (ctx) => send(ctx, 'index.html'), { auth: false })
  api.route('GET', '/assets/:file', async (ctx) => send(ctx, `assets/${ctx.params.file}`), { auth: false })
}
