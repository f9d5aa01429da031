import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { HashEmbedder, HybridEmbedder, WordVectors, cosine, createEmbedder, loadWordVectors, HYBRID_EMBEDDER_ID, HASH_EMBEDDER_ID } from '../src/index.js'
import type { Embedder } from '../src/index.js'

interface Paraphrases {
  capabilities: Array<{ name: string, description: string, queries: Record<'light' | 'moderate' | 'hard', string> }>
}

// written for these tests only; the embedder was tuned on the benchmark's own set (scripts/bench/data)
const HELD_OUT: Paraphrases = JSON.parse(readFileSync(new URL('../../test/fixtures/heldout-paraphrases.json', import.meta.url), 'utf8'))
const DIFFICULTIES = ['light', 'moderate', 'hard'] as const

/** Share of queries whose own capability ranks first, per difficulty and overall */
async function top1 (e: Embedder, set: Paraphrases): Promise<Record<string, number>> {
  const caps = set.capabilities
  const descs = await e.embed(caps.map(c => c.description))
  const out: Record<string, number> = {}
  let all = 0
  for (const d of DIFFICULTIES) {
    const queries = await e.embed(caps.map(c => c.queries[d]))
    const hits = queries.filter((q, i) => descs.every((v, j) => j === i || cosine(q, v) < cosine(q, descs[i]))).length
    out[d] = hits / caps.length
    all += hits
  }
  out.all = all / (caps.length * DIFFICULTIES.length)
  return out
}

describe('aistack-hybrid-v2 (the offline default)', () => {
  const e = new HybridEmbedder()

  it('has its id and 484 dimensions, unit length, deterministic across instances', async () => {
    assert.equal(e.id, HYBRID_EMBEDDER_ID)
    assert.equal(e.dim, 484)
    const [a] = await e.embed(['Translate English text to French'])
    const [b] = await new HybridEmbedder().embed(['Translate English text to French'])
    assert.deepEqual(a, b)
    assert.ok(Math.abs(a.reduce((s, x) => s + x * x, 0) - 1) < 1e-5)
  })

  it('is the default of createEmbedder; aistack-hash-v1 stays available as type "hash"', () => {
    assert.equal(createEmbedder().id, HYBRID_EMBEDDER_ID)
    assert.equal(createEmbedder({ type: 'hash' }).id, HASH_EMBEDDER_ID)
    assert.throws(() => createEmbedder({ type: 'offline', model: 'x' }), { message: /embedder\.model is not a field of embedder type "offline"/ })
  })

  it('relates words that share no stem: photo/picture, doctor/physician', async () => {
    const [photo, picture, weather] = await e.embed(['resize a photo', 'resize a picture', 'weather forecast'])
    assert.ok(cosine(photo, picture) > cosine(photo, weather) + 0.3)
    const hash = new HashEmbedder()
    for (const [a, b] of [['photo', 'picture'], ['doctor', 'physician']]) {
      const [ha, hb] = await hash.embed([a, b])
      const [va, vb] = await e.embed([a, b])
      assert.ok(cosine(va, vb) > cosine(ha, hb) + 0.2, `${a}/${b}: hybrid ${cosine(va, vb)} vs hash ${cosine(ha, hb)}`)
    }
  })

  it('ranks the intended capability first for at least 65% of a held-out paraphrase set, above aistack-hash-v1', async () => {
    const hybrid = await top1(e, HELD_OUT)
    const hash = await top1(new HashEmbedder(), HELD_OUT)
    assert.equal(HELD_OUT.capabilities.length * 3, 72)
    assert.ok(hybrid.all >= 0.65, `hybrid top-1 ${JSON.stringify(hybrid)}`)
    assert.ok(hybrid.all > hash.all, `hybrid ${hybrid.all} vs hash ${hash.all}`)
    assert.ok(hybrid.hard > hash.hard, `hard: hybrid ${hybrid.hard} vs hash ${hash.hard}`)
    assert.equal(hybrid.light, 1)
  })

  it('a text with no known word still gets a unit vector from its hashed features', async () => {
    const [v] = await e.embed(['zqxjv kwyzz'])
    assert.ok(Math.abs(v.reduce((s, x) => s + x * x, 0) - 1) < 1e-5)
    assert.ok(v.slice(384).every(x => x === 0))
  })
})

describe('word-vector table', () => {
  it('loads the shipped table once and answers ranks', () => {
    const t = loadWordVectors()
    assert.equal(t, loadWordVectors())
    assert.equal(t.dim, 100)
    assert.equal(t.size, 80_000)
    assert.equal(t.rank('the'), 0)
    assert.ok(t.rank('invoice') > 0)
    assert.equal(t.rank('zqxjv'), -1)
  })

  it('refuses bytes that are not a table, or a truncated one', () => {
    assert.throws(() => new WordVectors(new TextEncoder().encode('not a table at all')), { name: 'EmbeddingError', message: /AIWV/ })
    const bytes = readFileSync(new URL('../../data/glove-100d.bin', import.meta.url))
    assert.throws(() => new WordVectors(bytes.subarray(0, bytes.length - 1)), { name: 'EmbeddingError', message: /truncated/ })
    assert.throws(() => loadWordVectors('/nonexistent/table.bin'), { name: 'EmbeddingError', message: /cannot read/ })
  })
})
