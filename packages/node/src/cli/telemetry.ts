import { emitKeypressEvents } from 'node:readline'
import { UsageError } from '../errors.js'
import { resolveHome } from '../paths.js'
import { parse, parseInteger } from './args.js'
import { apiFor } from './client.js'
import { HOME_HELP } from './commands.js'
import { printJson, table } from './output.js'

const TOP_HELP = `Usage: aistack top [--home DIR] [--once] [--json] [--sort KEY] [--interval MS]

A live view of the network from the running node's telemetry table: every node, its status,
CPU, memory, connections, load, requests per minute, p95 latency, errors, GPU and alerts,
refreshed every second. Keys: c cpu, m memory, l load, r rate, p p95, e errors, g gpu,
s status, n peer; the same key again reverses the order; q or Ctrl-C quits.

${HOME_HELP}
  --once              print the table once and exit
  --json              with --once: print what GET /v1/network returns
  --sort KEY          first sort: cpu, memory, load, rate, p95, errors, gpu, status, peer (default peer)
  --interval MS       refresh interval (default 1000)`

const TRACE_HELP = `Usage: aistack trace TRACE_ID [--home DIR] [--json]

Prints the spans the running node holds of a trace (an ask's \`traceId\`) as a tree with
start offsets and durations.

${HOME_HELP}
  --json              print what GET /v1/traces/:id returns`

interface Row {
  peerId: string
  status: string
  lastSeenMs: number
  self: boolean
  cpuPercent?: number
  rssBytes?: number
  connections?: number
  capabilities: Array<{ name: string, inFlight: number, capacity: number, requests: number, errors: number, p95Ms: number, ratePerMin: number }>
  gpus?: Array<{ utilization: number }>
  alerts: string[]
}

const SORTS: Record<string, { key: string, value: (r: Row) => number | string, desc: boolean }> = {
  c: { key: 'cpu', value: r => r.cpuPercent ?? -1, desc: true },
  m: { key: 'memory', value: r => r.rssBytes ?? -1, desc: true },
  l: { key: 'load', value: r => loadOf(r), desc: true },
  r: { key: 'rate', value: r => sum(r, c => c.ratePerMin), desc: true },
  p: { key: 'p95', value: r => Math.max(0, ...r.capabilities.map(c => c.p95Ms)), desc: true },
  e: { key: 'errors', value: r => sum(r, c => c.errors), desc: true },
  g: { key: 'gpu', value: r => gpuOf(r) ?? -1, desc: true },
  s: { key: 'status', value: r => r.status, desc: false },
  n: { key: 'peer', value: r => r.peerId, desc: false }
}

function sum (r: Row, f: (c: Row['capabilities'][number]) => number): number {
  return r.capabilities.reduce((s, c) => s + f(c), 0)
}

function loadOf (r: Row): number {
  const cap = sum(r, c => c.capacity)
  return cap > 0 ? sum(r, c => c.inFlight) / cap : 0
}

function gpuOf (r: Row): number | undefined {
  return r.gpus == null || r.gpus.length === 0 ? undefined : Math.max(...r.gpus.map(g => g.utilization))
}

function short (id: string): string {
  return id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id
}

/** The `aistack top` table of a `GET /v1/network` answer */
export function topTable (rows: Row[], sortKey = 'n', reverse = false): string {
  const sort = SORTS[sortKey] ?? SORTS.n
  const sorted = [...rows].sort((a, b) => {
    const x = sort.value(a)
    const y = sort.value(b)
    const order = x < y ? -1 : x > y ? 1 : 0
    return (sort.desc !== reverse ? -order : order) || a.peerId.localeCompare(b.peerId)
  })
  const requests = (r: Row): number => sum(r, c => c.requests)
  return table(
    ['PEER', 'STATUS', 'SEEN', 'CPU%', 'RSS', 'CONN', 'LOAD', 'REQ/MIN', 'P95', 'ERR%', 'GPU%', 'ALERTS', 'CAPABILITIES'],
    sorted.map(r => [
      `${short(r.peerId)}${r.self ? '*' : ''}`,
      r.status,
      `${(r.lastSeenMs / 1000).toFixed(1)}s`,
      r.cpuPercent?.toFixed(1),
      r.rssBytes == null ? null : `${Math.round(r.rssBytes / 1048576)}M`,
      r.connections,
      r.capabilities.length === 0 ? null : `${Math.round(loadOf(r) * 100)}%`,
      r.capabilities.length === 0 ? null : sum(r, c => c.ratePerMin).toFixed(1),
      r.capabilities.length === 0 ? null : `${Math.max(...r.capabilities.map(c => c.p95Ms)).toFixed(1)}ms`,
      requests(r) === 0 ? null : (sum(r, c => c.errors) / requests(r) * 100).toFixed(1),
      gpuOf(r),
      r.alerts.length === 0 ? null : r.alerts.join(','),
      r.capabilities.map(c => c.name).join(',') || null
    ])
  )
}

export async function topCommand (args: string[]): Promise<number> {
  const { values } = parse('top', args, { home: { type: 'string' }, once: { type: 'boolean' }, json: { type: 'boolean' }, sort: { type: 'string' }, interval: { type: 'string' } })
  if (values.help === true) {
    console.log(TOP_HELP)
    return 0
  }
  let sortKey = 'n'
  if (values.sort != null) {
    const found = Object.entries(SORTS).find(([, s]) => s.key === values.sort)
    if (found == null) throw new UsageError(`top: --sort must be one of ${Object.values(SORTS).map(s => s.key).join(', ')}`)
    sortKey = found[0]
  }
  if (values.json === true && values.once !== true) throw new UsageError('top: --json needs --once')
  const intervalMs = values.interval == null ? 1000 : parseInteger(values.interval as string, '--interval', 100, 60_000)
  const { call } = await apiFor(resolveHome(values.home as string | undefined))
  if (values.once === true) {
    const network = await call('GET', '/v1/network')
    if (values.json === true) printJson(network)
    else console.log(topTable(network.nodes, sortKey))
    return 0
  }
  let reverse = false
  const { promise: quit, resolve: onQuit } = Promise.withResolvers<void>()
  const stdin = process.stdin
  if (stdin.isTTY) {
    emitKeypressEvents(stdin)
    stdin.setRawMode(true)
    stdin.on('keypress', (_s: string, key: { name?: string, ctrl?: boolean }) => {
      if (key == null) return
      if (key.name === 'q' || (key.ctrl === true && key.name === 'c')) onQuit()
      else if (key.name != null && SORTS[key.name] != null) {
        reverse = key.name === sortKey ? !reverse : false
        sortKey = key.name
        draw().catch(() => {})
      }
    })
  }
  process.once('SIGINT', () => { onQuit() })
  let last = ''
  const draw = async (): Promise<void> => {
    let text: string
    try {
      const network = await call('GET', '/v1/network')
      text = `aistack top  network ${network.network}  ${network.up}/${network.nodes.length} up  sort ${SORTS[sortKey].key}${reverse ? ' (reversed)' : ''}  ${new Date().toISOString().slice(11, 19)}\n\n${topTable(network.nodes, sortKey, reverse)}\n\nkeys: c cpu  m memory  l load  r rate  p p95  e errors  g gpu  s status  n peer  q quit`
    } catch (err: any) {
      text = `aistack top: ${String(err.message ?? err)}`
    }
    if (text !== last || process.stdout.isTTY) process.stdout.write(process.stdout.isTTY ? `\x1b[H\x1b[2J${text}\n` : `${text}\n\n`)
    last = text
  }
  await draw()
  const timer = setInterval(() => { draw().catch(() => {}) }, intervalMs)
  await quit
  clearInterval(timer)
  if (stdin.isTTY) {
    stdin.setRawMode(false)
    stdin.pause()
  }
  return 0
}

interface Span {
  spanId: string
  parentId: string | null
  peerId: string
  name: string
  startMs: number
  durationMs: number
  status: string
  attributes: Record<string, unknown>
}

/** A trace as a tree: offsets from the first span's start, durations, node and attributes */
export function traceTree (trace: { traceId: string, spans: Span[] }): string {
  const spans = [...trace.spans].sort((a, b) => a.startMs - b.startMs)
  const t0 = spans[0]?.startMs ?? 0
  const ids = new Set(spans.map(s => s.spanId))
  const children = new Map<string | null, Span[]>()
  for (const s of spans) {
    const parent = s.parentId != null && ids.has(s.parentId) ? s.parentId : null
    children.set(parent, [...(children.get(parent) ?? []), s])
  }
  const lines = [`trace ${trace.traceId}  (${spans.length} span${spans.length === 1 ? '' : 's'})`]
  const walk = (parent: string | null, prefix: string): void => {
    const list = children.get(parent) ?? []
    list.forEach((s, i) => {
      const lastOne = i === list.length - 1
      const attrs = Object.entries(s.attributes).map(([k, v]) => `${k.replace(/^aistack\./, '')}=${String(v)}`).join(' ')
      lines.push(`${prefix}${lastOne ? '└─' : '├─'} ${s.name}  +${(s.startMs - t0).toFixed(1)} ms  ${s.durationMs.toFixed(1)} ms  on ${short(s.peerId)}${s.status === 'error' ? '  ERROR' : ''}${attrs === '' ? '' : `  ${attrs}`}`)
      walk(s.spanId, `${prefix}${lastOne ? '   ' : '│  '}`)
    })
  }
  walk(null, '')
  return lines.join('\n')
}

export async function traceCommand (args: string[]): Promise<number> {
  const { values, positionals } = parse('trace', args, { home: { type: 'string' }, json: { type: 'boolean' } }, { positionals: 1 })
  if (values.help === true) {
    console.log(TRACE_HELP)
    return 0
  }
  const id = positionals[0]
  if (id == null) throw new UsageError('trace: give a trace id (the traceId of an ask)')
  if (!/^[0-9a-fA-F]{32}$/.test(id)) throw new UsageError(`trace: "${id}" is not a trace id (32 hex digits)`)
  const { call } = await apiFor(resolveHome(values.home as string | undefined))
  const trace = await call('GET', `/v1/traces/${id.toLowerCase()}`)
  if (values.json === true) printJson(trace)
  else console.log(traceTree(trace))
  return 0
}
