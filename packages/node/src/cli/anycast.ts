import { readFile } from 'node:fs/promises'
import { resolveHome } from '../paths.js'
import { ApiError, UsageError } from '../errors.js'
import { parse, parseInteger } from './args.js'
import { apiFor } from './client.js'
import { printJson, table } from './output.js'
import { readEvents } from './task.js'
import type { RunInfo } from '../run-file.js'

export const FIND_HELP = `Usage: aistack find "<text>" [-k N] [--explain] [--home DIR] [--json]

Finds the capabilities on the network nearest in meaning to a text, best first, with their
similarity, score, where each came from (own, cache, dht) and the owner's liveness.

  -k, --k N           how many results (default 5, 1-100)
  --explain           also show the lookup: why the DHT was asked, keys probed, providers
                      asked, records fetched and the time of each phase
  --home DIR          node home (default $AISTACK_HOME or ~/.aistack)
  --json              print JSON`

export const ASK_HELP = `Usage: aistack ask "<text>" [--input TEXT | --input-file F] [--stream] [--timeout-ms N] [--min-similarity X] [--home DIR] [--json]

Sends a request to the capability nearest in meaning to the text (trying the next candidates
on failure) and prints its output; each failed attempt and its reason go to stderr. Only
capabilities at least --min-similarity close to the text are tried, and a fallback only when
its similarity reaches ask.minRelativeSimilarity (default 0.8) of the best one's.

  --input TEXT        the request input (a string; without --input or --input-file, JSON null)
  --input-file F      read the input from a file (its text; with --json-input, parsed as JSON)
  --json-input        treat --input or the file as JSON rather than text
  --stream            print the output as it arrives (pieces of a streaming handler, e.g. LLM tokens)
  --timeout-ms N      give up after N ms (default 30000)
  --min-similarity X  try only capabilities at least this similar to the text, -1 to 1
                      (default: the node's ask.minSimilarity, 0.2)
  --home DIR          node home (default $AISTACK_HOME or ~/.aistack)
  --json              print the whole answer as JSON (output, peerId, capability, failures, ...); with
                      --stream, one JSON line per piece and a last line with who answered`

function queryText (positionals: string[], command: string): string {
  const text = positionals[0]
  if (text == null || text.trim() === '') throw new UsageError(`${command}: the text to ${command === 'find' ? 'search for' : 'ask'} is missing (aistack ${command} "<text>")`)
  return text
}

export async function findCommand (args: string[]): Promise<number> {
  const { values, positionals } = parse('find', args, { k: { type: 'string', short: 'k' }, explain: { type: 'boolean' }, home: { type: 'string' }, json: { type: 'boolean' } }, { positionals: 1 })
  if (values.help === true) {
    console.log(FIND_HELP)
    return 0
  }
  const q = queryText(positionals, 'find')
  const k = typeof values.k === 'string' ? parseInteger(values.k, '-k', 1, 100) : 5
  const { call } = await apiFor(resolveHome(values.home as string | undefined))
  const explain = values.explain === true
  const { results, explain: lookup } = await call('GET', `/v1/capabilities/search?q=${encodeURIComponent(q)}&k=${k}${explain ? '&explain=1' : ''}`)
  if (values.json === true) {
    printJson(explain ? { results, explain: lookup } : { results })
    return 0
  }
  if (results.length === 0) {
    console.log('no capability found')
  } else {
    console.log(table(['SCORE', 'SIMILARITY', 'CAPABILITY', 'PEER', 'SOURCE', 'LIVENESS', 'DESCRIPTION'],
      results.map((r: any) => [r.score.toFixed(3), r.similarity.toFixed(3), r.name, r.peerId, r.source, r.liveness, r.description])))
  }
  if (explain && lookup != null) printExplain(lookup)
  return 0
}

function printExplain (e: any): void {
  const p = e.phases ?? {}
  console.log(`\nlookup: ${String(e.path)} in ${String(e.ms)} ms (${String(e.reason)})`)
  console.log(`  phases: queue ${String(p.queueMs)} ms, embed ${String(p.embedMs)} ms, cache ${String(p.cacheMs)} ms, providers ${String(p.providersMs)} ms, fetch ${String(p.fetchMs)} ms, re-rank ${String(p.rerankMs)} ms`)
  console.log(`  keys probed: ${String(e.keyCount)}, DHT messages: ${String(e.dhtMessages)}, providers: ${String(e.providers?.length ?? 0)}, records fetched: ${String(e.recordsFetched)}, re-ranked: ${String(e.reranked)}`)
  for (const f of e.fetches ?? []) console.log(`  asked ${String(f.peerId)}: ${f.error != null ? String(f.error) : `${String(f.records)} records`} (${String(f.ms)} ms)`)
}

export async function askCommand (args: string[]): Promise<number> {
  const { values, positionals } = parse('ask', args, {
    input: { type: 'string' },
    'input-file': { type: 'string' },
    'json-input': { type: 'boolean' },
    'timeout-ms': { type: 'string' },
    stream: { type: 'boolean' },
    'min-similarity': { type: 'string' },
    home: { type: 'string' },
    json: { type: 'boolean' }
  }, { positionals: 1 })
  if (values.help === true) {
    console.log(ASK_HELP)
    return 0
  }
  const query = queryText(positionals, 'ask')
  if (values.input != null && values['input-file'] != null) throw new UsageError('ask: give --input or --input-file, not both')
  let text: string | undefined = values.input as string | undefined
  if (typeof values['input-file'] === 'string') {
    try {
      text = await readFile(values['input-file'], 'utf8')
    } catch (err: any) {
      throw new UsageError(`--input-file: cannot read ${values['input-file']} (${String(err.code ?? err.message)})`)
    }
  }
  let input: unknown = text ?? null
  if (values['json-input'] === true && text != null) {
    try {
      input = JSON.parse(text)
    } catch (err: any) {
      throw new UsageError(`--json-input: the input is not valid JSON (${String(err.message)})`)
    }
  }
  const timeoutMs = typeof values['timeout-ms'] === 'string' ? parseInteger(values['timeout-ms'], '--timeout-ms', 1, 3_600_000) : undefined
  let minSimilarity: number | undefined
  if (typeof values['min-similarity'] === 'string') {
    minSimilarity = Number(values['min-similarity'])
    if (values['min-similarity'].trim() === '' || !(minSimilarity >= -1 && minSimilarity <= 1)) throw new UsageError(`--min-similarity: "${values['min-similarity']}" is not a number from -1 to 1`)
  }
  const { info, call } = await apiFor(resolveHome(values.home as string | undefined))
  if (values.stream === true) return streamAnswer(info, { query, input, timeoutMs, stream: true }, values.json === true)
  const answer = await call('POST', '/v1/ask', { query, input, timeoutMs, minSimilarity })
  if (values.json === true) {
    printJson(answer)
  } else {
    const text = typeof answer.output === 'string' ? answer.output : JSON.stringify(answer.output, null, 2)
    process.stdout.write(text.endsWith('\n') ? text : text + '\n')
    for (const [i, f] of (answer.failures ?? []).entries()) {
      process.stderr.write(`attempt ${i + 1} failed: ${String(f.capability)} on ${String(f.peerId)}: ${String(f.error)}\n`)
    }
    process.stderr.write(`answered by ${String(answer.capability)} on ${String(answer.peerId)} (similarity ${Number(answer.similarity).toFixed(3)}, ${String(answer.attempts)} attempt(s), ${Math.round(answer.latencyMs)} ms${answer.traceId != null ? `, trace ${String(answer.traceId)}` : ''})\n`)
  }
  return 0
}

/** `ask --stream`: prints each piece as its event arrives */
async function streamAnswer (info: RunInfo, body: Record<string, unknown>, json: boolean): Promise<number> {
  let failure: ApiError | undefined
  let ended = false
  await readEvents(info, '/v1/ask', (m) => {
    if (m.event === 'piece') {
      const piece = m.data?.piece
      if (json) process.stdout.write(JSON.stringify({ piece }) + '\n')
      else process.stdout.write(typeof piece === 'string' ? piece : JSON.stringify(piece) + '\n')
    } else if (m.event === 'done') {
      ended = true
      if (json) process.stdout.write(JSON.stringify(m.data) + '\n')
      else process.stderr.write(`\nanswered by ${String(m.data?.capability)} on ${String(m.data?.peerId)} (similarity ${Number(m.data?.similarity).toFixed(3)}, over ${String(m.data?.transport)}, ${Math.round(m.data?.latencyMs)} ms)\n`)
      return true
    } else if (m.event === 'error') {
      failure = new ApiError(502, String(m.data?.code ?? 'error'), String(m.data?.message ?? 'the answer failed'))
      return true
    }
  }, { body })
  if (failure != null) throw failure
  if (!ended) throw new ApiError(0, 'stream_broken', 'the answer stream ended before its last piece')
  return 0
}
