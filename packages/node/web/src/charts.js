// Telemetry over time (uPlot): one chart per measure, one line per node, from the samples the
// page polls every 2 s (the last 5 minutes are kept).
import UPlot from 'uplot'
import { short } from './dom.js'

const KEEP = 150
const COLOURS = ['#0969da', '#1a7f37', '#bf3989', '#9a6700', '#8250df', '#cf222e', '#1b7c83', '#953800']

/** A chart of one measure per node; `push()` adds a sample of the network table. */
export class NodeChart {
  /**
   * @param {HTMLElement} container
   * @param {(node: object) => number | undefined} measure - the value of a node, e.g. its CPU %
   */
  constructor (container, measure) {
    this.container = container
    this.measure = measure
    this.times = []
    this.series = new Map() // peerId -> values aligned with times
    this.plot = undefined
    this.peers = ''
  }

  push (timeMs, nodes) {
    this.times.push(timeMs / 1000)
    for (const values of this.series.values()) values.push(null)
    for (const n of nodes) {
      if (!this.series.has(n.peerId)) this.series.set(n.peerId, this.times.map(() => null))
      const v = n.status === 'up' ? this.measure(n) : undefined
      this.series.get(n.peerId)[this.times.length - 1] = v ?? null
    }
    if (this.times.length > KEEP) {
      this.times.shift()
      for (const values of this.series.values()) values.shift()
    }
    this.container.dataset.samples = String(this.times.length)
    this.draw()
  }

  draw () {
    const peers = [...this.series.keys()]
    const data = [this.times, ...peers.map(p => this.series.get(p))]
    if (this.plot == null || peers.join() !== this.peers) {
      this.plot?.destroy()
      this.peers = peers.join()
      const width = Math.max(300, this.container.clientWidth || 400)
      this.plot = new UPlot({
        width,
        height: 200,
        scales: { y: { range: (u, min, max) => [0, Math.max(1, max ?? 1) * 1.1] } },
        series: [{}, ...peers.map((p, i) => ({ label: short(p), stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: false }))],
        axes: [{}, { size: 50 }]
      }, data, this.container)
    } else {
      this.plot.setData(data)
    }
  }
}
