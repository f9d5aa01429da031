// The network as a graph (cytoscape): every node of the telemetry table, coloured by liveness,
// this node's connections labelled with their encryption, and the connections between other
// nodes as their telemetry records name them (`links`, dashed).
import cytoscape from 'cytoscape'
import { short } from './dom.js'

const STYLE = [
  { selector: 'node', style: { label: 'data(label)', 'font-size': 12, 'text-valign': 'bottom', 'text-margin-y': 4, 'background-color': '#1a7f37', width: 26, height: 26 } },
  { selector: 'node[status = "down"]', style: { 'background-color': '#cf222e' } },
  { selector: 'node[status = "unknown"]', style: { 'background-color': '#8c959f' } },
  { selector: 'node[?self]', style: { 'border-width': 3, 'border-color': '#0969da', width: 34, height: 34 } },
  { selector: 'edge', style: { width: 2, 'line-color': '#8c959f', label: 'data(label)', 'font-size': 10, color: '#57606a', 'text-background-color': '#fff', 'text-background-opacity': 1, 'curve-style': 'bezier' } },
  { selector: 'edge[?pq]', style: { 'line-color': '#1a7f37' } },
  { selector: 'edge[?remote]', style: { width: 1, 'line-style': 'dashed', 'line-color': '#afb8c1', label: '' } }
]

/** The graph in `container`; `update()` takes the network table and this node's peers. */
export class NetworkGraph {
  constructor (container) {
    this.cy = cytoscape({ container, style: STYLE, elements: [], userZoomingEnabled: false, boxSelectionEnabled: false, autoungrabify: true })
    this.shape = ''
  }

  /**
   * @param {{self: string, nodes: Array<{peerId: string, status: string, links?: string[]}>}} network - GET /v1/network
   * @param {Array<{peerId: string, encryption: string, transport: string, pq: boolean}>} peers - GET /v1/peers
   */
  update (network, peers) {
    const cy = this.cy
    const wanted = new Map()
    for (const n of network.nodes) wanted.set(n.peerId, { status: n.status, self: n.self === true })
    for (const p of peers) if (!wanted.has(p.peerId)) wanted.set(p.peerId, { status: 'unknown', self: false })
    const edges = new Map()
    for (const p of peers) {
      const id = `${network.self}|${p.peerId}`
      // one edge per peer, however many connections: the first one's encryption
      if (!edges.has(id)) edges.set(id, { id, source: network.self, target: p.peerId, label: `${p.encryption} · ${p.transport}`, pq: p.pq === true })
    }
    // links between other nodes, once per pair; this node's own come from its peers above
    for (const n of network.nodes) {
      if (n.self === true) continue
      for (const other of n.links ?? []) {
        if (other === network.self || other === n.peerId || !wanted.has(other)) continue
        const [a, b] = n.peerId < other ? [n.peerId, other] : [other, n.peerId]
        const id = `link:${a}|${b}`
        if (!edges.has(id)) edges.set(id, { id, source: a, target: b, label: '', remote: true })
      }
    }
    cy.batch(() => {
      cy.elements().forEach(e => {
        if (e.isNode() ? !wanted.has(e.id()) : !edges.has(e.id())) cy.remove(e)
      })
      for (const [id, n] of wanted) {
        const data = { id, label: short(id), status: n.status, self: n.self }
        const existing = cy.getElementById(id)
        if (existing.nonempty()) existing.data(data)
        else cy.add({ group: 'nodes', data })
      }
      for (const [id, e] of edges) {
        const existing = cy.getElementById(id)
        if (existing.nonempty()) existing.data(e)
        else cy.add({ group: 'edges', data: e })
      }
    })
    // for tests and the curious: how many links between other nodes are drawn
    cy.container().dataset.links = String([...edges.values()].filter(e => e.remote === true).length)
    const shape = [...wanted.keys()].sort().join(',') + '/' + [...edges.keys()].sort().join(',')
    if (shape !== this.shape) {
      this.shape = shape
      // this node in the middle, the others on an ellipse as wide as the container
      const others = cy.nodes().filter(n => !n.data('self')).sort((a, b) => a.id().localeCompare(b.id()))
      const box = this.cy.container().getBoundingClientRect()
      const ry = Math.max(90, box.height / 2 - 50)
      const rx = Math.max(ry, box.width / 2 - 90)
      const positions = new Map(others.map((n, i) => {
        const a = -Math.PI / 2 + 2 * Math.PI * i / others.length
        return [n.id(), { x: rx * Math.cos(a), y: ry * Math.sin(a) }]
      }))
      cy.layout({ name: 'preset', positions: n => positions.get(n.id()) ?? { x: 0, y: 0 }, animate: false }).run()
      cy.fit(undefined, 30)
    }
  }
}
