// Small DOM helpers: every text from the API goes in as text, never as HTML.

/** Creates an element with attributes (`class`, `data-*`, `title`…) and children (nodes or text). */
export function el (tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value != null && value !== false) node.setAttribute(name, String(value))
  }
  for (const child of children) {
    if (child == null) continue
    node.append(child instanceof window.Node ? child : String(child))
  }
  return node
}

/** Replaces the rows of a table body. */
export function setRows (tbody, rows) {
  tbody.replaceChildren(...rows)
}

/** The short form of a peer id shown in the page: its last 8 characters. */
export function short (peerId) {
  return peerId.length > 12 ? `…${peerId.slice(-8)}` : peerId
}

/** A number of bytes as MiB. */
export function mib (bytes) {
  return bytes == null ? '' : `${(bytes / 1048576).toFixed(0)} MiB`
}

/** How long ago, from milliseconds. */
export function ago (ms) {
  if (ms == null) return ''
  if (ms < 1000) return 'now'
  if (ms < 120_000) return `${Math.round(ms / 1000)} s ago`
  return `${Math.round(ms / 60_000)} min ago`
}

/** The highest p95 latency of a node's capabilities, in ms, or undefined without any. */
export function p95Of (node) {
  const caps = node.capabilities ?? []
  return caps.length === 0 ? undefined : Math.max(...caps.map(c => c.p95Ms ?? 0))
}
