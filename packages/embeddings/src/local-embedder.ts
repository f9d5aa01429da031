import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { EmbeddingError, l2normalize } from './embedder.js'
import { MODEL_FILES } from './model-files.js'
import type { Embedder } from './embedder.js'

/** Options of {@link LocalEmbedder} */
export interface LocalEmbedderOptions {
  /** Model folder name under `dir`, e.g. `all-MiniLM-L6-v2` */
  model: string
  /** Models folder (a node's `<home>/models` unless configured) */
  dir: string
  /** Texts per forward pass, default 32 */
  batchSize?: number
}

/** The transformers.js feature-extraction pipeline, as far as it is used here */
type Extractor = (texts: string[], options: { pooling: 'mean', normalize: boolean }) => Promise<{ data: Float32Array, dims: number[] }>

/**
 * A sentence-transformers model run in-process: ONNX Runtime (onnxruntime-node,
 * CPU) through @huggingface/transformers, from files on disk only (remote
 * models are disabled: nothing is downloaded at run time; `aistack models
 * pull` fetches them). Token embeddings are mean-pooled over the attention
 * mask and L2-normalised, as sentence-transformers does for its MiniLM models.
 *
 * The constructor checks that the files are there and reads the dimension
 * from `config.json` (`hidden_size`); the ONNX session starts on the first
 * `embed`. The model id attached to the vectors is the folder name.
 */
export class LocalEmbedder implements Embedder {
  readonly id: string
  readonly dim: number
  /** The model's folder */
  readonly folder: string
  private readonly options: LocalEmbedderOptions
  private extractor?: Promise<Extractor>

  /** @throws EmbeddingError when a model file is missing (naming the pull command) or config.json is unusable */
  constructor (options: LocalEmbedderOptions) {
    this.options = options
    this.folder = join(options.dir, options.model)
    const missing = MODEL_FILES.filter(f => !existsSync(join(this.folder, f)))
    if (missing.length > 0) {
      throw new EmbeddingError(`local model ${options.model} is not in ${options.dir} (missing ${missing.join(', ')}): run \`aistack models pull ${options.model}\``)
    }
    let config: any
    try {
      config = JSON.parse(readFileSync(join(this.folder, 'config.json'), 'utf8'))
    } catch (err: any) {
      throw new EmbeddingError(`cannot read ${join(this.folder, 'config.json')}: ${err.message}`)
    }
    const dim = config?.hidden_size
    if (!Number.isInteger(dim) || dim < 1 || dim > 65536) throw new EmbeddingError(`${join(this.folder, 'config.json')} has no hidden_size between 1 and 65536`)
    this.dim = dim
    this.id = options.model
  }

  /** Start the ONNX session now instead of on the first `embed` (resolves when it is ready) */
  async load (): Promise<void> {
    await this.session()
  }

  /** {@inheritDoc Embedder.embed} */
  async embed (texts: string[], options: { signal?: AbortSignal } = {}): Promise<Float32Array[]> {
    const extract = await this.session()
    const batch = this.options.batchSize ?? 32
    const out: Float32Array[] = []
    for (let i = 0; i < texts.length; i += batch) {
      options.signal?.throwIfAborted()
      const part = texts.slice(i, i + batch)
      const result = await extract(part, { pooling: 'mean', normalize: true })
      if (result.dims.length !== 2 || result.dims[0] !== part.length || result.dims[1] !== this.dim) {
        throw new EmbeddingError(`local model ${this.id} returned shape [${result.dims.join(', ')}], expected [${part.length}, ${this.dim}]`)
      }
      for (let j = 0; j < part.length; j++) out.push(l2normalize(Float32Array.from(result.data.subarray(j * this.dim, (j + 1) * this.dim))))
    }
    return out
  }

  private async session (): Promise<Extractor> {
    this.extractor ??= (async () => {
      let tf: any
      try {
        tf = await import('@huggingface/transformers')
      } catch (err: any) {
        throw new EmbeddingError(`embedder type "local" needs @huggingface/transformers, which did not load: ${err.message}`)
      }
      tf.env.allowRemoteModels = false
      tf.env.allowLocalModels = true
      tf.env.localModelPath = this.options.dir.endsWith('/') ? this.options.dir : this.options.dir + '/'
      try {
        return await tf.pipeline('feature-extraction', this.options.model, { dtype: 'q8', device: 'cpu' })
      } catch (err: any) {
        throw new EmbeddingError(`cannot load local model ${this.id} from ${this.folder}: ${err.message}`)
      }
    })()
    this.extractor.catch(() => { this.extractor = undefined })
    return await this.extractor
  }
}
