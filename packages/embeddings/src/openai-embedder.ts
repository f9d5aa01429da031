import { EmbeddingError, l2normalize } from './embedder.js'
import type { Embedder } from './embedder.js'

export interface OpenAIEmbedderOptions {
  /** Base URL of the API, e.g. `http://127.0.0.1:11434/v1`; `/embeddings` is appended */
  baseUrl: string
  /** Model name sent to the server */
  model: string
  /** Number of dimensions the model returns */
  dim: number
  /** Model id attached to the vectors, default `model` */
  id?: string
  /** Sent as `Authorization: Bearer <apiKey>` when set */
  apiKey?: string
  /** Per-request timeout, default 30 s */
  timeoutMs?: number
  /** Texts per request, default 64 */
  batchSize?: number
  /** Largest response body accepted, default 64 MiB */
  maxResponseBytes?: number
}

interface EmbeddingsResponse {
  data?: Array<{ embedding?: unknown, index?: unknown }>
}

/**
 * Client for an OpenAI-compatible embeddings endpoint (`POST {baseUrl}/embeddings`)
 * as served by OpenAI, Ollama, vLLM or the llama.cpp server.
 */
export class OpenAIEmbedder implements Embedder {
  readonly id: string
  readonly dim: number
  private readonly url: string
  private readonly options: OpenAIEmbedderOptions

  constructor (options: OpenAIEmbedderOptions) {
    if (typeof options.baseUrl !== 'string' || !/^https?:\/\//.test(options.baseUrl)) {
      throw new TypeError('baseUrl must be an http(s) URL')
    }
    if (typeof options.model !== 'string' || options.model.length === 0) {
      throw new TypeError('model must be a non-empty string')
    }
    if (!Number.isInteger(options.dim) || options.dim < 1 || options.dim > 65536) {
      throw new TypeError('dim must be an integer between 1 and 65536')
    }
    this.options = options
    this.id = options.id ?? options.model
    this.dim = options.dim
    this.url = options.baseUrl.replace(/\/+$/, '') + '/embeddings'
  }

  async embed (texts: string[], options: { signal?: AbortSignal } = {}): Promise<Float32Array[]> {
    const batchSize = this.options.batchSize ?? 64
    const out: Float32Array[] = []
    for (let i = 0; i < texts.length; i += batchSize) {
      out.push(...await this.embedBatch(texts.slice(i, i + batchSize), options.signal))
    }
    return out
  }

  private async embedBatch (texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs ?? 30_000)
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' }
    if (this.options.apiKey != null) headers.authorization = `Bearer ${this.options.apiKey}`
    let res: Response
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ model: this.options.model, input: texts }),
        signal: signal == null ? timeout : AbortSignal.any([signal, timeout])
      })
    } catch (err: any) {
      throw new EmbeddingError(`embeddings request to ${this.url} failed: ${err?.message ?? err}`)
    }
    const body = await res.text()
    if (body.length > (this.options.maxResponseBytes ?? 64 * 1024 * 1024)) {
      throw new EmbeddingError('embeddings response too large')
    }
    if (!res.ok) {
      throw new EmbeddingError(`embeddings server answered ${res.status}: ${body.slice(0, 200)}`)
    }
    let json: EmbeddingsResponse
    try {
      json = JSON.parse(body)
    } catch {
      throw new EmbeddingError('embeddings response is not JSON')
    }
    if (!Array.isArray(json?.data) || json.data.length !== texts.length) {
      throw new EmbeddingError(`embeddings response must have ${texts.length} entries in data`)
    }
    const vectors: Float32Array[] = new Array(texts.length)
    json.data.forEach((item, i) => {
      const index = typeof item?.index === 'number' ? item.index : i
      const e = item?.embedding
      if (!Number.isInteger(index) || index < 0 || index >= texts.length || vectors[index] != null) {
        throw new EmbeddingError(`embeddings response has a bad index at data[${i}]`)
      }
      if (!Array.isArray(e) || e.length !== this.dim) {
        throw new EmbeddingError(`embeddings response data[${i}].embedding must have ${this.dim} numbers`)
      }
      const v = new Float32Array(this.dim)
      for (let j = 0; j < e.length; j++) {
        const x = e[j]
        if (typeof x !== 'number' || !Number.isFinite(x)) {
          throw new EmbeddingError(`embeddings response data[${i}].embedding[${j}] is not a finite number`)
        }
        v[j] = x
      }
      vectors[index] = l2normalize(v)
    })
    return vectors
  }
}

export function openAIEmbedder (options: OpenAIEmbedderOptions): OpenAIEmbedder {
  return new OpenAIEmbedder(options)
}
