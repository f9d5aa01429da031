import { l2normalize } from './embedder.js'
import { HashEmbedder, STOPWORDS, tokenize } from './hash-embedder.js'
import { loadWordVectors } from './word-vectors.js'
import type { Embedder } from './embedder.js'
import type { WordVectors } from './word-vectors.js'

/** Model id of the offline default embedder */
export const HYBRID_EMBEDDER_ID = 'aistack-hybrid-v2'

/** Tuning of {@link HybridEmbedder}; any change gives a different model id */
export interface HybridEmbedderOptions {
  /** Share of the hashed word features in the cosine, default 0.4 (0-1; the word vectors have the rest) */
  hashShare?: number
  /** SIF smoothing: a word of frequency rank r weighs r / (r + smoothing), default 300 */
  smoothing?: number
  /** The word-vector table, default the one that ships with this package */
  wordVectors?: WordVectors
}

/**
 * `aistack-hybrid-v2`, the offline default: the hashed word and character
 * features of `aistack-hash-v1` (exact words, stems, spelling) side by side
 * with a smooth-inverse-frequency weighted mean of pre-trained GloVe word
 * vectors with the common direction removed (related words: "picture" near
 * "photo", "bill" near "invoice"; after Arora, Liang, Ma 2017, "A Simple but
 * Tough-to-Beat Baseline for Sentence Embeddings"). Each part is L2-normalised and scaled by the square
 * root of its share, so the cosine of two vectors is the share-weighted sum
 * of the two parts' cosines. 484 dimensions (384 hashed + 100 GloVe).
 * Deterministic and offline; the table (8.6 MB) loads once per process.
 */
export class HybridEmbedder implements Embedder {
  readonly id: string
  readonly dim: number
  private readonly hash = new HashEmbedder()
  private readonly table: WordVectors
  private readonly hashScale: number
  private readonly vectorScale: number
  private readonly smoothing: number
  private readonly common: Float32Array

  /** @throws EmbeddingError when the word-vector table cannot be read; RangeError on bad options */
  constructor (options: HybridEmbedderOptions = {}) {
    const share = options.hashShare ?? 0.4
    this.smoothing = options.smoothing ?? 300
    if (!(share >= 0 && share <= 1)) throw new RangeError('hashShare must be between 0 and 1')
    if (!(this.smoothing >= 0)) throw new RangeError('smoothing must be >= 0')
    this.table = options.wordVectors ?? loadWordVectors()
    this.hashScale = Math.sqrt(share)
    this.vectorScale = Math.sqrt(1 - share)
    this.dim = this.hash.dim + this.table.dim
    // the weighted mean of the 10,000 most frequent words: a cheap stand-in for SIF's first principal component
    this.common = new Float32Array(this.table.dim)
    for (let r = 0; r < Math.min(this.table.size, 10_000); r++) this.table.addTo(this.common, r, r / (r + this.smoothing))
    l2normalize(this.common)
    const custom = options.hashShare != null || options.smoothing != null || options.wordVectors != null
    this.id = custom ? `${HYBRID_EMBEDDER_ID}-custom-${share}-${this.smoothing}-${this.table.size}` : HYBRID_EMBEDDER_ID
  }

  /** Embed one text synchronously; a text with no known word gets only hashed features */
  embedOne (text: string): Float32Array {
    const out = new Float32Array(this.dim)
    const h = this.hash.embedOne(text)
    for (let i = 0; i < h.length; i++) out[i] = h[i] * this.hashScale
    const g = new Float32Array(this.table.dim)
    let found = false
    for (const word of tokenize(text)) {
      if (STOPWORDS.has(word)) continue
      const rank = this.lookup(word)
      if (rank < 0) continue
      this.table.addTo(g, rank, rank / (rank + this.smoothing))
      found = true
    }
    if (found) {
      // remove the direction every text shares (SIF's common component)
      let d = 0
      for (let i = 0; i < g.length; i++) d += g[i] * this.common[i]
      for (let i = 0; i < g.length; i++) g[i] -= d * this.common[i]
      l2normalize(g)
      for (let i = 0; i < g.length; i++) out[h.length + i] = g[i] * this.vectorScale
    }
    return l2normalize(out)
  }

  /** {@inheritDoc Embedder.embed} */
  async embed (texts: string[]): Promise<Float32Array[]> {
    return texts.map(t => this.embedOne(t))
  }

  /** Rank of a word in the table, trying a plural or verb ending removed; -1 when absent */
  private lookup (word: string): number {
    let r = this.table.rank(word)
    if (r >= 0) return r
    for (const [suffix, repl] of [['ies', 'y'], ['es', ''], ['s', ''], ['ing', ''], ['ing', 'e'], ['ed', ''], ['ed', 'e']]) {
      if (word.length > suffix.length + 2 && word.endsWith(suffix)) {
        r = this.table.rank(word.slice(0, -suffix.length) + repl)
        if (r >= 0) return r
      }
    }
    return -1
  }
}

/** Factory for {@link HybridEmbedder} */
export function hybridEmbedder (options?: HybridEmbedderOptions): HybridEmbedder {
  return new HybridEmbedder(options)
}
