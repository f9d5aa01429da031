import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { HashEmbedder, OpenAIEmbedder, cosine, compare, createEmbedder, stem, HASH_EMBEDDER_ID, HYBRID_EMBEDDER_ID } from '../src/index.js'

describe('aistack-hash-v1', () => {
  const e = new HashEmbedder()

  it('has id and 384 dimensions, unit length, deterministic', async () => {
    assert.equal(e.id, HASH_EMBEDDER_ID)
    assert.equal(e.dim, 384)
    const [a, b] = await e.embed(['Translate English text to French', 'Translate English text to French'])
    assert.equal(a.length, 384)
    assert.deepEqual(a, b)
    let n = 0
    for (const x of a) n += x * x
    assert.ok(Math.abs(n - 1) < 1e-5)
  })

  it('empty text gives the zero vector', async () => {
    const [v] = await e.embed([''])
    assert.ok(v.every(x => x === 0))
    assert.equal(cosine(v, v), 0)
  })

  it('stems inflections together', () => {
    assert.equal(stem('translates'), stem('translating'))
    assert.equal(stem('summaries'), stem('summary'))
    assert.equal(stem('images'), stem('image'))
  })

  it('puts paraphrases near and unrelated texts far', async () => {
    const [a, p, u] = await e.embed([
      'summarize long documents into short summaries',
      'make a short summary of a long document',
      'convert temperatures between celsius and fahrenheit'
    ])
    const near = cosine(a, p)
    const far = cosine(a, u)
    assert.ok(near > 0.3, `paraphrase similarity ${near}`)
    assert.ok(far < 0.15, `unrelated similarity ${far}`)
    assert.ok(near > far + 0.2)
  })

  it('refuses to compare vectors of different models', async () => {
    const [v] = await e.embed(['x'])
    assert.throws(() => compare({ model: 'a', vector: v }, { model: 'b', vector: v }), { name: 'ModelMismatchError' })
    assert.ok(Math.abs(compare({ model: 'a', vector: v }, { model: 'a', vector: v }) - 1) < 1e-6)
  })
})

describe('OpenAI-compatible embedder', () => {
  let server: http.Server
  let baseUrl: string
  const requests: Array<{ auth?: string, body: any }> = []
  let mode: 'ok' | 'wrong-dim' | 'nan' | 'error' = 'ok'

  before(async () => {
    server = http.createServer((req, res) => {
      let data = ''
      req.on('data', c => { data += c })
      req.on('end', () => {
        const body = JSON.parse(data)
        requests.push({ auth: req.headers.authorization, body })
        if (req.url !== '/v1/embeddings' || req.method !== 'POST') {
          res.writeHead(404).end()
          return
        }
        if (mode === 'error') {
          res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"boom"}')
          return
        }
        const dim = mode === 'wrong-dim' ? 3 : 4
        // answer in reverse order to check that index is honoured
        const items = (body.input as string[]).map((text, index) => ({
          object: 'embedding',
          index,
          embedding: Array.from({ length: dim }, (_, j) => mode === 'nan' ? 'x' : text.length + j)
        })).reverse()
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ object: 'list', data: items, model: body.model }))
      })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
  })

  after(async () => {
    await new Promise(resolve => server.close(resolve))
  })

  beforeEach(() => {
    requests.length = 0
    mode = 'ok'
  })

  it('posts batches to {baseUrl}/embeddings and keeps order', async () => {
    const e = new OpenAIEmbedder({ baseUrl, model: 'nomic-embed-text', dim: 4, apiKey: 'k', batchSize: 2 })
    assert.equal(e.id, 'nomic-embed-text')
    const out = await e.embed(['a', 'bb', 'ccc'])
    assert.equal(out.length, 3)
    assert.equal(requests.length, 2)
    assert.equal(requests[0].auth, 'Bearer k')
    assert.deepEqual(requests[0].body, { model: 'nomic-embed-text', input: ['a', 'bb'] })
    // [1,2,3,4] normalised for 'a'
    const n = Math.sqrt(1 + 4 + 9 + 16)
    assert.ok(Math.abs(out[0][0] - 1 / n) < 1e-6)
    const n3 = Math.sqrt(9 + 16 + 25 + 36)
    assert.ok(Math.abs(out[2][0] - 3 / n3) < 1e-6)
  })

  it('rejects wrong dimensions, non-numbers and server errors', async () => {
    const e = createEmbedder({ type: 'openai', baseUrl, model: 'm', dim: 4 })
    mode = 'wrong-dim'
    await assert.rejects(e.embed(['a']), { name: 'EmbeddingError', message: /4 numbers/ })
    mode = 'nan'
    await assert.rejects(e.embed(['a']), { name: 'EmbeddingError', message: /finite/ })
    mode = 'error'
    await assert.rejects(e.embed(['a']), { name: 'EmbeddingError', message: /500/ })
  })

  it('validates config naming the field', () => {
    assert.equal(createEmbedder(undefined).id, HYBRID_EMBEDDER_ID)
    assert.equal(createEmbedder({}).id, HYBRID_EMBEDDER_ID)
    assert.equal(createEmbedder({ type: 'offline' }).id, HYBRID_EMBEDDER_ID)
    assert.equal(createEmbedder({ type: 'hash' }).id, HASH_EMBEDDER_ID)
    assert.throws(() => createEmbedder({ type: 'openai', model: 'm', dim: 4 }), { message: /embedder\.baseUrl/ })
    assert.throws(() => createEmbedder({ type: 'openai', baseUrl, dim: 4 }), { message: /embedder\.model/ })
    assert.throws(() => createEmbedder({ type: 'openai', baseUrl, model: 'm' }), { message: /embedder\.dim/ })
    assert.throws(() => createEmbedder({ type: 'word2vec' }), { message: /embedder\.type/ })
  })
})
