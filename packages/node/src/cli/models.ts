import { join } from 'node:path'
import { DEFAULT_HUB_URL, DEFAULT_LOCAL_MODEL, EmbeddingError, KNOWN_MODELS, listModels, pullModel } from '@aistack/embeddings'
import cliProgress from 'cli-progress'
import { UsageError } from '../errors.js'
import { resolveHome } from '../paths.js'
import { parse } from './args.js'
import { printJson } from './output.js'
import type { PullProgress } from '@aistack/embeddings'

const USAGE = `Usage: aistack models pull [NAME] [--from URL] [--dir DIR] [--home DIR] [--json]
       aistack models list [--dir DIR] [--home DIR] [--json]

Local sentence encoders for \`embedder: {"type": "local", "model": NAME}\` in config.json.
  pull   download NAME (default ${DEFAULT_LOCAL_MODEL}) into <home>/models/NAME: config.json,
         tokenizer.json, tokenizer_config.json and onnx/model_quantized.onnx. NAME is one of
         ${Object.keys(KNOWN_MODELS).join(', ')}
         or a Hugging Face repository owner/name with the same files. Files already there are kept.
  list   the models on disk, with their size and whether they are complete

Options:
  --from URL   hub to download from (default $HF_ENDPOINT, else ${DEFAULT_HUB_URL});
               files are read from URL/<repository>/resolve/main/<file>
  --dir DIR    models folder (default <home>/models)
  --home DIR   node home (default $AISTACK_HOME, else ~/.aistack)
  --json       machine-readable output`

/** `aistack models pull|list` */
export async function modelsCommand (args: string[]): Promise<number> {
  const { values, positionals } = parse('models', args, {
    home: { type: 'string' },
    dir: { type: 'string' },
    from: { type: 'string' },
    json: { type: 'boolean' }
  }, { positionals: 2 })
  if (values.help === true || positionals.length === 0) {
    console.log(USAGE)
    return values.help === true ? 0 : 2
  }
  const dir = typeof values.dir === 'string' ? values.dir : join(resolveHome(values.home as string | undefined), 'models')
  const json = values.json === true
  const [sub, name] = positionals
  if (sub === 'list') {
    if (name != null) throw new UsageError(`models list: unexpected argument "${name}"`)
    const models = await listModels(dir)
    if (json) {
      printJson({ dir, models })
    } else if (models.length === 0) {
      console.log(`no models in ${dir}; get one with \`aistack models pull ${DEFAULT_LOCAL_MODEL}\``)
    } else {
      for (const m of models) {
        console.log(`${m.name.padEnd(40)} ${(m.bytes / 2 ** 20).toFixed(1).padStart(7)} MiB  ${m.missing.length === 0 ? 'complete' : `incomplete (missing ${m.missing.join(', ')})`}`)
      }
    }
    return 0
  }
  if (sub !== 'pull') throw new UsageError(`models: unknown subcommand "${sub}" (pull or list)`)
  const from = typeof values.from === 'string' ? values.from : (process.env.HF_ENDPOINT ?? DEFAULT_HUB_URL)
  const model = name ?? DEFAULT_LOCAL_MODEL
  const bar = !json && process.stderr.isTTY
    ? new cliProgress.SingleBar({ format: '{file} [{bar}] {percentage}% {done}/{size} MiB', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined
  let current = ''
  const onProgress = (p: PullProgress): void => {
    const mib = (n: number): string => (n / 2 ** 20).toFixed(1)
    if (p.file !== current) {
      bar?.stop()
      current = p.file
      if (bar == null && !json) process.stderr.write(`downloading ${p.file} (${p.index}/${p.count})\n`)
      bar?.start(p.total ?? 0, 0, { file: p.file, done: '0.0', size: p.total != null ? mib(p.total) : '?' })
    }
    bar?.update(p.total != null ? p.bytes : 0, { done: mib(p.bytes) })
  }
  const controller = new AbortController()
  const onSignal = (): void => { controller.abort() }
  process.once('SIGINT', onSignal)
  let folder: string
  try {
    folder = await pullModel({ name: model, dir, from, onProgress, signal: controller.signal })
  } catch (err) {
    bar?.stop()
    if (err instanceof EmbeddingError) {
      process.stderr.write(`aistack: models pull: ${err.message}\n`)
      return 1
    }
    throw err
  } finally {
    process.off('SIGINT', onSignal)
  }
  bar?.stop()
  const modelName = folder.slice(dir.length).replace(/^[/\\]+/, '')
  if (json) {
    printJson({ model: modelName, folder })
  } else {
    console.log(`${modelName} is in ${folder}; use it with "embedder": {"type": "local", "model": "${modelName}"} in config.json`)
  }
  return 0
}
