import { createWriteStream } from 'node:fs'
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { EmbeddingError } from './embedder.js'

/** The local model `aistack models pull` fetches when given no name */
export const DEFAULT_LOCAL_MODEL = 'all-MiniLM-L6-v2'

/** Where models are downloaded from unless `--from` or `HF_ENDPOINT` say otherwise */
export const DEFAULT_HUB_URL = 'https://huggingface.co'

/**
 * The files of a sentence-transformers model in the layout of
 * transformers.js (`<name>/config.json`, `<name>/onnx/model_quantized.onnx`, ...),
 * relative to the model's folder. The ONNX file is the int8-quantised export.
 */
export const MODEL_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model_quantized.onnx'] as const

/** A model `aistack models pull` knows by a short name */
export interface KnownModel {
  /** Hugging Face repository holding the ONNX export */
  repo: string
  /** Output dimensions */
  dim: number
  /** One line for `aistack models list` */
  description: string
}

/** Models known by name; any other `owner/name` repository in the same layout works too */
export const KNOWN_MODELS: Record<string, KnownModel> = {
  'all-MiniLM-L6-v2': {
    repo: 'Xenova/all-MiniLM-L6-v2',
    dim: 384,
    description: 'English sentence encoder, 6 layers, 384 dims, 23 MB quantised (sentence-transformers)'
  },
  'paraphrase-multilingual-MiniLM-L12-v2': {
    repo: 'Xenova/paraphrase-multilingual-MiniLM-L12-v2',
    dim: 384,
    description: '50+ languages, 12 layers, 384 dims, 118 MB quantised (sentence-transformers)'
  }
}

/** Largest file `pullModel` accepts */
export const MAX_MODEL_FILE_BYTES = 2 * 1024 ** 3

/** True for a model folder name: 1-128 letters, digits, `.`, `_`, `-`, not starting with `.` */
export function isModelName (name: string): boolean {
  return /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/.test(name)
}

/**
 * Resolve what `aistack models pull NAME` means: a known short name, or a
 * Hugging Face repository `owner/name` (stored under its `name`).
 *
 * @throws EmbeddingError for anything else
 */
export function resolveModel (name: string): { name: string, repo: string } {
  const known = KNOWN_MODELS[name]
  if (known != null) return { name, repo: known.repo }
  const parts = name.split('/')
  if (parts.length === 2 && parts.every(isModelName)) return { name: parts[1], repo: name }
  throw new EmbeddingError(`unknown model "${name}": give one of ${Object.keys(KNOWN_MODELS).join(', ')} or a Hugging Face repository owner/name`)
}

/** Files of model `name` missing from `dir` (empty when the model is complete) */
export async function missingModelFiles (dir: string, name: string): Promise<string[]> {
  const missing: string[] = []
  for (const f of MODEL_FILES) {
    try {
      if (!(await stat(join(dir, name, f))).isFile()) missing.push(f)
    } catch {
      missing.push(f)
    }
  }
  return missing
}

/** A model folder found by {@link listModels} */
export interface ModelListing {
  /** Folder name (the config's `embedder.model`) */
  name: string
  /** Bytes of its files */
  bytes: number
  /** Files still missing; empty when it can be used */
  missing: string[]
}

/** The model folders under `dir` (none when `dir` does not exist), sorted by name */
export async function listModels (dir: string): Promise<ModelListing[]> {
  let names: string[]
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter(d => d.isDirectory() && isModelName(d.name)).map(d => d.name).sort()
  } catch {
    return []
  }
  const out: ModelListing[] = []
  for (const name of names) {
    let bytes = 0
    for (const f of MODEL_FILES) {
      try { bytes += (await stat(join(dir, name, f))).size } catch {}
    }
    out.push({ name, bytes, missing: await missingModelFiles(dir, name) })
  }
  return out
}

/** Progress of {@link pullModel}, called as bytes arrive */
export interface PullProgress {
  /** File being fetched, relative to the model folder */
  file: string
  /** Bytes of this file so far */
  bytes: number
  /** Its size from Content-Length, or undefined when the server did not say */
  total?: number
  /** Index of the file in {@link MODEL_FILES} and their count */
  index: number
  count: number
}

/** Options of {@link pullModel} */
export interface PullOptions {
  /** Short name or `owner/name` repository, see {@link resolveModel} */
  name: string
  /** Models folder: files land in `<dir>/<name>/` */
  dir: string
  /** Hub base URL, default {@link DEFAULT_HUB_URL}; files are read from `<from>/<repo>/resolve/main/<file>` */
  from?: string
  /** Called as bytes arrive */
  onProgress?: (p: PullProgress) => void
  /** Aborts the download (the partial file is removed) */
  signal?: AbortSignal
  /** Per-request time to the response headers, default 30 s */
  timeoutMs?: number
}

/**
 * Download a model's {@link MODEL_FILES} into `<dir>/<name>/`. Each file is
 * written to `<file>.part` and renamed when complete, so an interrupted pull
 * leaves no file that looks whole; files already present are kept.
 *
 * @returns the model folder
 * @throws EmbeddingError naming the file and the HTTP status or network error
 */
export async function pullModel (options: PullOptions): Promise<string> {
  const { name, repo } = resolveModel(options.name)
  const base = (options.from ?? DEFAULT_HUB_URL).replace(/\/+$/, '')
  if (!/^https?:\/\//.test(base)) throw new EmbeddingError(`hub URL must be http(s), not "${base}"`)
  const folder = join(options.dir, name)
  const missing = new Set(await missingModelFiles(options.dir, name))
  let index = 0
  for (const file of MODEL_FILES) {
    index++
    if (!missing.has(file)) continue
    const url = `${base}/${repo}/resolve/main/${file}`
    const target = join(folder, file)
    await mkdir(join(target, '..'), { recursive: true })
    const timeout = AbortSignal.timeout(options.timeoutMs ?? 30_000)
    const signal = options.signal != null ? AbortSignal.any([options.signal, timeout]) : timeout
    let res: Response
    try {
      res = await fetch(url, { signal, redirect: 'follow' })
    } catch (err: any) {
      throw new EmbeddingError(`cannot fetch ${url}: ${err.cause?.code ?? err.cause?.message ?? err.message}`)
    }
    if (!res.ok || res.body == null) throw new EmbeddingError(`cannot fetch ${url}: HTTP ${res.status}`)
    const length = Number(res.headers.get('content-length'))
    const total = Number.isFinite(length) && length > 0 ? length : undefined
    if (total != null && total > MAX_MODEL_FILE_BYTES) throw new EmbeddingError(`${url} is ${total} bytes, more than the ${MAX_MODEL_FILE_BYTES} accepted`)
    let bytes = 0
    const count = new Transform({
      transform (chunk: Buffer, _enc, done) {
        bytes += chunk.length
        if (bytes > MAX_MODEL_FILE_BYTES) { done(new EmbeddingError(`${url} is larger than ${MAX_MODEL_FILE_BYTES} bytes`)); return }
        options.onProgress?.({ file, bytes, total, index, count: MODEL_FILES.length })
        done(null, chunk)
      }
    })
    const part = target + '.part'
    try {
      await pipeline(Readable.fromWeb(res.body as any), count, createWriteStream(part), { signal: options.signal })
    } catch (err: any) {
      await rm(part, { force: true })
      if (err instanceof EmbeddingError) throw err
      throw new EmbeddingError(`download of ${url} failed: ${err.code ?? err.message}`)
    }
    if (total != null && bytes !== total) {
      await rm(part, { force: true })
      throw new EmbeddingError(`download of ${url} stopped at ${bytes} of ${total} bytes`)
    }
    await rename(part, target)
  }
  return folder
}
