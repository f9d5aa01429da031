import { readFile } from 'node:fs/promises'
import { MAX_LEASE_MS, MIN_LEASE_MS } from '@aistack/task'
import { resolveHome } from '../paths.js'
import { ApiError, UsageError } from '../errors.js'
import { parse, parseInteger } from './args.js'
import { apiFor } from './client.js'
import { printJson, table } from './output.js'
import type { RunInfo } from '../run-file.js'

const HOME = '  --home DIR          node home (default $AISTACK_HOME or ~/.aistack)'
const TERMINAL = new Set(['completed', 'dead', 'canceled'])
const STATES = ['submitted', 'assigned', 'running', 'completed', 'failed', 'dead', 'canceled']

export const TASK_HELP = `Usage: aistack task <submit|status|list|cancel|watch> [options]

The task queue of the running node: tasks are journaled on this node, run by a peer that serves
the capability (retried elsewhere when a worker fails), and their result comes back here once.

  submit              submit a task (prints its id, or its result with --wait)
  status ID           show a task: state, attempts, worker, result or error, history
  list                list tasks, oldest first
  cancel ID           cancel a task
  watch ID            follow a task's progress live until it ends

Run \`aistack task <command> --help\` for its options.`

export const TASK_HELPS: Record<string, string> = {
  submit: `Usage: aistack task submit (--capability NAME | --query TEXT) (--input TEXT | --input-file F | --inputs-file F) [options]

Submits a task and prints its id. With --inputs-file it is a map task: one child per input, and
its result is the children's results in input order.

  --capability NAME   the capability to run
  --query TEXT        find the capability by meaning instead (semantic anycast, at submit time)
  --input TEXT        the input, as a string
  --input-file F      read the input from a file (its text)
  --json-input        parse --input or --input-file as JSON instead of taking it as text
  --inputs-file F     a JSON array of inputs: a map task with one child per input
  --to PEER           only this peer (a peer ID) may run it
  --max-attempts N    attempts before the task is dead-lettered (1-100, default 5)
  --lease-ms N        lease of each attempt, extended by the worker's heartbeats, at least 1000 (default 30000)
  --deadline-ms N     dead-letter the task if it has not completed N ms after submission
  --timeout-ms N      limit of each attempt (default 300000)
  --wait              wait for the task to end and print its result (exit 1 if it did not complete)
${HOME}
  --json              print JSON ({id, state}, or the whole task with --wait)`,
  status: `Usage: aistack task status ID [--home DIR] [--json]

Shows a task: state, capability, attempts, worker, progress, result or error, and its history.

${HOME}
  --json              print the task as JSON`,
  list: `Usage: aistack task list [--state STATE] [--parent ID] [--limit N] [--home DIR] [--json]

Lists the tasks this node submitted, oldest first (the most recent N).

  --state STATE       only tasks in this state (${STATES.join(', ')})
  --parent ID         the children of a map task instead of the top-level tasks
  --limit N           at most N tasks, the most recent (1-10000, default 100)
${HOME}
  --json              print JSON`,
  cancel: `Usage: aistack task cancel ID [--home DIR] [--json]

Cancels a task that has not ended; its worker is told to stop.

${HOME}
  --json              print the task as JSON`,
  watch: `Usage: aistack task watch ID [--home DIR] [--json]

Follows a task live (assigned, running, progress, retries) until it ends; exits 0 if it
completed, 1 if it was dead-lettered or canceled.

${HOME}
  --json              print each event as one line of JSON`
}

export const EVENTS_HELP = `Usage: aistack events [--type TYPE] [--home DIR] [--json]

Prints lifecycle events live until interrupted: this node's task events and those other nodes
publish on the events topic (task.created, task.assigned, task.progress, task.completed,
task.failed, task.dead, task.canceled, agent.joined, agent.left).

  --type TYPE         only events of this type or group (task, agent, task.completed, ...); repeatable
${HOME}
  --json              print each event as one line of JSON`

// ---------------------------------------------------------------- server-sent events

export interface SseMessage { event: string, data: any }

/**
 * Reads a server-sent events stream from the node's API and calls `onMessage` for each
 * message until the stream ends, `onMessage` returns true, or `signal` aborts.
 */
export async function readEvents (info: RunInfo, path: string, onMessage: (m: SseMessage) => boolean | undefined | void, { signal, body }: { signal?: AbortSignal, body?: unknown } = {}): Promise<void> {
  let response: Response
  try {
    // with a body: POSTed as JSON (e.g. POST /v1/ask with "stream": true)
    response = await fetch(info.api.url + path, {
      method: body !== undefined ? 'POST' : 'GET',
      headers: { authorization: `Bearer ${info.api.token}`, accept: 'text/event-stream', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal
    })
  } catch (err: any) {
    if (signal?.aborted === true) return
    throw new ApiError(0, 'unreachable', `cannot reach the node's API at ${info.api.url} (${String(err.cause?.message ?? err.message ?? err)})`)
  }
  if (!response.ok || response.body == null) {
    const text = await response.text().catch(() => '')
    let json: any
    try { json = JSON.parse(text) } catch {}
    throw new ApiError(response.status, json?.error?.code ?? 'http_error', json?.error?.message ?? `HTTP ${response.status}`)
  }
  const decoder = new TextDecoder()
  let buffer = ''
  let event = 'message'
  let data: string[] = []
  const reader = response.body.getReader()
  try {
    while (true) {
      const { done, value } = await reader.read()
      if (done) break
      buffer += decoder.decode(value, { stream: true })
      let nl: number
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '')
        buffer = buffer.slice(nl + 1)
        if (line === '') {
          if (data.length > 0) {
            let parsed: any
            try { parsed = JSON.parse(data.join('\n')) } catch { parsed = data.join('\n') }
            if (onMessage({ event, data: parsed }) === true) return
          }
          event = 'message'
          data = []
        } else if (line.startsWith('event:')) {
          event = line.slice(6).trim()
        } else if (line.startsWith('data:')) {
          data.push(line.slice(5).replace(/^ /, ''))
        }
      }
    }
  } catch (err: any) {
    if (signal?.aborted === true) return
    throw new ApiError(0, 'stream_broken', `the event stream from ${info.api.url} broke (${String(err.cause?.message ?? err.message ?? err)})`)
  } finally {
    await reader.cancel().catch(() => {})
  }
}

// ---------------------------------------------------------------- formatting

function time (at: number): string {
  return new Date(at).toISOString().slice(11, 23)
}

function short (id: unknown): string | undefined {
  if (id == null) return undefined
  const s = String(id)
  return s.length > 16 ? `${s.slice(0, 8)}…${s.slice(-6)}` : s
}

function resultText (value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2)
}

/** One line for a lifecycle event */
export function eventLine (e: any): string {
  const parts = [time(e.at ?? Date.now()), String(e.type).padEnd(14)]
  if (e.taskId != null) parts.push(`task=${String(e.taskId)}`)
  if (e.state != null) parts.push(`state=${String(e.state)}`)
  if (e.attempt != null && e.attempt > 0) parts.push(`attempt=${String(e.attempt)}`)
  if (e.worker != null) parts.push(`worker=${short(e.worker)}`)
  if (e.progress != null) parts.push(`progress=${Math.round(Number(e.progress) * 100)}%`)
  if (e.message != null) parts.push(`message=${JSON.stringify(e.message)}`)
  if (e.reason != null) parts.push(`reason=${JSON.stringify(e.reason)}`)
  if (e.peer != null) parts.push(`peer=${String(e.peer)}`)
  if (e.local === false) parts.push(`origin=${short(e.origin)}`)
  return parts.join(' ')
}

function statusText (t: any): string {
  const lines = [
    `task      ${String(t.id)}`,
    `state     ${String(t.state)}`,
    `work      ${t.capability != null ? `capability ${String(t.capability)}` : ''}${t.query != null ? `${t.capability != null ? ', ' : ''}query ${JSON.stringify(t.query)}` : ''}${t.to != null ? ` (only ${String(t.to)})` : ''}`,
    `attempts  ${String(t.attempts)} of ${String(t.maxAttempts)}`
  ]
  if (t.children != null) lines.push(`children  ${String(t.children)} (aistack task list --parent ${String(t.id)})`)
  if (t.worker != null) lines.push(`worker    ${String(t.worker)}`)
  if (t.progress != null) lines.push(`progress  ${Math.round(Number(t.progress) * 100)}%`)
  if (t.deadline != null) lines.push(`deadline  ${new Date(t.deadline).toISOString()}`)
  if (t.waiting != null) lines.push(`waiting   ${String(t.waiting)}`)
  if (t.error != null) lines.push(`error     ${String(t.error)}`)
  if (t.state === 'completed') lines.push(`result    ${resultText(t.result).replace(/\n$/, '').split('\n').join('\n          ')}`)
  lines.push('history')
  for (const h of t.history ?? []) {
    lines.push(`  ${new Date(h.at).toISOString()}  ${String(h.state).padEnd(9)}${h.attempt > 0 ? ` attempt ${String(h.attempt)}` : ''}${h.worker != null ? ` worker ${String(h.worker)}` : ''}${h.reason != null ? ` (${String(h.reason)})` : ''}`)
  }
  return lines.join('\n')
}

// ---------------------------------------------------------------- commands

function taskId (positionals: string[], command: string): string {
  const id = positionals[0]
  if (id == null || id.trim() === '') throw new UsageError(`task ${command}: the task id is missing (aistack task ${command} ID)`)
  return id
}

function home (values: Record<string, unknown>): string {
  return resolveHome(values.home as string | undefined)
}

async function readText (file: string, flag: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err: any) {
    throw new UsageError(`${flag}: cannot read ${file} (${String(err.code ?? err.message)})`)
  }
}

function path (id: string): string {
  return `/v1/tasks/${encodeURIComponent(id)}`
}

/** Follows a task's events until it ends; returns the task as it ended. */
async function follow (info: RunInfo, call: (m: string, p: string) => Promise<any>, id: string, onEvent?: (m: SseMessage) => void): Promise<any> {
  let ended = false
  await readEvents(info, `${path(id)}/events`, (m) => {
    onEvent?.(m)
    if (m.event === 'task') {
      ended = TERMINAL.has(m.data?.state)
    } else if (m.data?.taskId === id && TERMINAL.has(m.data?.state)) {
      ended = true
    }
    return ended
  })
  const task = await call('GET', path(id))
  if (!TERMINAL.has(task.state)) throw new ApiError(0, 'stream_broken', `the event stream of task ${id} ended before the task (state ${String(task.state)})`)
  return task
}

/** One line on how a task ended: state, time taken, attempts, worker */
function summary (t: any): string {
  const ms = Number(t.updatedAt) - Number(t.createdAt)
  return `task ${String(t.id)} ${String(t.state)} in ${(ms / 1000).toFixed(1)} s after ${String(t.attempts)} attempt(s)${t.worker != null ? ` on ${String(short(t.worker))}` : ''}`
}

function printEnded (task: any, json: boolean): number {
  if (json) {
    printJson(task)
  } else if (task.state === 'completed') {
    const text = resultText(task.result)
    process.stdout.write(text.endsWith('\n') ? text : text + '\n')
  }
  if (task.state !== 'completed') {
    process.stderr.write(`aistack: task ${String(task.id)} ${String(task.state)}${task.error != null ? `: ${String(task.error)}` : ''}\n`)
    return 1
  }
  return 0
}

async function submit (args: string[]): Promise<number> {
  const { values } = parse('task submit', args, {
    capability: { type: 'string' },
    query: { type: 'string' },
    input: { type: 'string' },
    'input-file': { type: 'string' },
    'json-input': { type: 'boolean' },
    'inputs-file': { type: 'string' },
    to: { type: 'string' },
    'max-attempts': { type: 'string' },
    'lease-ms': { type: 'string' },
    'deadline-ms': { type: 'string' },
    'timeout-ms': { type: 'string' },
    wait: { type: 'boolean' },
    home: { type: 'string' },
    json: { type: 'boolean' }
  })
  if (values.help === true) {
    console.log(TASK_HELPS.submit)
    return 0
  }
  const capability = values.capability as string | undefined
  const query = values.query as string | undefined
  if ((capability == null) === (query == null)) throw new UsageError('task submit: give --capability NAME or --query TEXT (one of them)')
  if (capability === '' || query?.trim() === '') throw new UsageError(`task submit: --${capability != null ? 'capability' : 'query'} must not be empty`)
  const sources = ['input', 'input-file', 'inputs-file'].filter(k => values[k] != null)
  if (sources.length !== 1) throw new UsageError('task submit: give one of --input TEXT, --input-file F or --inputs-file F')
  if (values['json-input'] === true && values['inputs-file'] != null) throw new UsageError('task submit: --json-input applies to --input or --input-file, not --inputs-file')
  const body: Record<string, unknown> = {}
  if (capability != null) body.capability = capability
  if (query != null) body.query = query
  if (typeof values['inputs-file'] === 'string') {
    const text = await readText(values['inputs-file'], '--inputs-file')
    let inputs: unknown
    try {
      inputs = JSON.parse(text)
    } catch (err: any) {
      throw new UsageError(`--inputs-file: ${values['inputs-file']} is not valid JSON (${String(err.message)})`)
    }
    if (!Array.isArray(inputs)) throw new UsageError(`--inputs-file: ${values['inputs-file']} must hold a JSON array (one input per child task)`)
    body.inputs = inputs
  } else {
    const text = typeof values['input-file'] === 'string' ? await readText(values['input-file'], '--input-file') : values.input as string
    if (values['json-input'] === true) {
      try {
        body.input = JSON.parse(text)
      } catch (err: any) {
        throw new UsageError(`--json-input: the input is not valid JSON (${String(err.message)})`)
      }
    } else {
      body.input = text
    }
  }
  if (values.to != null) {
    if (!/^[1-9A-HJ-NP-Za-km-z]{40,100}$/.test(values.to as string)) throw new UsageError(`--to: "${String(values.to)}" is not a peer ID`)
    body.to = values.to
  }
  const ints: Array<[string, string, number, number]> = [
    ['max-attempts', 'maxAttempts', 1, 100],
    ['lease-ms', 'leaseMs', MIN_LEASE_MS, MAX_LEASE_MS],
    ['deadline-ms', 'deadlineMs', 1, 30 * 24 * 3_600_000],
    ['timeout-ms', 'timeoutMs', 1, 24 * 3_600_000]
  ]
  for (const [flag, field, min, max] of ints) {
    if (typeof values[flag] === 'string') body[field] = parseInteger(values[flag], `--${flag}`, min, max)
  }
  const { info, call } = await apiFor(home(values))
  const submitted = await call('POST', '/v1/tasks', body)
  if (values.wait !== true) {
    if (values.json === true) printJson(submitted)
    else console.log(submitted.id)
    return 0
  }
  process.stderr.write(`submitted ${String(submitted.id)}\n`)
  // while it waits for a worker, say why (once per change)
  let said: string | undefined
  const check = (): void => {
    call('GET', path(submitted.id)).then(t => {
      if (t.waiting != null && t.waiting !== said) process.stderr.write(`${String(t.waiting)}\n`)
      said = t.waiting
    }, () => {})
  }
  check()
  const explain = setInterval(check, 2000)
  try {
    const ended = await follow(info, call, submitted.id)
    if (values.json !== true) process.stderr.write(`${summary(ended)}\n`)
    return printEnded(ended, values.json === true)
  } finally {
    clearInterval(explain)
  }
}

async function status (args: string[]): Promise<number> {
  const { values, positionals } = parse('task status', args, { home: { type: 'string' }, json: { type: 'boolean' } }, { positionals: 1 })
  if (values.help === true) {
    console.log(TASK_HELPS.status)
    return 0
  }
  const id = taskId(positionals, 'status')
  const { call } = await apiFor(home(values))
  const task = await call('GET', path(id))
  if (values.json === true) printJson(task)
  else console.log(statusText(task))
  return 0
}

async function list (args: string[]): Promise<number> {
  const { values } = parse('task list', args, { state: { type: 'string' }, parent: { type: 'string' }, limit: { type: 'string' }, home: { type: 'string' }, json: { type: 'boolean' } })
  if (values.help === true) {
    console.log(TASK_HELPS.list)
    return 0
  }
  const params = new URLSearchParams()
  if (values.state != null) {
    if (!STATES.includes(values.state as string)) throw new UsageError(`--state: "${String(values.state)}" is not a state (${STATES.join(', ')})`)
    params.set('state', values.state as string)
  }
  if (values.parent != null) params.set('parent', values.parent as string)
  params.set('limit', String(typeof values.limit === 'string' ? parseInteger(values.limit, '--limit', 1, 10_000) : 100))
  const { call } = await apiFor(home(values))
  const { tasks, total } = await call('GET', `/v1/tasks?${params.toString()}`)
  if (values.json === true) {
    printJson({ tasks, total })
  } else if (tasks.length === 0) {
    console.log('no tasks')
  } else {
    console.log(table(['ID', 'STATE', 'CAPABILITY', 'ATTEMPTS', 'WORKER', 'UPDATED'],
      tasks.map((t: any) => [t.id, t.state, t.capability ?? t.query, `${String(t.attempts)}/${String(t.maxAttempts)}`, short(t.worker), new Date(t.updatedAt).toISOString()])))
    if (total > tasks.length) console.log(`(${tasks.length} of ${String(total)}; --limit N for more)`)
  }
  return 0
}

async function cancel (args: string[]): Promise<number> {
  const { values, positionals } = parse('task cancel', args, { home: { type: 'string' }, json: { type: 'boolean' } }, { positionals: 1 })
  if (values.help === true) {
    console.log(TASK_HELPS.cancel)
    return 0
  }
  const id = taskId(positionals, 'cancel')
  const { call } = await apiFor(home(values))
  const task = await call('DELETE', path(id))
  if (values.json === true) printJson(task)
  else console.log(`canceled ${String(task.id)}`)
  return 0
}

async function watch (args: string[]): Promise<number> {
  const { values, positionals } = parse('task watch', args, { home: { type: 'string' }, json: { type: 'boolean' } }, { positionals: 1 })
  if (values.help === true) {
    console.log(TASK_HELPS.watch)
    return 0
  }
  const id = taskId(positionals, 'watch')
  const json = values.json === true
  const { info, call } = await apiFor(home(values))
  // a map task: one progress line ("N/M done") per tenth done instead of a line per child event
  let children: number | undefined
  let done = 0
  let failed = 0
  let shown = -1
  const task = await follow(info, call, id, (m) => {
    if (!json && m.event === 'task' && m.data?.children != null) children = Number(m.data.children)
    if (!json && children != null && m.event !== 'task' && m.data?.taskId !== id) {
      if (m.data?.type === 'task.completed') done++
      if (m.data?.type === 'task.dead' || m.data?.type === 'task.canceled') failed++
      const step = Math.floor(((done + failed) / children) * 10)
      if (step !== shown) {
        shown = step
        console.log(`${time(Date.now())} ${done}/${children} done${failed > 0 ? `, ${failed} failed` : ''}`)
      }
      return
    }
    if (json) {
      process.stdout.write(JSON.stringify({ event: m.event, ...(m.event === 'task' ? { task: m.data } : m.data) }) + '\n')
    } else if (m.event === 'task') {
      const t = m.data
      console.log(`${time(Date.now())} task ${String(t.id)}: ${String(t.state)}, ${String(t.attempts)}/${String(t.maxAttempts)} attempts${t.worker != null ? `, worker ${short(t.worker)}` : ''}`)
    } else {
      console.log(eventLine(m.data))
    }
  })
  if (!json) {
    if (task.state === 'completed') console.log(`result: ${resultText(task.result)}`)
    else console.log(`${String(task.state)}${task.error != null ? `: ${String(task.error)}` : ''}`)
  }
  return task.state === 'completed' ? 0 : 1
}

const SUBCOMMANDS: Record<string, (args: string[]) => Promise<number>> = { submit, status, list, cancel, watch }

export async function taskCommand (args: string[]): Promise<number> {
  const [sub, ...rest] = args
  if (sub == null || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(TASK_HELP)
    return 0
  }
  const command = SUBCOMMANDS[sub]
  if (command == null) throw new UsageError(`task: unknown command "${sub}" (submit, status, list, cancel or watch)`)
  return command(rest)
}

export async function eventsCommand (args: string[]): Promise<number> {
  const { values } = parse('events', args, { type: { type: 'string', multiple: true }, home: { type: 'string' }, json: { type: 'boolean' } })
  if (values.help === true) {
    console.log(EVENTS_HELP)
    return 0
  }
  const types = (values.type as string[] | undefined ?? []).flatMap(t => t.split(',')).filter(Boolean)
  for (const t of types) {
    if (!/^(task|agent)(\.[a-z]+)?$/.test(t)) throw new UsageError(`--type: "${t}" is not an event type (task, agent, task.completed, ...)`)
  }
  const { info } = await apiFor(home(values))
  // a peer that stops is seen leaving here and also says so itself: one line, not two
  const seen = new Map<string, number>()
  const repeated = (e: any): boolean => {
    if (typeof e?.type !== 'string' || !e.type.startsWith('agent.')) return false
    const who = e.peer ?? (e.local === false ? e.origin : undefined)
    if (who == null) return false
    const key = `${String(e.type)} ${String(who)}`
    const now = Date.now()
    const last = seen.get(key)
    seen.set(key, now)
    if (seen.size > 10_000) seen.delete(seen.keys().next().value as string)
    return last != null && now - last < 30_000
  }
  const controller = new AbortController()
  const stop = (): void => { controller.abort() }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const params = new URLSearchParams()
  for (const t of types) params.append('type', t)
  try {
    await readEvents(info, `/v1/events${types.length > 0 ? `?${params.toString()}` : ''}`, (m) => {
      if (values.json === true) {
        process.stdout.write(JSON.stringify(m.data) + '\n')
      } else if (!repeated(m.data)) {
        console.log(eventLine(m.data))
      }
    }, { signal: controller.signal })
  } finally {
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
  }
  if (controller.signal.aborted) return 0
  process.stderr.write('aistack: the node closed the event stream\n')
  return 1
}
