import assert from 'node:assert/strict'
import { chmod, stat, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import { MemoryDatastore } from 'datastore-core'
import { IdempotencyStore, canonicalJson, parseIdempotencyKey } from '../src/api/idempotency.js'
import { ApiServer, allowedHosts, hostName, jsonDepth } from '../src/api/server.js'
import { runFilePath } from '../src/run-file.js'
import { api, removeTempDirs, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'
import type { RunInfo } from '../src/run-file.js'

/** A GET with a chosen Host header (fetch does not let one set it) */
async function getWithHost (url: string, host: string): Promise<{ status: number, body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers: { host } }, res => {
      let text = ''
      res.on('data', d => { text += String(d) })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }) })
    })
    req.on('error', reject)
    req.end()
  })
}

function nested (depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth)
}

describe('HTTP API limits', () => {
  it('jsonDepth counts nesting outside strings, without recursion', () => {
    assert.equal(jsonDepth('{}'), 1)
    assert.equal(jsonDepth('{"a":[1,{"b":[]}]}'), 4)
    assert.equal(jsonDepth('"[[[[{{{"'), 0)
    assert.equal(jsonDepth('["\\"[[[", [1]]'), 2)
    assert.equal(jsonDepth(nested(100_000)), 100_000)
  })

  it('reads the host name of a Host header and allows localhost, the bound host and the configured names', () => {
    assert.equal(hostName('LocalHost:5454'), 'localhost')
    assert.equal(hostName('[::1]:5454'), '::1')
    assert.equal(hostName('127.0.0.1'), '127.0.0.1')
    assert.equal(hostName('box.lan.'), 'box.lan')
    for (const bad of [undefined, '', 'a b', 'user@host', '[zz]:1', 'a:b:c']) assert.equal(hostName(bad), undefined, String(bad))
    assert.deepEqual([...allowedHosts('node-0', ['api.example:8443', 'box.lan'])].sort(), ['api.example', 'box.lan', 'localhost', 'node-0'])
    assert.deepEqual([...allowedHosts('0.0.0.0', [])], ['localhost'])
  })

  it('Idempotency-Key values are checked', () => {
    assert.equal(parseIdempotencyKey(undefined), undefined)
    assert.equal(parseIdempotencyKey('abc-123'), 'abc-123')
    for (const bad of ['', 'a b', 'x'.repeat(257), 'é']) assert.throws(() => parseIdempotencyKey(bad), { name: 'BadIdempotencyKeyError' }, JSON.stringify(bad))
    assert.throws(() => parseIdempotencyKey(['a', 'b']), { name: 'BadIdempotencyKeyError' })
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: null }] }), '{"a":[{"c":null,"d":2}],"b":1}')
  })

  it('the idempotency store replays, refuses a reused key with another body, expires and is bounded', async () => {
    const datastore = new MemoryDatastore()
    let now = 1_000_000
    const store = new IdempotencyStore({ datastore, windowMs: 60_000, maxKeys: 3, now: () => now })
    assert.equal(await store.begin('k1', 'f1'), undefined)
    await assert.rejects(store.begin('k1', 'f1'), { name: 'IdempotencyKeyInUseError' })
    await store.commit('k1', 'f1', 'task-1')
    assert.equal((await store.begin('k1', 'f1'))?.taskId, 'task-1')
    await assert.rejects(store.begin('k1', 'f2'), { name: 'IdempotencyKeyMismatchError' })
    // a request that created nothing is forgotten
    assert.equal(await store.begin('k2', 'f'), undefined)
    store.release('k2')
    assert.equal(await store.begin('k2', 'f'), undefined)
    store.release('k2')

    // another store on the same datastore (a restarted node) knows the key
    const again = new IdempotencyStore({ datastore, windowMs: 60_000, maxKeys: 3, now: () => now })
    await again.load()
    assert.equal((await again.begin('k1', 'f1'))?.taskId, 'task-1')

    // at most maxKeys: the oldest go first
    for (const k of ['a', 'b', 'c']) {
      now += 1
      assert.equal(await store.begin(k, 'f'), undefined)
      await store.commit(k, 'f', `task-${k}`)
    }
    assert.equal(store.size, 3)
    assert.equal(await store.begin('k1', 'f1'), undefined, 'k1 was the oldest and is forgotten')
    store.release('k1')
    // after the window every key is forgotten, in memory and in the datastore
    now += 60_001
    assert.equal(await store.begin('a', 'f'), undefined)
    store.release('a')
    assert.equal(store.size, 0)
    const left = []
    for await (const e of datastore.query({ prefix: '/aistack/api/idempotency' })) left.push(e)
    assert.equal(left.length, 0)
  })

  describe('an API server', () => {
    let server: ApiServer
    let run: RunInfo

    before(async () => {
      server = new ApiServer({ host: '127.0.0.1', port: 0, maxBodyBytes: 1024 * 1024, allowedHosts: ['aistack.internal'] })
      server.route('POST', '/v1/echo', async ({ json }) => ({ body: { got: await json() } }))
      server.route('GET', '/healthz', () => ({ body: { ok: true } }), { auth: false })
      await server.start()
      run = { peerId: '', did: null, multiaddrs: [], pid: process.pid, api: { url: server.url, token: server.token } }
    })

    after(async () => { await server.stop() })

    it('answers a Host that does not name it with 421 on every route, /healthz included', async () => {
      const port = new URL(server.url).port
      for (const host of [`evil.example:${port}`, `attacker.test:${port}`, `localhost.evil.example:${port}`, `127.0.0.1.nip.io:${port}`, 'x y']) {
        const res = await getWithHost(`${server.url}/healthz`, host)
        assert.equal(res.status, 421, host)
        assert.equal(res.body.error.code, 'misdirected_request')
      }
      // the port is not checked: forwarded and published ports keep working
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`, 'localhost:8080', `aistack.internal:${port}`]) {
        assert.equal((await getWithHost(`${server.url}/healthz`, host)).status, 200, host)
      }
    })

    it('answers JSON nested past the limit with 400 and takes it up to the limit', async () => {
      const deep = await api(run, 'POST', '/v1/echo', { raw: `{"input":${nested(10_000)}}` })
      assert.equal(deep.status, 400)
      assert.equal(deep.json.error.code, 'too_deep')
      assert.equal((await api(run, 'POST', '/v1/echo', { raw: `{"input":${nested(63)}}` })).status, 200)
    })

    it('answers 503 busy past the requests it answers at once, and takes more once they end', async () => {
      const small = new ApiServer({ host: '127.0.0.1', port: 0, maxBodyBytes: 1024, limits: { maxConcurrentRequests: 2 } })
      const { promise: release, resolve } = Promise.withResolvers<void>()
      let waiting = 0
      small.route('GET', '/v1/slow', async () => { waiting++; await release; return { body: { ok: true } } })
      await small.start()
      try {
        const r: RunInfo = { peerId: '', did: null, multiaddrs: [], pid: process.pid, api: { url: small.url, token: small.token } }
        const held = [api(r, 'GET', '/v1/slow'), api(r, 'GET', '/v1/slow')]
        await waitFor(() => waiting === 2, { what: 'two requests held' })
        const refused = await api(r, 'GET', '/v1/slow')
        assert.equal(refused.status, 503)
        assert.equal(refused.json.error.code, 'busy')
        resolve()
        assert.deepEqual((await Promise.all(held)).map(x => x.status), [200, 200])
        assert.equal((await api(r, 'GET', '/v1/slow')).status, 200)
      } finally {
        resolve()
        await small.stop()
      }
    })

    it('has headers, request and keep-alive timeouts and a connection limit', () => {
      const limits = server.limits
      assert.ok(limits.headersTimeoutMs > 0 && limits.requestTimeoutMs >= limits.headersTimeoutMs)
      assert.ok(limits.maxConnections > 0 && limits.maxConcurrentRequests > 0)
    })
  })
})

describe('HTTP API of a running node: validation, run.json, Idempotency-Key', function () {
  this.timeout(120_000)
  let node: NodeProcess
  let home: string

  before(async () => {
    home = await tempDir()
    await writeFile(join(home, 'config.json'), JSON.stringify({
      capabilities: [{ name: 'echo', description: 'Echo the input back unchanged', handler: { type: 'builtin', name: 'echo' } }]
    }))
    // a run.json left readable by all by an earlier run (of a process that is gone)
    await writeFile(runFilePath(home), JSON.stringify({ pid: 2 ** 22 + 1, api: { url: 'http://127.0.0.1:1', token: 'old' } }), { mode: 0o644 })
    await chmod(runFilePath(home), 0o644)
    node = await startNodeProcess(home)
  })

  after(async () => {
    node?.child.kill('SIGKILL')
    await node?.stop()
    await removeTempDirs()
  })

  it('run.json is 0600 even when one with another mode was there', async () => {
    assert.equal((await stat(runFilePath(home))).mode & 0o777, 0o600)
  })

  it('answers bad task and ask bodies with 400, never 500', async () => {
    const cases: Array<[string, string, unknown, RegExp]> = [
      ['POST', '/v1/tasks', { query: 'x'.repeat(4097), input: 1 }, /query must be at most 4096/],
      ['POST', '/v1/tasks', { query: ' \n\t ', input: 1 }, /query must be a non-empty string/],
      ['POST', '/v1/tasks', { capability: 'x'.repeat(300), input: 1 }, /capability must be at most 256/],
      ['POST', '/v1/tasks', { capability: 'echo', input: 1, to: 'p'.repeat(500) }, /to must be at most/],
      ['POST', '/v1/tasks', { capability: 'echo', inputs: new Array(10_001).fill(0) }, /at most 10000 items/],
      ['POST', '/v1/tasks', { capability: 'echo', input: 1, requirements: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'v'])) }, /at most 32 entries/],
      ['POST', '/v1/ask', { query: ' ', input: 1 }, /query must be/],
      ['POST', '/v1/ask', { query: 'x'.repeat(5000), input: 1 }, /query must be/]
    ]
    for (const [method, path, body, message] of cases) {
      const res = await api(node.run, method, path, { body })
      assert.equal(res.status, 400, `${path} ${JSON.stringify(body).slice(0, 80)}: ${res.text.slice(0, 200)}`)
      assert.deepEqual(Object.keys(res.json.error).sort(), ['code', 'message'])
      assert.match(res.json.error.message, message)
    }
    for (const path of ['/v1/ask', '/v1/tasks', '/v1/capabilities']) {
      const res = await api(node.run, 'POST', path, { raw: `{"query":"echo","input":${nested(10_000)}}` })
      assert.equal(res.status, 400, `${path}: ${res.text.slice(0, 200)}`)
      assert.equal(res.json.error.code, 'too_deep')
    }
  })

  it('opens at most 64 event streams at once', async () => {
    const controllers: AbortController[] = []
    // held until the end: fetch cancels the body of a Response that is garbage collected, which
    // would close its stream on the node and free a place the test counts as taken
    const responses: Response[] = []
    try {
      const open = async (): Promise<number> => {
        const controller = new AbortController()
        controllers.push(controller)
        const res = await fetch(`${node.run.api.url}/v1/events`, { headers: { authorization: `Bearer ${node.run.api.token}` }, signal: controller.signal })
        responses.push(res)
        if (res.status !== 200) await res.text()
        return res.status
      }
      const statuses = []
      for (let i = 0; i < 64; i++) statuses.push(await open())
      assert.deepEqual(new Set(statuses), new Set([200]))
      assert.equal(await open(), 503)
      // a closed stream frees its place
      controllers[0].abort()
      assert.equal(await waitFor(async () => { const s = await open(); return s === 200 ? s : undefined }, { what: 'a free stream' }), 200)
    } finally {
      for (const c of controllers) c.abort()
      responses.length = 0
    }
  })

  it('answers /healthz only for its own Host names', async () => {
    const port = new URL(node.run.api.url).port
    assert.equal((await getWithHost(`${node.run.api.url}/healthz`, `rebound.example:${port}`)).status, 421)
    assert.equal((await getWithHost(`${node.run.api.url}/healthz`, `localhost:${port}`)).status, 200)
  })

  it('a retried submission with the same Idempotency-Key returns the first task, also after a restart', async () => {
    const submit = async (key: string, body: unknown): Promise<{ status: number, json: any, replayed: string | null }> => {
      const res = await fetch(`${node.run.api.url}/v1/tasks`, {
        method: 'POST',
        headers: { authorization: `Bearer ${node.run.api.token}`, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body)
      })
      return { status: res.status, json: await res.json(), replayed: res.headers.get('idempotent-replayed') }
    }
    const body = { capability: 'echo', input: { n: 1 } }
    const first = await submit('order-42', body)
    assert.equal(first.status, 202)
    assert.equal(first.replayed, null)
    const second = await submit('order-42', { input: { n: 1 }, capability: 'echo' })
    assert.equal(second.status, 200)
    assert.equal(second.replayed, 'true')
    assert.equal(second.json.id, first.json.id)
    const other = await submit('order-43', body)
    assert.equal(other.status, 202)
    assert.notEqual(other.json.id, first.json.id)
    const reused = await submit('order-42', { capability: 'echo', input: { n: 2 } })
    assert.equal(reused.status, 422)
    assert.equal(reused.json.error.code, 'idempotency_key_reused')
    assert.equal((await submit('bad key', body)).status, 400)

    // killed without a clean stop, then started again on the same home
    node.child.kill('SIGKILL')
    await node.stop()
    node = await startNodeProcess(home)
    const afterRestart = await submit('order-42', body)
    assert.equal(afterRestart.status, 200)
    assert.equal(afterRestart.json.id, first.json.id)
    const { json } = await api(node.run, 'GET', '/v1/tasks?limit=100')
    assert.equal(json.tasks.filter((t: any) => t.id === first.json.id).length <= 1, true)
  })
})
