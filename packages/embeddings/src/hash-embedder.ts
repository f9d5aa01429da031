import { l2normalize } from './embedder.js'
import type { Embedder } from './embedder.js'

/** Model id of the hashing embedder */
export const HASH_EMBEDDER_ID = 'aistack-hash-v1'
/** Its default number of dimensions */
export const HASH_EMBEDDER_DIM = 384

/**
 * Common English function words; they carry little meaning and would make
 * unrelated texts look alike.
 */
export const STOPWORDS: ReadonlySet<string> = new Set(('a about above after again all also am an and any are as at be because been before being ' +
  'below between both but by can could did do does doing down during each few for from further had has have having ' +
  'he her here hers herself him himself his how i if in into is it its itself just let me more most my myself no nor ' +
  'not now of off on once only or other our ours ourselves out over own please same she should so some such than ' +
  'that the their theirs them themselves then there these they this those through to too under until up very was ' +
  'we were what when where which while who whom why will with would you your yours yourself yourselves ' +
  'thing things something someone using use via want need get make').split(' '))

const SUFFIXES = [
  'izations', 'ization', 'isations', 'isation', 'ational', 'ations', 'ation', 'ments', 'ment', 'ness', 'ities', 'ity',
  'ings', 'ing', 'ions', 'ion', 'ers', 'er', 'ors', 'or', 'ies', 'ied', 'ed', 'es', 'ly', 'ive', 'able', 'al', 's'
]

/** A small suffix-stripping stemmer: good enough to join inflections of one word */
export function stem (word: string): string {
  let w = word
  if (w.length > 4) {
    for (const suffix of SUFFIXES) {
      if (w.endsWith(suffix) && w.length - suffix.length >= 3) {
        w = w.slice(0, w.length - suffix.length)
        if (suffix === 'ies' || suffix === 'ied' || suffix === 'ities' || suffix === 'ity') w += 'i'
        break
      }
    }
  }
  if (w.length > 3 && w.endsWith('e')) w = w.slice(0, -1)
  if (w.length > 3 && w.endsWith('y')) w = w.slice(0, -1) + 'i'
  const n = w.length
  if (n > 3 && w[n - 1] === w[n - 2] && !'aeiouls'.includes(w[n - 1])) w = w.slice(0, -1)
  return w
}

/** Lower-case, strip diacritics, split into words of letters and digits */
export function tokenize (text: string): string[] {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter(t => t.length > 0)
}

/** 32-bit FNV-1a over UTF-16 code units followed by the murmur3 finaliser */
export function hash32 (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Tuning of {@link HashEmbedder}; any change gives a different model id */
export interface HashEmbedderOptions {
  /** Number of dimensions, default 384 */
  dim?: number
  /** Weight of a word unigram, default 1 */
  unigramWeight?: number
  /** Weight of a word bigram, default 0.6 */
  bigramWeight?: number
  /** Weight of a character trigram, default 0.3 */
  trigramWeight?: number
}

/**
 * `aistack-hash-v1`: an offline, deterministic feature-hashing embedder.
 *
 * Features are stemmed word unigrams, stemmed word bigrams and character
 * trigrams of each word (with word boundary marks), stop words removed. Each
 * feature is hashed to one of `dim` buckets with a hashed sign; term counts are
 * weighted sub-linearly (1 + ln tf) and the vector is L2-normalised. Texts that
 * share words or stems land near each other.
 */
export class HashEmbedder implements Embedder {
  readonly id: string
  readonly dim: number
  private readonly weights: { u: number, b: number, t: number }

  constructor (options: HashEmbedderOptions = {}) {
    this.dim = options.dim ?? HASH_EMBEDDER_DIM
    if (!Number.isInteger(this.dim) || this.dim < 8 || this.dim > 65536) {
      throw new RangeError('dim must be an integer between 8 and 65536')
    }
    this.weights = {
      u: options.unigramWeight ?? 1,
      b: options.bigramWeight ?? 0.6,
      t: options.trigramWeight ?? 0.3
    }
    const custom = options.dim != null || options.unigramWeight != null || options.bigramWeight != null || options.trigramWeight != null
    this.id = custom ? `${HASH_EMBEDDER_ID}-custom-${this.dim}-${this.weights.u}-${this.weights.b}-${this.weights.t}` : HASH_EMBEDDER_ID
  }

  /** Embed one text synchronously */
  embedOne (text: string): Float32Array {
    const counts = new Map<string, number>()
    const add = (feature: string): void => { counts.set(feature, (counts.get(feature) ?? 0) + 1) }
    const words = tokenize(text).filter(w => !STOPWORDS.has(w))
    let prev: string | undefined
    for (const word of words) {
      const s = stem(word)
      add('u:' + s)
      if (prev != null) add('b:' + prev + ' ' + s)
      prev = s
      const padded = '<' + word + '>'
      for (let i = 0; i + 3 <= padded.length; i++) add('t:' + padded.slice(i, i + 3))
    }
    const v = new Float32Array(this.dim)
    for (const [feature, count] of counts) {
      const kind = feature.charCodeAt(0)
      const w = kind === 117 ? this.weights.u : kind === 98 ? this.weights.b : this.weights.t
      const h = hash32(feature)
      const index = (h >>> 1) % this.dim
      const sign = (h & 1) === 0 ? 1 : -1
      v[index] += sign * w * (1 + Math.log(count))
    }
    return l2normalize(v)
  }

  /** {@inheritDoc Embedder.embed} */
  async embed (texts: string[]): Promise<Float32Array[]> {
    return texts.map(t => this.embedOne(t))
  }
}

/** Factory for {@link HashEmbedder} */
export function hashEmbedder (options?: HashEmbedderOptions): HashEmbedder {
  return new HashEmbedder(options)
}
