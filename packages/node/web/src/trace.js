// A trace (GET /v1/traces/:id) as an indented tree of spans with their start offsets and
// durations, like `aistack trace`.
import { short } from './dom.js'

/**
 * @param {{traceId: string, spans: Array<{spanId: string, parentId?: string, peerId: string, name: string, startMs: number, durationMs: number, status?: string, attributes?: object}>}} trace
 * @returns {string[]} the lines of the tree
 */
function plural (n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

export function traceLines (trace) {
  const spans = trace.spans ?? []
  if (spans.length === 0) return [`trace ${trace.traceId}: no spans`]
  const t0 = Math.min(...spans.map(s => s.startMs))
  const ids = new Set(spans.map(s => s.spanId))
  const children = new Map()
  for (const s of spans) {
    const parent = s.parentId != null && ids.has(s.parentId) ? s.parentId : ''
    if (!children.has(parent)) children.set(parent, [])
    children.get(parent).push(s)
  }
  const nodes = new Set(spans.map(s => s.peerId)).size
  const lines = [`trace ${trace.traceId}: ${plural(spans.length, 'span')} on ${plural(nodes, 'node')}`]
  const walk = (parent, depth) => {
    for (const s of (children.get(parent) ?? []).sort((a, b) => a.startMs - b.startMs)) {
      const attrs = Object.entries(s.attributes ?? {}).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')
      lines.push(`${'  '.repeat(depth)}${s.name}  ${short(s.peerId)}  +${(s.startMs - t0).toFixed(1)} ms  ${s.durationMs.toFixed(1)} ms${s.status != null && s.status !== 'ok' ? `  ${s.status}` : ''}${attrs !== '' ? `  ${attrs}` : ''}`)
      if (depth < 32) walk(s.spanId, depth + 1)
    }
  }
  walk('', 0)
  return lines
}
