import { capabilityText } from './record.js'
import type { CapabilityRecord } from './record.js'
import type { Embedder } from '@aistack/embeddings'

/**
 * Re-ranks candidates with a node's own ("ranking") embedder when it differs
 * from the network's base embedder, whose vectors travel in records: the
 * record's texts (name, description, tags, examples) are embedded with the
 * ranking model, once per record version; the vectors are kept in a bounded
 * LRU map keyed by (owner, name, seq).
 */
export class Reranker {
  readonly embedder: Embedder
  private readonly vectors = new Map<string, Float32Array>()
  private readonly maxEntries: number

  /** `maxEntries`: record vectors kept, default 10,000 */
  constructor (embedder: Embedder, maxEntries = 10_000) {
    this.embedder = embedder
    this.maxEntries = Math.max(1, maxEntries)
  }

  get size (): number {
    return this.vectors.size
  }

  /** Cosine similarity of each record to the query vector of the ranking model, in order */
  async similarities (records: CapabilityRecord[], query: Float32Array, signal?: AbortSignal): Promise<number[]> {
    const keys = records.map(r => `${r.owner}/${r.name}/${r.seq}`)
    const missing = [...new Set(keys.filter(k => !this.vectors.has(k)))]
    if (missing.length > 0) {
      const byKey = new Map(records.map((r, i) => [keys[i], r]))
      const vectors = await this.embedder.embed(missing.map(k => capabilityText(byKey.get(k) as CapabilityRecord)), { signal })
      missing.forEach((k, i) => { this.set(k, vectors[i]) })
    }
    return keys.map(k => {
      const v = this.vectors.get(k)
      if (v == null || v.length !== query.length) return 0
      // refresh the LRU position
      this.vectors.delete(k)
      this.vectors.set(k, v)
      return cosine(v, query)
    })
  }

  private set (key: string, v: Float32Array): void {
    this.vectors.delete(key)
    this.vectors.set(key, v)
    while (this.vectors.size > this.maxEntries) {
      const oldest = this.vectors.keys().next().value
      if (oldest == null) break
      this.vectors.delete(oldest)
    }
  }
}

function cosine (a: Float32Array, b: Float32Array): number {
  let s = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    s += a[i] * b[i]
    na += a[i] * a[i]
    nb += b[i] * b[i]
  }
  return na === 0 || nb === 0 ? 0 : s / Math.sqrt(na * nb)
}
