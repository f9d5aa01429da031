import assert from 'node:assert/strict'
import http from 'node:http'
import { HashEmbedder } from '@aistack/embeddings'
import { CapabilityRegistry, chunkText, validateCapabilitySpecs, parseAskBody, parseSearchParams, errorStatus } from '../src/capabilities/index.js'
import type { AddressInfo } from 'node:net'

const node = process.execPath

function script (code: string): string[] {
  return [node, '-e', code]
}

describe('capability specs', () => {
  it('refuses bad definitions with a message naming the field', () => {
    const good = { name: 'echo', description: 'Echo the input', handler: { type: 'builtin', name: 'echo' } }
    assert.equal(validateCapabilitySpecs([good]).length, 1)
    const cases: Array<[unknown, RegExp]> = [
      [[good, good], /capabilities\[1\]\.name duplicates/],
      [[good, { ...good, name: 'x', handler: { type: 'exec', command: 'ls -l' } }], /capabilities\[1\]\.handler\.command /],
      [[good, { ...good, name: 'z' }, { ...good, name: 'y', handler: { type: 'exec', command: ['ls', 3] } }], /capabilities\[2\]\.handler\.command\[1\]/],
      [[{ ...good, name: 'bad name' }], /capabilities\[0\]\.name/],
      [[{ ...good, description: '' }], /capabilities\[0\]\.description/],
      [[{ ...good, tags: 'a' }], /capabilities\[0\]\.tags/],
      [[{ ...good, handler: { type: 'shell' } }], /capabilities\[0\]\.handler\.type/],
      [[{ ...good, handler: { type: 'builtin', name: 'rm' } }], /capabilities\[0\]\.handler\.name/],
      [[{ ...good, handler: { type: 'http', url: 'ftp://x' } }], /capabilities\[0\]\.handler\.url/],
      [[{ ...good, handler: { type: 'openai', baseUrl: 'http://x' } }], /capabilities\[0\]\.handler\.model/],
      [[{ ...good, handler: { type: 'builtin', name: 'echo', timeoutMs: 0 } }], /capabilities\[0\]\.handler\.timeoutMs/],
      [[{ ...good, attributes: { cost: -1 } }], /capabilities\[0\]\.attributes\.cost/],
      [[{ ...good, attributes: { colour: 'red' } }], /capabilities\[0\]\.attributes\.colour/],
      [{ not: 'an array' }, /^capabilities must be an array/]
    ]
    for (const [spec, re] of cases) {
      assert.throws(() => validateCapabilitySpecs(spec), (err: any) => err.name === 'CapabilitySpecError' && re.test(err.message), `expected ${re}`)
    }
  })

  it('the API accepts only http and exec at run time', () => {
    const r = new CapabilityRegistry()
    assert.throws(() => r.add({ name: 'e', description: 'd', handler: { type: 'builtin', name: 'echo' } }, 'body', { allowedTypes: ['http', 'exec'] }), { name: 'CapabilitySpecError', message: /body\.handler\.type/ })
    r.add({ name: 'e', description: 'd', handler: { type: 'exec', command: [node, '-e', '1'] } }, 'body', { allowedTypes: ['http', 'exec'] })
    assert.throws(() => r.add({ name: 'e', description: 'd', handler: { type: 'exec', command: [node] } }), { name: 'DuplicateCapabilityError' })
  })

  it('API helpers validate requests and map errors', () => {
    assert.deepEqual(parseSearchParams(new URLSearchParams('q=translate&k=3')), { q: 'translate', k: 3, explain: false })
    assert.throws(() => parseSearchParams(new URLSearchParams('k=3')), { message: /^q / })
    assert.throws(() => parseSearchParams(new URLSearchParams('q=x&k=0')), { message: /^k / })
    assert.deepEqual(parseAskBody({ query: 'x', input: { a: 1 } }), { query: 'x', input: { a: 1 }, timeoutMs: undefined, minSimilarity: undefined })
    assert.throws(() => parseAskBody({ query: 'x', inptu: 1 }), { message: /^inptu is not a known field/ })
    assert.throws(() => parseAskBody({ query: 'x', minSimilarity: 2 }), { message: /^minSimilarity / })
    assert.throws(() => parseAskBody({ input: 1 }), { message: /^query / })
    assert.throws(() => parseAskBody({ query: 'x', timeoutMs: -1 }), { message: /^timeoutMs / })
    assert.equal(errorStatus({ name: 'NoCandidatesError' }).status, 404)
    assert.equal(errorStatus({ name: 'OverloadedError' }).status, 503)
  })
})

describe('builtin handlers', () => {
  const r = new CapabilityRegistry({ embedder: new HashEmbedder() })
  r.add({ name: 'echo', description: 'Echo', handler: { type: 'builtin', name: 'echo' } })
  r.add({ name: 'chunk', description: 'Chunk text', handler: { type: 'builtin', name: 'chunk' } })
  r.add({ name: 'embed', description: 'Embed text', handler: { type: 'builtin', name: 'embed' } })

  it('echo, chunk and embed', async () => {
    assert.deepEqual(await r.invoke('echo', { a: [1, 'x'] }), { a: [1, 'x'] })
    assert.deepEqual(await r.invoke('chunk', { text: 'aaa bbb ccc ddd', size: 8 }), ['aaa bbb', 'ccc ddd'])
    assert.deepEqual(chunkText('abcdefghij', 4, 1), ['abcd', 'defg', 'ghij'])
    await assert.rejects(r.invoke('chunk', 42), { name: 'HandlerInputError' })
    const e = await r.invoke('embed', ['hello world', 'bye']) as any
    assert.equal(e.model, 'aistack-hash-v1')
    assert.equal(e.vectors.length, 2)
    assert.equal(e.vectors[0].length, 384)
    await assert.rejects(r.invoke('nope', 1), { name: 'UnknownCapabilityError' })
  })

  it('lists capabilities with concurrency as an attribute and fires change events', () => {
    const list = r.list()
    assert.deepEqual(list.map(c => c.name), ['echo', 'chunk', 'embed'])
    assert.equal(list[0].attributes?.maxConcurrency, 4)
    let changes = 0
    const off = r.onChange(() => { changes++ })
    r.serve('tmp', { description: 'temporary' }, async () => 1)
    assert.equal(r.remove('tmp'), true)
    assert.equal(r.remove('tmp'), false)
    off()
    assert.equal(changes, 2)
  })
})

describe('TypeScript functions: serve()', () => {
  it('enforces concurrency, timeout, input and output limits', async () => {
    const r = new CapabilityRegistry()
    const gate = Promise.withResolvers<void>()
    r.serve('slow', { description: 'waits', concurrency: 1, timeoutMs: 2000 }, async () => { await gate.promise; return 'done' })
    r.serve('hang', { description: 'never answers', timeoutMs: 50 }, async () => new Promise(() => {}))
    r.serve('big', { description: 'big output', maxOutputBytes: 10 }, async () => 'x'.repeat(100))
    r.serve('small', { description: 'small input', maxInputBytes: 10 }, async (x) => x)
    const first = r.invoke('slow', null)
    await assert.rejects(r.invoke('slow', null), { name: 'OverloadedError' })
    gate.resolve()
    assert.equal(await first, 'done')
    assert.equal(await r.invoke('slow', null), 'done', 'slot is released')
    await assert.rejects(r.invoke('hang', null), { name: 'HandlerTimeoutError' })
    await assert.rejects(r.invoke('big', null), { name: 'OutputTooLargeError' })
    await assert.rejects(r.invoke('small', 'x'.repeat(20)), { name: 'InputTooLargeError' })
    assert.equal(await r.invoke('small', 'ok'), 'ok')
    await assert.rejects(r.invoke('small', 'ok', { signal: AbortSignal.abort(new Error('gone')) }), { message: 'gone' })
  })
})

describe('exec handler', () => {
  it('gets a string input as is on stdin, other values as JSON; stdout is the output', async () => {
    const r = new CapabilityRegistry()
    r.add({ name: 'upper', description: 'upper-case', handler: { type: 'exec', command: script('let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(s.toUpperCase()))') } })
    assert.equal(await r.invoke('upper', 'hello'), 'HELLO')
    assert.equal(await r.invoke('upper', { a: 'b' }), '{"A":"B"}')
  })

  it('runs without a shell and with a scrubbed environment', async () => {
    process.env.AISTACK_TEST_SECRET = 'secret'
    try {
      const r = new CapabilityRegistry()
      r.add({ name: 'env', description: 'env', handler: { type: 'exec', command: script('process.stdout.write(JSON.stringify(process.env))'), env: { EXTRA: '1' } } })
      r.add({ name: 'argv', description: 'argv', handler: { type: 'exec', command: [...script('process.stdout.write(process.argv[1])'), '$(echo hi); `x`'] } })
      const env = JSON.parse(await r.invoke('env', '') as string)
      assert.equal(env.AISTACK_TEST_SECRET, undefined)
      assert.equal(env.EXTRA, '1')
      assert.equal(await r.invoke('argv', ''), '$(echo hi); `x`')
    } finally {
      delete process.env.AISTACK_TEST_SECRET
    }
  })

  it('is killed at its timeout, fails on a non-zero exit and on too much output', async () => {
    const r = new CapabilityRegistry()
    r.add({ name: 'sleep', description: 'sleeps', handler: { type: 'exec', command: script('setTimeout(()=>{}, 60000)'), timeoutMs: 300 } })
    r.add({ name: 'fail', description: 'fails', handler: { type: 'exec', command: script('process.stderr.write("boom");process.exit(3)') } })
    r.add({ name: 'flood', description: 'floods', handler: { type: 'exec', command: script('process.stdout.write("x".repeat(100000))'), maxOutputBytes: 1000 } })
    r.add({ name: 'missing', description: 'missing', handler: { type: 'exec', command: ['/nonexistent/command'] } })
    const t0 = Date.now()
    await assert.rejects(r.invoke('sleep', ''), { name: 'HandlerTimeoutError' })
    assert.ok(Date.now() - t0 < 5000)
    await assert.rejects(r.invoke('fail', ''), { name: 'HandlerError', message: /exited with 3: boom/ })
    await assert.rejects(r.invoke('flood', ''), { name: 'OutputTooLargeError' })
    await assert.rejects(r.invoke('missing', ''), { name: 'HandlerError', message: /cannot run/ })
  })
})

describe('http and openai handlers', () => {
  let server: http.Server
  let base: string
  const seen: any[] = []

  before(async () => {
    server = http.createServer((req, res) => {
      let body = ''
      req.on('data', c => { body += c })
      req.on('end', () => {
        const json = body.length > 0 ? JSON.parse(body) : null
        seen.push({ url: req.url, headers: req.headers, json })
        if (req.url === '/agent') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ got: json }))
        } else if (req.url === '/text') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('plain answer')
        } else if (req.url === '/slow') {
          setTimeout(() => res.writeHead(200).end('late'), 2000)
        } else if (req.url === '/big') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('y'.repeat(10_000))
        } else if (req.url === '/v1/embeddings') {
          // an OpenAI-compatible embeddings endpoint: [length, first char code] per text, listed in reverse order
          const data = json.input.map((t: string, index: number) => ({ object: 'embedding', index, embedding: [t.length, t.charCodeAt(0)] })).reverse()
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', model: json.model, data }))
        } else if (req.url === '/v1/chat/completions') {
          const last = json.messages[json.messages.length - 1].content
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
            id: 'c1', object: 'chat.completion', model: json.model, choices: [{ index: 0, message: { role: 'assistant', content: `${json.model} says: ${last}` }, finish_reason: 'stop' }]
          }))
        } else {
          res.writeHead(500).end('no')
        }
      })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  after(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })

  it('http POSTs {capability, input} and returns JSON or text', async () => {
    const r = new CapabilityRegistry()
    r.add({ name: 'agent', description: 'agent', handler: { type: 'http', url: `${base}/agent`, headers: { 'x-key': 'k' } } })
    r.add({ name: 'text', description: 'text', handler: { type: 'http', url: `${base}/text` } })
    r.add({ name: 'slow', description: 'slow', handler: { type: 'http', url: `${base}/slow`, timeoutMs: 100 } })
    r.add({ name: 'big', description: 'big', handler: { type: 'http', url: `${base}/big`, maxOutputBytes: 1000 } })
    r.add({ name: 'broken', description: 'broken', handler: { type: 'http', url: `${base}/nope` } })
    assert.deepEqual(await r.invoke('agent', { q: 1 }), { got: { capability: 'agent', input: { q: 1 } } })
    assert.equal(seen.at(-1).headers['x-key'], 'k')
    assert.equal(await r.invoke('text', 'x'), 'plain answer')
    await assert.rejects(r.invoke('slow', 'x'), { name: 'HandlerTimeoutError' })
    await assert.rejects(r.invoke('big', 'x'), { name: 'OutputTooLargeError' })
    await assert.rejects(r.invoke('broken', 'x'), { name: 'HandlerError', message: /500/ })
    // nothing listening: the error names the cause, not only "fetch failed"
    const closed = http.createServer()
    await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise(resolve => closed.close(resolve))
    r.add({ name: 'down', description: 'down', handler: { type: 'http', url: `http://127.0.0.1:${port}/agent` } })
    await assert.rejects(r.invoke('down', 'x'), { name: 'HandlerError', message: new RegExp(`failed: fetch failed \\(ECONNREFUSED 127\\.0\\.0\\.1:${port}\\)`) })
  })

  it('openai calls chat completions with the model, system prompt and key', async () => {
    const r = new CapabilityRegistry()
    r.add({ name: 'chat', description: 'chat', handler: { type: 'openai', baseUrl: `${base}/v1`, model: 'llama3', system: 'be brief', apiKey: 'sk', maxTokens: 5, temperature: 0 } })
    assert.equal(await r.invoke('chat', 'hello'), 'llama3 says: hello')
    const req = seen.at(-1)
    assert.equal(req.headers.authorization, 'Bearer sk')
    assert.deepEqual(req.json, { model: 'llama3', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }], max_tokens: 5, temperature: 0 })
    assert.equal(await r.invoke('chat', { a: 1 }), 'llama3 says: {"a":1}')
  })

  it('openai on its embeddings endpoint embeds a string or an array, and a batch of inputs in one upstream call', async () => {
    const r = new CapabilityRegistry()
    r.add({ name: 'vec', description: 'vectors', handler: { type: 'openai', endpoint: 'embeddings', baseUrl: `${base}/v1`, model: 'emb-small', apiKey: 'sk' } })
    assert.ok(r.takesBatches('vec'))
    assert.deepEqual(await r.invoke('vec', 'hello'), { model: 'emb-small', dim: 2, vectors: [[5, 104]] })
    assert.equal(seen.at(-1).headers.authorization, 'Bearer sk')
    assert.deepEqual(seen.at(-1).json, { model: 'emb-small', input: ['hello'] })
    assert.deepEqual(await r.invoke('vec', ['ab', 'xyz']), { model: 'emb-small', dim: 2, vectors: [[2, 97], [3, 120]] })
    await assert.rejects(r.invoke('vec', { texts: 1 }), { name: 'HandlerInputError' })
    const calls = seen.filter(s => s.url === '/v1/embeddings').length
    const results = await r.invokeBatch('vec', ['a', ['bb', 'ccc'], 42, 'dddd'])
    assert.equal(seen.filter(s => s.url === '/v1/embeddings').length, calls + 1, 'one upstream call for the batch')
    assert.deepEqual(seen.at(-1).json, { model: 'emb-small', input: ['a', 'bb', 'ccc', 'dddd'] })
    assert.deepEqual(results[0], { output: { model: 'emb-small', dim: 2, vectors: [[1, 97]] } })
    assert.deepEqual(results[1], { output: { model: 'emb-small', dim: 2, vectors: [[2, 98], [3, 99]] } })
    assert.ok('error' in results[2] && results[2].error.name === 'HandlerInputError', 'a bad input fails alone')
    assert.deepEqual(results[3], { output: { model: 'emb-small', dim: 2, vectors: [[4, 100]] } })
    assert.throws(() => r.add({ name: 'bad', description: 'bad', handler: { type: 'openai', endpoint: 'images', baseUrl: base, model: 'm' } as any }), /handler\.endpoint/)
  })
})
