import { readFile } from 'node:fs/promises'
import { Worker } from 'node:worker_threads'
import { api, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'

/*
 * Figures of a node process under a flood, read from outside as an operator would: resident
 * memory (/proc/<pid>/status), CPU time (/proc/<pid>/stat), /healthz latency, and the node's own
 * gauges on /metrics. Linux only (the test machines and CI are Linux).
 */

/** clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on every Linux architecture in use) */
const USER_HZ = 100

/** resident set size of a process in MiB */
export async function rssMiB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024
}

/** CPU time (user + system) a process has used, in seconds */
export async function cpuSeconds (pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ
}

/**
 * A gauge or counter of the node's /metrics, or undefined when absent; `labels` as written in the
 * exposition format, e.g. `reason="oversize"`
 */
export async function metric (node: NodeProcess, name: string, labels?: string): Promise<number | undefined> {
  const { status, text } = await api(node.run, 'GET', '/metrics')
  if (status !== 200) throw new Error(`GET /metrics answered ${status}`)
  const line = text.split('\n').find(l => l.startsWith(labels == null ? `${name} ` : `${name}{${labels}} `))
  return line == null ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

export interface Latency {
  n: number
  p50: number
  p99: number
  max: number
  failed: number
  /** why requests failed (distinct messages, at most 5) */
  errors?: string[]
}

function summarise (times: number[], failed: number): Latency {
  const s = [...times].sort((a, b) => a - b)
  const at = (q: number): number => s.length === 0 ? NaN : Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))])
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s.length === 0 ? NaN : Math.round(s[s.length - 1]), failed }
}

/*
 * The sampler runs in a worker thread: the test's own thread may be busy driving the flood, and
 * its delays must not count as the node's.
 */
const SAMPLER = `
const { parentPort, workerData } = require('node:worker_threads')
const { readFileSync } = require('node:fs')
const http = require('node:http')
const times = []
const errors = []
let peakRssKiB = 0
let on = true
parentPort.on('message', () => { on = false })
// a new connection per request (agent: false): a kept-alive socket the server closes as idle
// while a request is sent on it would count as the node failing
const healthz = () => new Promise((resolve, reject) => {
  const req = http.get(workerData.url, { agent: false, timeout: 30000 }, res => {
    res.resume()
    res.on('end', () => { resolve(res.statusCode) })
    res.on('error', reject)
  })
  req.on('timeout', () => { req.destroy(new Error('no answer in 30 s')) })
  req.on('error', reject)
})
;(async () => {
  while (on) {
    const t0 = performance.now()
    try {
      const status = await healthz()
      if (status === 200) times.push(performance.now() - t0)
      else errors.push('status ' + status)
    } catch (err) {
      errors.push(String(err))
    }
    try {
      peakRssKiB = Math.max(peakRssKiB, Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/' + workerData.pid + '/status', 'utf8'))[1]))
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  parentPort.postMessage({ times, errors, peakRssKiB })
})()
`

/**
 * Sends GET /healthz one after another (each waits for the last) from a worker thread until
 * `stop()`, timing each; a request that fails or answers other than 200 counts as failed.
 * Samples the node's RSS meanwhile.
 */
export function sampleWhile (node: NodeProcess): { stop: () => Promise<{ healthz: Latency, peakRssMiB: number }> } {
  const worker = new Worker(SAMPLER, { eval: true, workerData: { url: `${node.run.api.url}/healthz`, pid: node.child.pid } })
  const done = new Promise<{ times: number[], errors: string[], peakRssKiB: number }>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  return {
    stop: async () => {
      worker.postMessage('stop')
      const r = await done
      await worker.terminate()
      const healthz = summarise(r.times, r.errors.length)
      if (r.errors.length > 0) healthz.errors = [...new Set(r.errors)].slice(0, 5)
      return { healthz, peakRssMiB: r.peakRssKiB / 1024 }
    }
  }
}

/** `n` GET /healthz one after another */
export async function healthzLatency (node: NodeProcess, n = 20): Promise<Latency> {
  const times: number[] = []
  let failed = 0
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    const { status } = await api(node.run, 'GET', '/healthz', { token: null }).catch(() => ({ status: 0 }))
    if (status === 200) times.push(performance.now() - t0)
    else failed++
  }
  return summarise(times, failed)
}

/** share of one core the process used over `ms` of wall time (no requests sent meanwhile) */
export async function idleCpuShare (node: NodeProcess, ms: number): Promise<number> {
  const pid = node.child.pid as number
  const c0 = await cpuSeconds(pid)
  const t0 = performance.now()
  await new Promise(resolve => setTimeout(resolve, ms))
  return (await cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000)
}

/** Figures of one flood, printed in the test output and in docs/security.md */
export interface FloodFigures {
  name: string
  rssBeforeMiB: number
  rssPeakMiB: number
  rssAfterMiB: number
  cpuDuringS: number
  floodS: number
  cpuIdleAfter: number
  healthzBefore: Latency
  healthzDuring: Latency
  healthzAfter: Latency
  extra?: string
}

export function formatFigures (f: FloodFigures): string {
  const l = (x: Latency): string => `p50 ${x.p50} / p99 ${x.p99} / max ${x.max} ms (${x.n} requests${x.failed > 0 ? `, ${x.failed} failed: ${(x.errors ?? []).join('; ')}` : ''})`
  return [
    `${f.name}: ${f.floodS.toFixed(1)} s of flood, ${f.cpuDuringS.toFixed(1)} CPU-s used by the node meanwhile`,
    `  RSS ${f.rssBeforeMiB.toFixed(0)} MiB before, ${f.rssPeakMiB.toFixed(0)} at the peak, ${f.rssAfterMiB.toFixed(0)} after`,
    `  /healthz before ${l(f.healthzBefore)}`,
    `  /healthz during ${l(f.healthzDuring)}`,
    `  /healthz after  ${l(f.healthzAfter)}`,
    `  CPU after the flood left: ${(f.cpuIdleAfter * 100).toFixed(1)} % of a core`,
    ...(f.extra != null ? [`  ${f.extra}`] : [])
  ].join('\n')
}

/**
 * Measures a node process through a flood: /healthz latency and RSS before; CPU time, RSS peak
 * and /healthz latency while `run` sends the flood and until `settled` holds (the node has taken
 * in what it received); then `leave` (the hostile side goes), CPU share over 3 s of quiet, RSS and
 * /healthz latency after.
 */
export async function measureFlood (node: NodeProcess, name: string, run: () => Promise<void>, settled: () => Promise<boolean>, leave: () => Promise<void>): Promise<FloodFigures> {
  const pid = node.child.pid as number
  const healthzBefore = await healthzLatency(node)
  const rssBeforeMiB = await rssMiB(pid)
  const cpu0 = await cpuSeconds(pid)
  const t0 = performance.now()
  const sampler = sampleWhile(node)
  let during
  try {
    await run()
    await waitFor(settled, { timeoutMs: 60_000, intervalMs: 250, what: `the node to take in the ${name}` })
  } finally {
    during = await sampler.stop()
  }
  const floodS = (performance.now() - t0) / 1000
  const cpuDuringS = await cpuSeconds(pid) - cpu0
  await leave()
  const cpuIdleAfter = await idleCpuShare(node, 3000)
  const healthzAfter = await healthzLatency(node)
  return {
    name,
    rssBeforeMiB,
    rssPeakMiB: Math.max(during.peakRssMiB, rssBeforeMiB),
    rssAfterMiB: await rssMiB(pid),
    cpuDuringS,
    floodS,
    cpuIdleAfter,
    healthzBefore,
    healthzDuring: during.healthz,
    healthzAfter
  }
}
