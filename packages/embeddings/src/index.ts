import { EmbeddingError } from './embedder.js'
import { HashEmbedder } from './hash-embedder.js'
import { HybridEmbedder, HYBRID_EMBEDDER_ID } from './hybrid-embedder.js'
import { LocalEmbedder } from './local-embedder.js'
import { DEFAULT_LOCAL_MODEL, isModelName } from './model-files.js'
import { OpenAIEmbedder } from './openai-embedder.js'
import type { Embedder } from './embedder.js'

export * from './embedder.js'
export * from './hash-embedder.js'
export * from './openai-embedder.js'
export * from './hybrid-embedder.js'
export * from './word-vectors.js'
export * from './local-embedder.js'
export * from './model-files.js'
export * from './tiny-model.js'

/** The `embedder` section of a node's config.json */
export type EmbedderConfig =
  | { type: 'hash' }
  | { type: 'offline' }
  | { type: 'local', model?: string, path?: string }
  | { type: 'openai', baseUrl: string, model: string, dim: number, apiKey?: string, timeoutMs?: number, batchSize?: number, id?: string }

/** The embedder types `createEmbedder` accepts */
export const EMBEDDER_TYPES = ['offline', 'hash', 'local', 'openai'] as const

/** Where `createEmbedder` finds files */
export interface CreateEmbedderOptions {
  /** Folder of local models when the config gives no `path` (a node passes `<home>/models`) */
  modelsDir?: string
  /** Only check the config, do not look for model files (config validation) */
  validateOnly?: boolean
}

/**
 * Build an embedder from config (default `{ type: 'offline' }`, the
 * `aistack-hybrid-v2` embedder); errors name the offending field (prefixed
 * by `path`, default `embedder`).
 *
 * @throws EmbeddingError on a bad field, or (type `local`) when the model is
 * not on disk, with the command that fetches it
 */
export function createEmbedder (config: unknown = { type: 'offline' }, path = 'embedder', options: CreateEmbedderOptions = {}): Embedder {
  if (config == null) return new HybridEmbedder()
  if (typeof config !== 'object' || Array.isArray(config)) {
    throw new EmbeddingError(`${path} must be an object`)
  }
  const c = config as Record<string, unknown>
  const type = c.type ?? 'offline'
  if (type === 'offline' || type === 'hash') {
    const extra = Object.keys(c).find(k => k !== 'type' && !k.startsWith('$'))
    if (extra != null) throw new EmbeddingError(`${path}.${extra} is not a field of embedder type "${type}"`)
    if (type === 'hash') return new HashEmbedder()
    return options.validateOnly === true ? placeholder(HYBRID_EMBEDDER_ID) : new HybridEmbedder()
  }
  if (type === 'local') {
    for (const f of ['model', 'path'] as const) {
      if (c[f] != null && (typeof c[f] !== 'string' || c[f].length === 0 || c[f].length > 4096)) throw new EmbeddingError(`${path}.${f} must be a non-empty string`)
    }
    const model = (c.model as string | undefined) ?? DEFAULT_LOCAL_MODEL
    if (!isModelName(model)) throw new EmbeddingError(`${path}.model must be a model name of letters, digits and . _ - (e.g. ${DEFAULT_LOCAL_MODEL})`)
    const dir = (c.path as string | undefined) ?? options.modelsDir
    if (options.validateOnly === true) return placeholder(`local:${model}`)
    if (dir == null) throw new EmbeddingError(`${path}.path must name the models folder`)
    return new LocalEmbedder({ model, dir })
  }
  if (type !== 'openai') throw new EmbeddingError(`${path}.type must be one of ${EMBEDDER_TYPES.join(', ')}`)
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

/** An embedder that only carries an id: what config validation returns instead of loading files */
function placeholder (id: string): Embedder {
  return {
    id,
    dim: 1,
    async embed () { throw new EmbeddingError('this embedder only validated a config') }
  }
}
