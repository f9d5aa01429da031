import assert from 'node:assert/strict'
import { request } from 'node:http'
import { ApiServer, HttpError } from '../src/api/server.js'
import { startDaemon } from '../src/daemon.js'
import { createLog } from '../src/log.js'
import { api, removeTempDirs, tempDir } from './helpers.js'
import type { Daemon } from '../src/daemon.js'
import type { RunInfo } from '../src/run-file.js'

/** Sends a body without a content-length header (chunked), to test the streaming limit. */
async function postChunked (url: string, token: string, chunks: string[]): Promise<{ status: number, body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'transfer-encoding': 'chunked' } }, res => {
      let text = ''
      res.on('data', d => { text += String(d) })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }) })
    })
    req.on('error', reject)
    for (const c of chunks) req.write(c)
    req.end()
  })
}

describe('HTTP API server', () => {
  let server: ApiServer
  let run: RunInfo

  before(async () => {
    server = new ApiServer({ host: '127.0.0.1', port: 0, maxBodyBytes: 1024 })
    server.route('POST', '/v1/echo', async ({ json }) => ({ body: { got: await json() } }))
    server.route('GET', '/v1/things/:name', ({ params }) => ({ body: { name: params.name } }))
    server.route('GET', '/v1/teapot', () => { throw new HttpError(418, 'teapot', 'short and stout') })
    server.route('GET', '/v1/broken', () => { throw new Error('something inside broke') })
    server.route('GET', '/open', () => ({ body: { open: true } }), { auth: false })
    await server.start()
    run = { peerId: '', did: null, multiaddrs: [], pid: process.pid, api: { url: server.url, token: server.token } }
  })

  after(async () => { await server.stop() })

  it('needs the bearer token on every route but open ones', async () => {
    assert.equal((await api(run, 'POST', '/v1/echo', { body: {}, token: null })).status, 401)
    const wrong = await api(run, 'POST', '/v1/echo', { body: {}, token: 'x'.repeat(64) })
    assert.equal(wrong.status, 401)
    assert.deepEqual(Object.keys(wrong.json.error).sort(), ['code', 'message'])
    assert.equal(wrong.json.error.code, 'unauthorized')
    assert.equal((await api(run, 'GET', '/open', { token: null })).status, 200)
    assert.deepEqual((await api(run, 'POST', '/v1/echo', { body: { a: [1, 2] } })).json, { got: { a: [1, 2] } })
  })

  it('answers malformed JSON with 400', async () => {
    const res = await api(run, 'POST', '/v1/echo', { raw: '{"a": ' })
    assert.equal(res.status, 400)
    assert.equal(res.json.error.code, 'bad_json')
  })

  it('answers a body over the limit with 413, declared or streamed', async () => {
    const declared = await api(run, 'POST', '/v1/echo', { raw: JSON.stringify({ pad: 'x'.repeat(2000) }) })
    assert.equal(declared.status, 413)
    assert.equal(declared.json.error.code, 'body_too_large')
    const streamed = await postChunked(`${server.url}/v1/echo`, server.token, ['{"pad":"', 'y'.repeat(700), 'y'.repeat(700), '"}'])
    assert.equal(streamed.status, 413)
    // the server still answers afterwards
    assert.equal((await api(run, 'POST', '/v1/echo', { body: { ok: 1 } })).status, 200)
  })

  it('answers unknown routes with 404 and wrong methods with 405', async () => {
    const missing = await api(run, 'GET', '/v1/nothing-here')
    assert.equal(missing.status, 404)
    assert.equal(missing.json.error.code, 'not_found')
    assert.equal((await api(run, 'DELETE', '/v1/echo')).status, 405)
  })

  it('decodes path parameters and maps errors to statuses', async () => {
    assert.deepEqual((await api(run, 'GET', '/v1/things/a%20b')).json, { name: 'a b' })
    const teapot = await api(run, 'GET', '/v1/teapot')
    assert.equal(teapot.status, 418)
    assert.deepEqual(teapot.json, { error: { code: 'teapot', message: 'short and stout' } })
    const broken = await api(run, 'GET', '/v1/broken')
    assert.equal(broken.status, 500)
    assert.equal(broken.json.error.code, 'internal')
  })
})

describe('node HTTP API', function () {
  this.timeout(60_000)
  let daemon: Daemon

  before(async () => {
    daemon = await startDaemon({
      home: await tempDir(),
      overrides: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      apiAddress: { host: '127.0.0.1', port: 0 },
      log: createLog('error')
    })
  })

  after(async () => {
    await daemon.stop()
    await removeTempDirs()
  })

  it('serves /healthz without a token', async () => {
    const res = await api(daemon.run, 'GET', '/healthz', { token: null })
    assert.equal(res.status, 200)
    assert.equal(res.json.ok, true)
  })

  it('serves /v1/id', async () => {
    const res = await api(daemon.run, 'GET', '/v1/id')
    assert.equal(res.status, 200)
    assert.equal(res.json.peerId, daemon.run.peerId)
    assert.deepEqual(Object.keys(res.json).sort(), ['bootstrap', 'did', 'multiaddrs', 'network', 'peerId', 'protocols', 'version'])
    assert.ok(res.json.protocols.includes('/aistack/kad/1.0.0'))
  })

  it('serves /v1/status with the sembatch counters and bulk lane links, behind the token', async () => {
    const res = await api(daemon.run, 'GET', '/v1/status')
    assert.equal(res.status, 200, res.text)
    assert.equal(res.json.peerId, daemon.run.peerId)
    assert.equal(res.json.network, 'aistack')
    assert.equal(res.json.connections, 0)
    assert.deepEqual(res.json.sembatch, { framesSent: 0, bytesSent: 0, messagesSent: 0, openLinks: 0, inboundLinks: 0, laneLinks: 0, inboundLaneLinks: 0, bulkLane: true })
    assert.equal((await api(daemon.run, 'GET', '/v1/status', { token: null })).status, 401)
  })

  it('serves the DID in /v1/id and run.json, and its document at /v1/did', async () => {
    const id = await api(daemon.run, 'GET', '/v1/id')
    assert.match(id.json.did, /^did:key:z6Mk/)
    assert.equal(daemon.run.did, id.json.did)
    const doc = await api(daemon.run, 'GET', '/v1/did')
    assert.equal(doc.status, 200)
    assert.equal(doc.json.id, id.json.did)
  })

  it('serves /metrics as Prometheus text behind the token', async () => {
    assert.equal((await api(daemon.run, 'GET', '/metrics', { token: null })).status, 401)
    const res = await api(daemon.run, 'GET', '/metrics')
    assert.equal(res.status, 200)
    assert.match(res.text, /^# HELP libp2p_/m)
  })

  it('refuses requests without the token', async () => {
    for (const path of ['/v1/id', '/v1/peers', '/v1/dht']) {
      assert.equal((await api(daemon.run, 'GET', path, { token: null })).status, 401, path)
    }
  })
})
