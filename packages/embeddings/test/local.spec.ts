import assert from 'node:assert/strict'
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalEmbedder, MODEL_FILES, createEmbedder, listModels, missingModelFiles, pullModel, resolveModel, writeTinyModel } from '../src/index.js'
import type { AddressInfo } from 'node:net'
import type { PullProgress, TinyModel } from '../src/index.js'

const GROUPS = [['resize'], ['photo', 'picture'], ['translate'], ['text'], ['french'], ['weather']]

/** Mean of the rows of `ids`, L2-normalised: what sentence-transformers' mean pooling gives for a one-layer table model */
function expected (model: TinyModel, tokens: string[]): number[] {
  const v = new Array<number>(model.dim).fill(0)
  for (const t of tokens) {
    const row = model.vocab.indexOf(t)
    assert.ok(row >= 0, t)
    for (let i = 0; i < model.dim; i++) v[i] += model.table[row * model.dim + i] / tokens.length
  }
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0))
  return v.map(x => x / n)
}

describe('local sentence encoder (ONNX Runtime through transformers.js)', function () {
  this.timeout(60_000)
  let dir: string
  let model: TinyModel

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aistack-models-'))
    model = await writeTinyModel(dir, 'tiny-bert', GROUPS)
  })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('runs a model written by the test: WordPiece tokens, mean pooling over the mask, L2-normalised', async () => {
    const e = new LocalEmbedder({ model: 'tiny-bert', dir })
    assert.equal(e.id, 'tiny-bert')
    assert.equal(e.dim, 8)
    // different lengths in one batch: padding must not count in the mean
    const [a, b, c] = await e.embed(['Resize a PHOTO', 'translate text to french', 'weather'])
    const close = (got: Float32Array, want: number[]): void => {
      assert.equal(got.length, want.length)
      got.forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-5, `${i}: ${x} != ${want[i]}`))
    }
    close(a, expected(model, ['[CLS]', 'resize', '[UNK]', 'photo', '[SEP]']))
    close(b, expected(model, ['[CLS]', 'translate', 'text', '[UNK]', 'french', '[SEP]']))
    close(c, expected(model, ['[CLS]', 'weather', '[SEP]']))
  })

  it('gives synonyms of the model the same vector, and batches of any size in order', async () => {
    const e = new LocalEmbedder({ model: 'tiny-bert', dir, batchSize: 2 })
    const texts = ['resize a photo', 'resize a picture', 'weather', 'french text', 'translate']
    const batched = await e.embed(texts)
    const single = await Promise.all(texts.map(async t => (await e.embed([t]))[0]))
    assert.deepEqual(batched[0], batched[1])
    batched.forEach((v, i) => v.forEach((x, j) => assert.ok(Math.abs(x - single[i][j]) < 1e-6)))
  })

  it('createEmbedder finds it in the models folder; a missing model names the pull command', async () => {
    const e = createEmbedder({ type: 'local', model: 'tiny-bert' }, 'embedder', { modelsDir: dir })
    assert.ok(e instanceof LocalEmbedder)
    assert.throws(() => createEmbedder({ type: 'local' }, 'embedder', { modelsDir: dir }),
      { name: 'EmbeddingError', message: /local model all-MiniLM-L6-v2 is not in .* run `aistack models pull all-MiniLM-L6-v2`/ })
    assert.throws(() => createEmbedder({ type: 'local', model: '../etc' }, 'embedder', { modelsDir: dir }), { message: /embedder\.model must be a model name/ })
    assert.throws(() => createEmbedder({ type: 'local', path: 3 }), { message: /embedder\.path must be a non-empty string/ })
    assert.equal(createEmbedder({ type: 'local' }, 'embedder', { validateOnly: true }).id, 'local:all-MiniLM-L6-v2')
    assert.equal(createEmbedder({ type: 'offline' }, 'embedder', { validateOnly: true }).id, 'aistack-hybrid-v2')
  })

  it('a model file that is not ONNX fails on load with one message naming the model', async () => {
    const broken = await writeTinyModel(dir, 'broken', GROUPS)
    const { writeFile } = await import('node:fs/promises')
    await writeFile(join(broken.folder, 'onnx', 'model_quantized.onnx'), 'not a model')
    const e = new LocalEmbedder({ model: 'broken', dir })
    await assert.rejects(e.load(), { name: 'EmbeddingError', message: /cannot load local model broken/ })
  })
})

describe('models pull and list', function () {
  this.timeout(60_000)
  let source: string
  let server: http.Server
  let base: string
  const served: string[] = []
  let failFile: string | undefined

  before(async () => {
    source = await mkdtemp(join(tmpdir(), 'aistack-hub-'))
    await writeTinyModel(source, 'Xenova/all-MiniLM-L6-v2', GROUPS)
    // a hub: GET /<owner>/<repo>/resolve/main/<file>
    server = http.createServer((req, res) => {
      const m = /^\/(.+)\/resolve\/main\/(.+)$/.exec(req.url ?? '')
      served.push(req.url ?? '')
      if (m == null || m[2] === failFile) { res.writeHead(404).end('not found'); return }
      readFile(join(source, m[1], m[2])).then(body => {
        res.writeHead(200, { 'content-length': body.length })
        // in two writes: progress follows the body as it arrives
        res.write(body.subarray(0, body.length >> 1))
        setImmediate(() => res.end(body.subarray(body.length >> 1)))
      }, () => res.writeHead(404).end())
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => {
    server.close()
    await rm(source, { recursive: true, force: true })
  })

  it('downloads every file of a model with progress, and the result loads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistack-models-'))
    try {
      const progress: PullProgress[] = []
      const folder = await pullModel({ name: 'all-MiniLM-L6-v2', dir, from: base + '/', onProgress: p => progress.push(p) })
      assert.equal(folder, join(dir, 'all-MiniLM-L6-v2'))
      assert.deepEqual(await missingModelFiles(dir, 'all-MiniLM-L6-v2'), [])
      for (const f of MODEL_FILES) {
        assert.ok(served.includes(`/Xenova/all-MiniLM-L6-v2/resolve/main/${f}`), f)
        assert.deepEqual(await readFile(join(folder, f)), await readFile(join(source, 'Xenova/all-MiniLM-L6-v2', f)))
        const last = progress.filter(p => p.file === f).at(-1)
        assert.equal(last?.bytes, last?.total)
      }
      assert.ok(progress.length >= MODEL_FILES.length)
      const [v] = await new LocalEmbedder({ model: 'all-MiniLM-L6-v2', dir }).embed(['resize a photo'])
      assert.equal(v.length, 8)
      const listed = await listModels(dir)
      assert.deepEqual(listed.map(m => [m.name, m.missing]), [['all-MiniLM-L6-v2', []]])
      assert.ok(listed[0].bytes > 0)
      // a second pull finds everything there and fetches nothing
      const before = served.length
      await pullModel({ name: 'all-MiniLM-L6-v2', dir, from: base })
      assert.equal(served.length, before)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('a file the hub does not have fails the pull naming it and leaves no partial file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistack-models-'))
    try {
      failFile = 'onnx/model_quantized.onnx'
      await assert.rejects(pullModel({ name: 'Xenova/all-MiniLM-L6-v2', dir, from: base }), { name: 'EmbeddingError', message: /model_quantized\.onnx: HTTP 404/ })
      assert.deepEqual(await missingModelFiles(dir, 'all-MiniLM-L6-v2'), ['onnx/model_quantized.onnx'])
      assert.deepEqual(await readdir(join(dir, 'all-MiniLM-L6-v2', 'onnx')), [])
      assert.equal((await listModels(dir))[0].missing.length, 1)
      await assert.rejects(pullModel({ name: 'x', dir, from: 'http://127.0.0.1:1' }), { message: /unknown model "x"/ })
      await assert.rejects(pullModel({ name: 'all-MiniLM-L6-v2', dir, from: 'http://127.0.0.1:1' }), { name: 'EmbeddingError', message: /cannot fetch http:\/\/127\.0\.0\.1:1\// })
    } finally {
      failFile = undefined
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('resolves short names and owner/name repositories, and lists nothing for a missing folder', async () => {
    assert.deepEqual(resolveModel('all-MiniLM-L6-v2'), { name: 'all-MiniLM-L6-v2', repo: 'Xenova/all-MiniLM-L6-v2' })
    assert.deepEqual(resolveModel('someone/my-encoder'), { name: 'my-encoder', repo: 'someone/my-encoder' })
    assert.throws(() => resolveModel('../../etc/passwd'), { name: 'EmbeddingError' })
    assert.deepEqual(await listModels(join(tmpdir(), 'aistack-no-such-folder')), [])
    await assert.rejects(stat(join(tmpdir(), 'aistack-no-such-folder')))
  })
})
