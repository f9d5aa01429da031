import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { chromium } from 'playwright-core'
import { ApiServer } from '../src/api/server.js'
import { DASHBOARD_CSP, dashboardRoutes } from '../src/api/routes-dashboard.js'
import { dashboardUrl } from '../src/cli/dashboard.js'
import { api, removeTempDirs, runCli, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'
import type { Browser } from 'playwright-core'

/**
 * The Chromium the browser test drives: $AISTACK_CHROMIUM, else Debian's (`apt-get install
 * chromium`, which .ci/run does). With AISTACK_REQUIRE_BROWSER=1 (set by .ci/run) a missing
 * browser fails the test instead of skipping it.
 */
const CHROMIUM = process.env.AISTACK_CHROMIUM ?? '/usr/bin/chromium'

describe('dashboard routes', () => {
  let server: ApiServer
  afterEach(async () => { await server?.stop() })

  async function serve (dir: string): Promise<ApiServer> {
    server = new ApiServer({ host: '127.0.0.1', port: 0, maxBodyBytes: 1024, token: 'secret' })
    server.route('GET', '/v1/thing', () => ({ body: { ok: true } }))
    dashboardRoutes(server, { dir })
    await server.start()
    return server
  }

  it('serves the page and its assets without a token, with the CSP, and only the built files', async () => {
    const dir = await tempDir()
    await mkdir(join(dir, 'assets'))
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>t</title>')
    await writeFile(join(dir, 'assets', 'dashboard.js'), 'export {}')
    await writeFile(join(dir, 'assets', 'notes.bin'), 'x')
    const { url } = await serve(dir)
    const page = await fetch(`${url}/`)
    assert.equal(page.status, 200)
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8')
    assert.equal(page.headers.get('content-security-policy'), DASHBOARD_CSP)
    assert.match(DASHBOARD_CSP, /script-src 'self'(;|$)/)
    assert.doesNotMatch(DASHBOARD_CSP, /unsafe/)
    assert.equal(await page.text(), '<!doctype html><title>t</title>')
    const script = await fetch(`${url}/assets/dashboard.js`)
    assert.equal(script.status, 200)
    assert.equal(script.headers.get('content-type'), 'text/javascript; charset=utf-8')
    assert.equal(script.headers.get('x-content-type-options'), 'nosniff')
    assert.equal((await fetch(`${url}/assets/notes.bin`)).status, 404)
    assert.equal((await fetch(`${url}/assets/..%2Findex.html`)).status, 404)
    assert.equal((await fetch(`${url}/v1/thing`)).status, 401)
  })

  it('answers 503 saying how to build it when the page was not built', async () => {
    const { url } = await serve(join(await tempDir(), 'missing/'))
    const page = await fetch(`${url}/`)
    assert.equal(page.status, 503)
    assert.match((await page.json() as any).error.message, /npm run build/)
  })

  it('puts the token in the URL fragment', () => {
    assert.equal(dashboardUrl({ url: 'http://127.0.0.1:7777', token: 'ab/c' }), 'http://127.0.0.1:7777/#token=ab%2Fc')
  })

  after(removeTempDirs)
})

describe('dashboard in headless Chromium on a 5-node testnet', function () {
  this.timeout(300_000)
  const nodes: NodeProcess[] = []
  let browser: Browser | undefined

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.AISTACK_REQUIRE_BROWSER === '1') throw new Error(`no Chromium at ${CHROMIUM}: install it (apt-get install chromium) or set AISTACK_CHROMIUM`)
      console.log(`      skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set AISTACK_CHROMIUM)`)
      this.skip()
    }
    const home = async (config: Record<string, unknown> = {}): Promise<string> => {
      const dir = await tempDir()
      await writeFile(join(dir, 'config.json'), JSON.stringify({ telemetry: { intervalMs: 1000 }, ...config }))
      return dir
    }
    nodes.push(await startNodeProcess(await home()))
    const bootstrap = ['--bootstrap', nodes[0].run.multiaddrs[0]]
    nodes.push(await startNodeProcess(await home({
      capabilities: [{ name: 'echo', description: 'Echo back the input text unchanged', handler: { type: 'builtin', name: 'echo' } }]
    }), bootstrap))
    for (let i = 2; i < 5; i++) nodes.push(await startNodeProcess(await home(), bootstrap))
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // root (CI) cannot use Chromium's sandbox
      args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-gpu', '--disable-dev-shm-usage'],
      timeout: 120_000
    })
  })

  after(async () => {
    await browser?.close()
    await Promise.all(nodes.map(async n => n.stop()))
    await removeTempDirs()
  })

  it('shows the five nodes and their connections, a trace, turns a killed node down, and logs no console error', async () => {
    const run = nodes[0].run
    const printed = await runCli(['dashboard', '--home', nodes[0].home])
    assert.equal(printed.code, 0, printed.stderr)
    assert.equal(printed.stdout.trim(), `${run.api.url}/#token=${run.api.token}`)
    // --open hands the URL to xdg-open (here a stand-in on the PATH that writes it down)
    const bin = await tempDir()
    await writeFile(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > '${join(bin, 'opened')}'\n`, { mode: 0o755 })
    const opened = await runCli(['dashboard', '--home', nodes[0].home, '--open'], { env: { PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` } })
    assert.equal(opened.code, 0, opened.stderr)
    assert.equal(await waitFor(async () => readFile(join(bin, 'opened'), 'utf8').catch(() => undefined), { timeoutMs: 30_000, what: 'the stand-in xdg-open' }), printed.stdout.trim())

    const page = await (browser as Browser).newPage({ viewport: { width: 1400, height: 1500 } })
    const errors: string[] = []
    page.on('console', msg => { if (msg.type() === 'error') errors.push(msg.text()) })
    page.on('pageerror', err => { errors.push(String(err)) })
    await page.goto(printed.stdout.trim())
    // the token leaves the address bar
    assert.equal(new URL(page.url()).hash, '')

    const ids = nodes.map(n => n.run.peerId)
    await page.waitForFunction((ids: string[]) => ids.every(id => document.querySelector(`#nodes tr[data-peer="${id}"][data-status="up"]`) != null), ids, { timeout: 120_000, polling: 250 })
    assert.equal(await page.locator('#nodes tbody tr').count(), 5)
    assert.equal(await page.locator('#graph canvas').count() > 0, true)
    // this node's connections with their encryption
    await page.waitForFunction(() => document.querySelectorAll('#peers tbody tr').length >= 4, undefined, { timeout: 60_000, polling: 250 })
    const encryption = await page.locator('#peers tbody tr td:nth-child(3)').allTextContents()
    assert.ok(encryption.every(e => /^(noise-mlkem768-hfs|noise|quic-tls)$/.test(e)), encryption.join(', '))
    // links between other nodes, from their telemetry records: node 2 connects to node 1
    const dial = await api(nodes[2].run, 'POST', '/v1/peers', { body: { multiaddr: nodes[1].run.multiaddrs[0] } })
    assert.equal(dial.status, 201, dial.text)
    await waitFor(async () => {
      const net = await api(run, 'GET', '/v1/network')
      return net.json.nodes.find((n: any) => n.peerId === ids[1])?.links?.includes(ids[2]) === true ? true : undefined
    }, { timeoutMs: 60_000, intervalMs: 500, what: 'the link between nodes 1 and 2 in node 0\'s table' })
    await page.waitForFunction(() => Number((document.getElementById('graph') as HTMLElement).dataset.links ?? 0) >= 1, undefined, { timeout: 30_000, polling: 250 })
    // who serves what, with liveness
    await page.waitForSelector(`#capabilities tr[data-capability="echo"] span.up[title^="${ids[1]}"]`, { timeout: 60_000 })

    // a trace of an ask answered by node 1
    const ask = await api(run, 'POST', '/v1/ask', { body: { query: 'echo back the input text', input: 'hello' } })
    assert.equal(ask.status, 200, ask.text)
    await page.fill('#trace-id', ask.json.traceId)
    await page.click('#trace-form button')
    await page.waitForFunction(() => /spans? on \d+ nodes?/.test(document.getElementById('trace')?.textContent ?? ''), undefined, { timeout: 30_000 })
    assert.match(await page.locator('#trace').textContent() ?? '', new RegExp(`^trace ${ask.json.traceId as string}: \\d+ spans? [^\\n]*\\nask `))

    // a task and its events, live
    const task = await api(run, 'POST', '/v1/tasks', { body: { capability: 'echo', input: 'hello' } })
    assert.equal(task.status, 202, task.text)
    await page.waitForSelector(`#tasks tr[data-task="${task.json.id as string}"][data-state="completed"]`, { timeout: 60_000 })
    await page.waitForSelector('#events li[data-type="task.completed"]', { timeout: 30_000 })

    if (process.env.AISTACK_DASHBOARD_SCREENSHOT != null) {
      // half a minute of samples in the charts first
      await page.waitForFunction(() => Number(document.getElementById('chart-cpu')?.dataset.samples) >= 15, undefined, { timeout: 120_000 })
      await page.screenshot({ path: process.env.AISTACK_DASHBOARD_SCREENSHOT, fullPage: true })
    }

    nodes[4].child.kill('SIGKILL')
    await page.waitForSelector(`#nodes tr[data-peer="${ids[4]}"][data-status="down"]`, { timeout: 120_000 })
    assert.equal(await page.locator('#nodes tr[data-status="up"]').count(), 4)
    assert.match(await page.locator('#summary').textContent() ?? '', /4 of 5 nodes up/)
    assert.deepEqual(errors, [])
    await page.close()
  })
})
