import { EmbeddingError } from './embedder.js'
import { HashEmbedder } from './hash-embedder.js'
import { OpenAIEmbedder } from './openai-embedder.js'
import type { Embedder } from './embedder.js'

export * from './embedder.js'
export * from './hash-embedder.js'
export * from './openai-embedder.js'

/** The `embedder` section of a node's config.json */
export type EmbedderConfig =
  | { type: 'hash' }
  | { type: 'openai', baseUrl: string, model: string, dim: number, apiKey?: string, timeoutMs?: number, batchSize?: number, id?: string }

/**
 * Build an embedder from config; errors name the offending field
 * (prefixed by `path`, default `embedder`).
 */
export function createEmbedder (config: unknown = { type: 'hash' }, path = 'embedder'): Embedder {
  if (config == null) return new HashEmbedder()
  if (typeof config !== 'object' || Array.isArray(config)) {
    throw new EmbeddingError(`${path} must be an object`)
  }
  const c = config as Record<string, unknown>
  const type = c.type ?? 'hash'
  if (type === 'hash') return new HashEmbedder()
  if (type !== 'openai') throw new EmbeddingError(`${path}.type must be "hash" or "openai"`)
  if (typeof c.baseUrl !== 'string' || !/^https?:\/\//.test(c.baseUrl)) throw new EmbeddingError(`${path}.baseUrl must be an http(s) URL`)
  if (typeof c.model !== 'string' || c.model.length === 0) throw new EmbeddingError(`${path}.model must be a non-empty string`)
  if (!Number.isInteger(c.dim) || (c.dim as number) < 1 || (c.dim as number) > 65536) throw new EmbeddingError(`${path}.dim must be an integer between 1 and 65536`)
  if (c.apiKey != null && typeof c.apiKey !== 'string') throw new EmbeddingError(`${path}.apiKey must be a string`)
  if (c.id != null && (typeof c.id !== 'string' || c.id.length === 0 || c.id.length > 128)) throw new EmbeddingError(`${path}.id must be a string of 1-128 characters`)
  for (const f of ['timeoutMs', 'batchSize'] as const) {
    if (c[f] != null && (!Number.isInteger(c[f]) || (c[f] as number) < 1)) throw new EmbeddingError(`${path}.${f} must be a positive integer`)
  }
  return new OpenAIEmbedder(c as unknown as EmbedderConfig & { type: 'openai' })
}

export type { Embedder }
