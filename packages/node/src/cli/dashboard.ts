import { spawn } from 'node:child_process'
import { resolveHome } from '../paths.js'
import { requireRunning } from '../run-file.js'
import { parse } from './args.js'
import { HOME_HELP } from './commands.js'

const DASHBOARD_HELP = `Usage: aistack dashboard [--home DIR] [--open]

Prints the URL of the running node's web dashboard: the network as a graph with the encryption
of this node's connections, capabilities and who serves them, telemetry charts per node, live
tasks and events, and traces. The API token travels in the URL's fragment (#token=…), which the
browser keeps to itself; anyone with the URL can use the node's API, so share it as you would
run.json.

${HOME_HELP}
  --open              also open it in the desktop's browser (xdg-open, or open on macOS)`

/** The dashboard's URL: the API's address with the token in the fragment. */
export function dashboardUrl (api: { url: string, token: string }): string {
  return `${api.url}/#token=${encodeURIComponent(api.token)}`
}

/** Opens `url` with the desktop's opener; resolves to an error message, or undefined when it started. */
async function openUrl (url: string): Promise<string | undefined> {
  const opener = process.platform === 'darwin' ? 'open' : 'xdg-open'
  return new Promise(resolve => {
    const child = spawn(opener, [url], { stdio: 'ignore', detached: true })
    child.once('error', (err: any) => { resolve(`cannot run ${opener} (${String(err.code ?? err.message)}): open the URL above in a browser`) })
    child.once('spawn', () => { child.unref(); resolve(undefined) })
  })
}

export async function dashboardCommand (args: string[]): Promise<number> {
  const { values } = parse('dashboard', args, { home: { type: 'string' }, open: { type: 'boolean' } })
  if (values.help === true) {
    console.log(DASHBOARD_HELP)
    return 0
  }
  const info = await requireRunning(resolveHome(values.home as string | undefined))
  const url = dashboardUrl(info.api)
  console.log(url)
  const page = await fetch(`${info.api.url}/`, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined)
  if (page?.status === 503) console.error('warning: this node has no built dashboard: run `npm run build` in the aistack checkout and restart the node')
  if (values.open === true) {
    const failed = await openUrl(url)
    if (failed != null) {
      console.error(failed)
      return 1
    }
  }
  return 0
}
