// Benchmark: the @aistack/task queue with one submitter and four workers as
// separate processes against a NATS JetStream work queue (file storage, four
// pull workers on one durable consumer with explicit acks, each result
// published back to the submitter). Echo handler, 256-byte payloads.
//
//   npm run bench:tasks -- --help
//
// Each system of ours is measured taking turns with NATS, both up: the speed
// of a shared machine drifts by a factor of two within seconds, and turns give
// both the same machine. Throughput: after a warm-up, `--tasks` round trips
// with `--window` in flight, in two turns per system (ours, NATS, NATS, ours).
// Sequential latency: `--seq` round trips one after the other, in turns of
// `--chunk` (ours, NATS, NATS, ours, ours, …).
//
// Our workers are four `aistack start` processes (the node binary, a builtin
// echo capability in their config.json, TCP on 127.0.0.1). The submitter runs
// three ways (`--modes`):
//   inproc  an aistack node (createAgentNode, LevelDB journal on disk) inside
//           this process, submitting through the task service's API, as the
//           NATS client runs inside this process;
//   api     a fifth `aistack start` process driven through its HTTP API:
//           POST /v1/tasks per task, results from GET /v1/events?type=task.completed.
//   oneprocess  for reference, the submitter and the four workers all inside
//           this process (createAgentNode; the cost of the protocol without the
//           processes' own overheads).
// nats-server runs as a child process.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createAgentNode } from '@aistack/node'
import { multiaddr } from '@multiformats/multiaddr'
import { AckPolicy, RetentionPolicy, StorageType, connect as natsConnect } from 'nats'
import { benchArgs, failUsage } from './args.js'

const ALL_MODES = ['inproc', 'api', 'oneprocess']
const USAGE = `Usage: npm run bench:tasks -- [--tasks 8000] [--seq 1000] [--chunk 50] [--warmup 3000]
  [--workers 4] [--slots 16] [--window 256] [--modes inproc,api,oneprocess] [--only ours|nats]
  [--profile-dir DIR]
--tasks: round trips at saturation per system, --window of them in flight, after --warmup;
--seq: sequential round trips per system, in turns of --chunk with NATS;
--slots: concurrency of each worker's echo capability;
--modes: our submitter in this process (inproc, the row held to the bar), a fifth process
  through the HTTP API (api), all nodes in this process (oneprocess);
--only: measure one side alone; --profile-dir: CPU profiles of the node processes go there.`
const args = benchArgs(USAGE, {
  tasks: 8000,
  seq: 1000,
  chunk: 50,
  warmup: 3000,
  workers: 4,
  slots: 16,
  window: 256,
  modes: ALL_MODES.join(','),
  only: undefined,
  'profile-dir': undefined
})
const TASKS = args.tasks
const SEQ = args.seq
/** sequential round trips per turn */
const CHUNK = args.chunk
const WORKERS = args.workers
const SLOTS = args.slots
const WINDOW = args.window
const PAYLOAD_BYTES = 256
/** round trips before measuring: the worker processes' code gets optimised by then */
const WARMUP = args.warmup
const MODES = args.modes.split(',')
for (const mode of MODES) {
  if (!ALL_MODES.includes(mode)) failUsage(`--modes: unknown mode "${mode}" (one or more of ${ALL_MODES.join(', ')})`, USAGE)
}
const ONLY = args.only
if (ONLY != null && ONLY !== 'ours' && ONLY !== 'nats') failUsage(`--only takes ours or nats, not "${ONLY}"`, USAGE)
const BIN = fileURLToPath(new URL('../../packages/node/dist/src/bin.js', import.meta.url))
/** write CPU profiles of the node processes here (they then stop with SIGINT, which writes them) */
const PROFILE_DIR = args['profile-dir']
const CLOCK_TICKS = 100

/** CPU time (user + system) of a process in ms, from /proc (Linux) */
function cpuMs (pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1000 / CLOCK_TICKS
  } catch {
    return NaN
  }
}

function percentile (values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

/** A 256-character ASCII string (256 bytes), different for each i */
function payload (i) {
  const head = `task ${i} `
  return head + 'x'.repeat(PAYLOAD_BYTES - head.length)
}

async function freePort () {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => { resolve(port) })
    })
    srv.on('error', reject)
  })
}

async function until (check, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** Run `fn(i)` for i in [0, n) with at most `window` in flight */
async function saturate (n, window, fn) {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(window, n) }, async () => {
    while (next < n) {
      await fn(next++)
    }
  }))
}

/**
 * Waits until the processes are idle (each used under 5 % of a core over a quarter of a
 * second): a node that has just started publishes its capabilities in the DHT and fills its
 * routing table for a few seconds, which is not what is measured.
 */
async function settled (pids, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  let before = pids.map(cpuMs)
  while (Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 250))
    const now = pids.map(cpuMs)
    if (now.every((ms, i) => ms - before[i] < 12.5)) return
    before = now
  }
  console.error('the worker processes did not settle; measuring anyway')
}

/** The order of the systems in a turn: reversed every other turn (a b, b a, a b, …) */
function turnOrder (count, turn) {
  const order = Array.from({ length: count }, (_, k) => k)
  return turn % 2 === 0 ? order : order.reverse()
}

/**
 * Each system warmed up with `WARMUP` round trips, then `TASKS` round trips
 * each with `WINDOW` in flight, in two turns per system (a b b a), each
 * from quiet processes. `system.pids` are the other processes taking part:
 * their CPU time per task is reported too.
 */
async function throughput (systems) {
  for (const system of systems) {
    await settled([process.pid, ...system.pids])
    await saturate(WARMUP, 64, async i => system.roundTrip(payload(i)))
  }
  const totals = systems.map(system => ({ tasks: 0, ms: 0, self: 0, others: system.pids.map(() => 0) }))
  for (let turn = 0; turn < 2; turn++) {
    for (const k of turnOrder(systems.length, turn)) {
      const system = systems[k]
      const total = totals[k]
      const n = turn === 0 ? Math.floor(TASKS / 2) : TASKS - total.tasks
      await settled([process.pid, ...systems.flatMap(s => s.pids)])
      const cpu0 = process.cpuUsage()
      const others0 = system.pids.map(cpuMs)
      const t0 = performance.now()
      await saturate(n, WINDOW, async i => system.roundTrip(payload(i)))
      total.ms += performance.now() - t0
      const cpu = process.cpuUsage(cpu0)
      total.self += (cpu.user + cpu.system) / 1000
      system.pids.forEach((pid, i) => { total.others[i] += cpuMs(pid) - others0[i] })
      total.tasks += n
    }
  }
  return totals.map(total => ({
    throughput: total.tasks / total.ms * 1000,
    cpuPerTask: { self: total.self / total.tasks, others: total.others.map(ms => ms / total.tasks) }
  }))
}

/**
 * `SEQ` round trips one after the other on each of `systems`, the systems
 * taking turns of `CHUNK` (a b b a a b …), from quiet processes
 */
async function sequential (systems) {
  await settled([process.pid, ...systems.flatMap(system => system.pids)])
  const lat = systems.map(() => [])
  let i = 0
  for (let turn = 0; lat.some(l => l.length < SEQ); turn++) {
    for (const k of turnOrder(systems.length, turn)) {
      for (let n = 0; n < CHUNK && lat[k].length < SEQ; n++) {
        const s = performance.now()
        await systems[k].roundTrip(payload(i++))
        lat[k].push(performance.now() - s)
      }
    }
  }
  return lat.map(l => ({ p50: percentile(l, 0.5), p99: percentile(l, 0.99) }))
}

/** Throughput, then sequential latency, of systems measured in turns */
async function compare (systems) {
  const rates = await throughput(systems)
  const latencies = await sequential(systems)
  return systems.map((_, k) => ({ ...rates[k], ...latencies[k] }))
}

// ---------------------------------------------------------------- ours

/** `aistack start` on a fresh home; resolves once its run.json is written */
async function startNode (capabilities, extraArgs = []) {
  const home = mkdtempSync(join(tmpdir(), 'aistack-bench-tasks-'))
  writeFileSync(join(home, 'config.json'), JSON.stringify({ capabilities, logLevel: 'warn' }))
  const profile = PROFILE_DIR != null ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : []
  const child = spawn(process.execPath, [...profile, BIN, 'start', '--home', home, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', ...extraArgs], { stdio: ['ignore', 'ignore', 'inherit'] })
  const run = await until(() => {
    try {
      const info = JSON.parse(readFileSync(join(home, 'run.json'), 'utf8'))
      return info.pid === child.pid ? info : undefined
    } catch {
      return undefined
    }
  }, `aistack start in ${home}`)
  return {
    run,
    pid: child.pid,
    stop: async () => {
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.kill(PROFILE_DIR != null ? 'SIGINT' : 'SIGKILL')
      await exited
      rmSync(home, { recursive: true, force: true })
    }
  }
}

const ECHO = [{ name: 'echo', description: 'Echo the input back', handler: { type: 'builtin', name: 'echo', concurrency: SLOTS } }]

async function startWorkers () {
  return Promise.all(Array.from({ length: WORKERS }, async () => startNode(ECHO)))
}

/** Workers as nodes inside this process, shaped like `startNode`'s */
async function startInProcessWorkers () {
  return Promise.all(Array.from({ length: WORKERS }, async () => {
    const node = await createAgentNode({ config: { listen: ['/ip4/127.0.0.1/tcp/0'], capabilities: ECHO, logLevel: 'warn' }, metricsRegistry: false })
    await node.start()
    return {
      run: { multiaddrs: node.libp2p.getMultiaddrs().map(String) },
      stop: async () => { await Promise.race([node.stop(), new Promise(resolve => setTimeout(resolve, 5000))]) }
    }
  }))
}

/** Submitter inside this process: an aistack node with its LevelDB journal */
async function startInProcessSubmitter (workers) {
  const home = mkdtempSync(join(tmpdir(), 'aistack-bench-submitter-'))
  const node = await createAgentNode({ home, config: { listen: ['/ip4/127.0.0.1/tcp/0'], logLevel: 'warn' }, metricsRegistry: false })
  await node.start()
  const tasks = node.libp2p.services.tasks
  for (const w of workers) {
    await node.libp2p.dial(multiaddr(w.run.multiaddrs[0]))
  }
  await until(() => node.libp2p.services.pubsub.getSubscribers(tasks.tasksTopic).length >= WORKERS, 'workers to subscribe')
  const waiting = new Map()
  tasks.addEventListener('event', (evt) => {
    const e = evt.detail
    if (e.type === 'task.completed' && e.local) {
      const resolve = waiting.get(e.taskId)
      if (resolve != null) {
        waiting.delete(e.taskId)
        resolve(e.result)
      }
    }
  })
  const roundTrip = async (input) => {
    const done = Promise.withResolvers()
    const { id } = await tasks.submit({ capability: 'echo', input })
    // results arrive in a later tick: registering after submit() returns is in time
    waiting.set(id, done.resolve)
    return done.promise
  }
  return {
    roundTrip,
    pids: workers.map(w => w.pid).filter(pid => pid != null),
    stop: async () => {
      await Promise.race([node.stop(), new Promise(resolve => setTimeout(resolve, 5000))])
      rmSync(home, { recursive: true, force: true })
    }
  }
}

/** Submitter as a process, through its HTTP API */
async function startApiSubmitter (workers) {
  const submitter = await startNode([], workers.flatMap(w => ['--bootstrap', w.run.multiaddrs[0]]))
  const { url, token } = submitter.run.api
  const headers = { authorization: `Bearer ${token}` }
  const results = new Map()
  const waiting = new Map()
  const controller = new AbortController()
  const response = await fetch(`${url}/v1/events?type=task.completed`, { headers, signal: controller.signal })
  const reader = response.body.getReader()
  ;(async () => {
    const decoder = new TextDecoder()
    let buffer = ''
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      buffer += decoder.decode(value, { stream: true })
      let end
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (data == null) continue
        const e = JSON.parse(data)
        if (!e.local) continue
        const resolve = waiting.get(e.taskId)
        if (resolve != null) {
          waiting.delete(e.taskId)
          resolve(e.result)
        } else {
          results.set(e.taskId, e.result)
        }
      }
    }
  })().catch(() => {})
  // the workers are connected and subscribed once a task completes
  await until(async () => {
    const res = await fetch(`${url}/v1/peers`, { headers })
    return (await res.json()).peers.length >= WORKERS
  }, 'the submitter to connect to the workers')
  // node:http on kept-alive connections: a client lighter than fetch, as the NATS client is
  const agent = new HttpAgent({ keepAlive: true, maxSockets: WINDOW })
  const { hostname, port } = new URL(url)
  const post = async (body) => new Promise((resolve, reject) => {
    const req = httpRequest({ agent, hostname, port, path: '/v1/tasks', method: 'POST', headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => { text += chunk })
      res.on('end', () => { resolve({ status: res.statusCode, text }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
  const roundTrip = async (input) => {
    const res = await post(JSON.stringify({ capability: 'echo', input }))
    if (res.status !== 202) throw new Error(`submit failed: ${res.status} ${res.text}`)
    const { id } = JSON.parse(res.text)
    if (results.has(id)) {
      const r = results.get(id)
      results.delete(id)
      return r
    }
    const done = Promise.withResolvers()
    waiting.set(id, done.resolve)
    return done.promise
  }
  return {
    roundTrip,
    pids: [submitter.pid, ...workers.map(w => w.pid)],
    stop: async () => {
      agent.destroy()
      controller.abort()
      await submitter.stop()
    }
  }
}

// ---------------------------------------------------------------- NATS JetStream

function ensureNatsServer () {
  try {
    execFileSync('nats-server', ['--version'], { stdio: 'ignore' })
  } catch {
    console.log('nats-server missing: installing the Debian package nats-server')
    execFileSync('apt-get', ['install', '-y', 'nats-server'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  }
}

async function startNats () {
  ensureNatsServer()
  const dir = mkdtempSync(join(tmpdir(), 'aistack-bench-nats-'))
  const port = await freePort()
  const server = spawn('nats-server', ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' })
  let nc
  for (let i = 0; i < 100 && nc == null; i++) {
    try {
      nc = await natsConnect({ servers: `127.0.0.1:${port}` })
    } catch {
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
  if (nc == null) throw new Error('nats-server did not start')
  const jsm = await nc.jetstreamManager()
  await jsm.streams.add({ name: 'TASKS', subjects: ['tasks.>'], retention: RetentionPolicy.Workqueue, storage: StorageType.File })
  await jsm.consumers.add('TASKS', { durable_name: 'workers', ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000 })
  const js = nc.jetstream()
  // four workers, each its own connection pulling from the durable consumer
  const workerConns = []
  for (let i = 0; i < WORKERS; i++) {
    const wc = await natsConnect({ servers: `127.0.0.1:${port}` })
    workerConns.push(wc)
    const consumer = await wc.jetstream().consumers.get('TASKS', 'workers')
    const messages = await consumer.consume({ max_messages: SLOTS })
    ;(async () => {
      for await (const m of messages) {
        const id = m.subject.slice('tasks.'.length)
        wc.publish(`results.${id}`, m.data)
        m.ack()
      }
    })().catch(() => {})
  }
  const waiting = new Map()
  nc.subscribe('results.>', {
    callback: (_err, msg) => {
      const id = msg.subject.slice('results.'.length)
      const resolve = waiting.get(id)
      if (resolve != null) {
        waiting.delete(id)
        resolve(msg.data)
      }
    }
  })
  let seq = 0
  const encoder = new TextEncoder()
  const roundTrip = async (input) => {
    const id = `t${++seq}`
    const done = Promise.withResolvers()
    waiting.set(id, done.resolve)
    await js.publish(`tasks.${id}`, encoder.encode(input))
    return done.promise
  }
  return {
    roundTrip,
    pids: [server.pid],
    stop: async () => {
      for (const wc of workerConns) {
        await wc.close()
      }
      await nc.close()
      server.kill('SIGTERM')
      await new Promise(resolve => server.once('exit', resolve))
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

// ---------------------------------------------------------------- report

const none = { throughput: NaN, p50: NaN, p99: NaN }
/** rows of ours: [name, figures, NATS's figures from the same turns, mode] */
const ours = []
/** a system of ours, measured in turns with NATS */
async function measureOurs (mode, name, start, natsSystem) {
  const system = await start()
  try {
    const [result, natsResult = none] = await compare(natsSystem != null ? [system, natsSystem] : [system])
    return [name, result, natsResult, mode]
  } finally {
    await system.stop()
  }
}
const natsSystem = ONLY === 'ours' ? undefined : await startNats()
let nats = none
try {
  if (ONLY !== 'nats') {
    const workers = await startWorkers()
    try {
      if (MODES.includes('inproc')) ours.push(await measureOurs('inproc', `submitter in this process, ${WORKERS} worker processes`, async () => startInProcessSubmitter(workers), natsSystem))
      if (MODES.includes('api')) ours.push(await measureOurs('api', `submitter process via HTTP API, ${WORKERS} worker processes`, async () => startApiSubmitter(workers), natsSystem))
    } finally {
      await Promise.all(workers.map(async w => w.stop()))
    }
    if (MODES.includes('oneprocess')) {
      const inProcess = await startInProcessWorkers()
      try {
        ours.push(await measureOurs('oneprocess', `all ${WORKERS + 1} nodes in this process (reference)`, async () => startInProcessSubmitter(inProcess), natsSystem))
      } finally {
        await Promise.all(inProcess.map(async w => w.stop()))
      }
    }
    // NATS's row: from the turns it took with the first of our rows
    nats = ours[0]?.[2] ?? none
  } else if (natsSystem != null) {
    [nats] = await compare([natsSystem])
  }
} finally {
  await natsSystem?.stop()
}
const fmt = (r) => `${r.throughput.toFixed(0).padStart(7)} tasks/s   p50 ${r.p50.toFixed(2).padStart(6)} ms   p99 ${r.p99.toFixed(2).padStart(6)} ms`
console.log(`tasks: ${TASKS} at saturation (window ${WINDOW}) in two turns, ${SEQ} sequential in turns of ${CHUNK}${ONLY == null ? ', each row of ours taking turns with NATS' : ''}; ${WORKERS} workers x ${SLOTS} slots; echo handler, ${PAYLOAD_BYTES}-byte payloads`)
if (natsSystem != null) console.log(`${'NATS JetStream (file storage)'.padEnd(60)}${fmt(nats)}`)
for (const [name, r] of ours) console.log(`${('@aistack/task, ' + name).padEnd(60)}${fmt(r)}`)
// CPU time per task at saturation: this process (the submitter or NATS client), then the others
const cpuLine = (name, r) => r.cpuPerTask == null
  ? ''
  : `CPU per task, ${name}: this process ${r.cpuPerTask.self.toFixed(3)} ms, others ${r.cpuPerTask.others.map(x => x.toFixed(3)).join(' + ') || '-'} ms`
if (natsSystem != null) console.log(cpuLine('NATS (server)', nats))
for (const [name, r] of ours) console.log(cpuLine(name, r))
// the bar is for the submitter in this process, as the NATS client is: the other rows are for reference
for (const [name, r, natsTurns, mode] of natsSystem != null ? ours : []) {
  const tput = r.throughput / natsTurns.throughput
  const p50 = r.p50 / natsTurns.p50
  const p99 = r.p99 / natsTurns.p99
  const verdict = mode === 'inproc' ? `  -> bar ${tput >= 0.3 && p50 <= 3 ? 'met' : 'NOT met'}` : '  (reference, not held to the bar)'
  console.log(`ratios (${name}), against NATS in the same turns (${natsTurns.throughput.toFixed(0)} tasks/s, p50 ${natsTurns.p50.toFixed(2)} ms): throughput ${tput.toFixed(2)}x (bar >= 0.3)  p50 ${p50.toFixed(2)}x (bar <= 3)  p99 ${p99.toFixed(2)}x${verdict}`)
}
process.exit(0)
