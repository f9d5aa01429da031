/**
 * An embedder turns texts into fixed-size vectors. Every vector carries the
 * id of the model that produced it: vectors of different models are never
 * compared.
 */
export interface Embedder {
  /** Model id, travels with every vector (e.g. `aistack-hash-v1`) */
  readonly id: string
  /** Number of dimensions of every vector */
  readonly dim: number
  /** Embed a batch of texts, one vector per text, in order */
  embed(texts: string[], options?: { signal?: AbortSignal }): Promise<Float32Array[]>
}

/** A vector together with the id of the model that made it */
export interface ModelVector {
  model: string
  vector: Float32Array
}

/** An embedder failed, or its config or files are unusable; the message says what to do */
export class EmbeddingError extends Error {
  static override name = 'EmbeddingError'
  override name = 'EmbeddingError'
}

/** Two vectors of different models were compared */
export class ModelMismatchError extends Error {
  static override name = 'ModelMismatchError'
  override name = 'ModelMismatchError'
}

/** Dot product of two vectors of the same length */
export function dot (a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new RangeError(`vector lengths differ: ${a.length} != ${b.length}`)
  }
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i] * b[i]
  return s
}

/** Cosine similarity; 0 when either vector is zero */
export function cosine (a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new RangeError(`vector lengths differ: ${a.length} != ${b.length}`)
  }
  let s = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    s += a[i] * b[i]
    na += a[i] * a[i]
    nb += b[i] * b[i]
  }
  if (na === 0 || nb === 0) return 0
  return s / Math.sqrt(na * nb)
}

/** Cosine similarity of two model vectors; throws if the models differ */
export function compare (a: ModelVector, b: ModelVector): number {
  if (a.model !== b.model) {
    throw new ModelMismatchError(`cannot compare vectors of models ${a.model} and ${b.model}`)
  }
  return cosine(a.vector, b.vector)
}

/** Scale a vector in place to unit length (a zero vector stays zero) */
export function l2normalize (v: Float32Array): Float32Array {
  let n = 0
  for (let i = 0; i < v.length; i++) n += v[i] * v[i]
  if (n > 0) {
    const inv = 1 / Math.sqrt(n)
    for (let i = 0; i < v.length; i++) v[i] *= inv
  }
  return v
}
