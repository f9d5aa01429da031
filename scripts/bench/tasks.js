// Benchmark: the @aistack/task queue (one submitter, four workers) against a
// NATS JetStream work queue (file storage, four pull workers on one durable
// consumer with explicit acks, each result published back to the submitter).
//
//   npm run bench:tasks            (TASKS=2000 SEQ=300 WORKERS=4 to change sizes)
//
// Our nodes run in this process (real libp2p over TCP on 127.0.0.1 with Noise,
// Yamux and gossipsub); nats-server runs as a child process.
import { spawn, execFileSync } from 'node:child_process'
import { Worker, isMainThread, parentPort } from 'node:worker_threads'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { taskQueue } from '@aistack/task'
import { MemoryDatastore } from 'datastore-core'
import { LevelDatastore } from 'datastore-level'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { AckPolicy, RetentionPolicy, StorageType, connect as natsConnect } from 'nats'

const TASKS = Number(process.env.TASKS ?? 2000)
const SEQ = Number(process.env.SEQ ?? 300)
const WORKERS = Number(process.env.WORKERS ?? 4)
const SLOTS = Number(process.env.SLOTS ?? 16)
const WINDOW = Number(process.env.WINDOW ?? 256)

function percentile (values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
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

/** Run `fn(i)` for i in [0, n) with at most `window` in flight */
async function saturate (n, window, fn) {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(window, n) }, async () => {
    while (next < n) {
      await fn(next++)
    }
  }))
}

// ---------------------------------------------------------------- ours

async function node (opts) {
  return createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    datastore: opts.datastore ?? new MemoryDatastore(),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true }),
      tasks: taskQueue({ executor: opts.executor })
    }
  })
}

function echoExecutor (slots) {
  let busy = 0
  return {
    canRun: (spec) => spec.capability === 'echo',
    capacity: () => slots - busy,
    run: async (_spec, input) => {
      busy++
      try {
        return input
      } finally {
        busy--
      }
    }
  }
}

/** In a worker thread: start the workers, report their addresses, stop when told */
async function workerThread () {
  const workers = await Promise.all(Array.from({ length: WORKERS }, async () => node({ executor: echoExecutor(SLOTS) })))
  parentPort.postMessage(workers.map(w => w.getMultiaddrs().map(String)))
  parentPort.once('message', async () => {
    await Promise.all(workers.map(async w => w.stop()))
    parentPort.postMessage('stopped')
  })
}

async function benchOurs (threaded) {
  const dir = mkdtempSync(join(tmpdir(), 'aistack-bench-tasks-'))
  const datastore = new LevelDatastore(join(dir, 'journal'))
  await datastore.open()
  const submitter = await node({ datastore })
  let workers = []
  let thread
  let addrs
  if (threaded) {
    thread = new Worker(new URL(import.meta.url))
    addrs = await new Promise((resolve, reject) => { thread.once('message', resolve); thread.once('error', reject) })
  } else {
    workers = await Promise.all(Array.from({ length: WORKERS }, async () => node({ executor: echoExecutor(SLOTS) })))
    addrs = workers.map(w => w.getMultiaddrs().map(String))
  }
  const tasks = submitter.services.tasks
  for (const a of addrs) {
    await submitter.dial(a.map(x => multiaddr(x)))
  }
  const deadline = Date.now() + 10_000
  while (submitter.services.pubsub.getSubscribers(tasks.tasksTopic).length < WORKERS) {
    if (Date.now() > deadline) throw new Error('workers did not subscribe')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
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
    // results can only arrive after a later tick; register before yielding
    waiting.set(id, done.resolve)
    return done.promise
  }
  // warm up
  await saturate(200, 32, async i => roundTrip({ i }))
  const t0 = performance.now()
  await saturate(TASKS, WINDOW, async i => roundTrip({ i }))
  const seconds = (performance.now() - t0) / 1000
  const lat = []
  for (let i = 0; i < SEQ; i++) {
    const s = performance.now()
    await roundTrip({ i })
    lat.push(performance.now() - s)
  }
  await Promise.all([submitter, ...workers].map(async n => n.stop()))
  if (thread != null) {
    const stopped = new Promise(resolve => thread.once('message', resolve))
    thread.postMessage('stop')
    await stopped
    await thread.terminate()
  }
  await datastore.close()
  rmSync(dir, { recursive: true, force: true })
  return { throughput: TASKS / seconds, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) }
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

async function benchNats () {
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
  const roundTrip = async (input) => {
    const id = `t${++seq}`
    const done = Promise.withResolvers()
    waiting.set(id, done.resolve)
    await js.publish(`tasks.${id}`, new TextEncoder().encode(JSON.stringify(input)))
    return done.promise
  }
  await saturate(200, 32, async i => roundTrip({ i }))
  const t0 = performance.now()
  await saturate(TASKS, WINDOW, async i => roundTrip({ i }))
  const seconds = (performance.now() - t0) / 1000
  const lat = []
  for (let i = 0; i < SEQ; i++) {
    const s = performance.now()
    await roundTrip({ i })
    lat.push(performance.now() - s)
  }
  for (const wc of workerConns) {
    await wc.close()
  }
  await nc.close()
  server.kill('SIGTERM')
  await new Promise(resolve => server.once('exit', resolve))
  rmSync(dir, { recursive: true, force: true })
  return { throughput: TASKS / seconds, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) }
}

// ---------------------------------------------------------------- report

if (!isMainThread) {
  await workerThread()
} else {
  const ONLY = process.env.ONLY
  const none = { throughput: NaN, p50: NaN, p99: NaN }
  const nats = ONLY === 'ours' ? none : await benchNats()
  const ours = ONLY === 'nats' ? none : await benchOurs(false)
  const threaded = ONLY === 'nats' ? none : await benchOurs(true)
  const fmt = (r) => `${r.throughput.toFixed(0).padStart(7)} tasks/s   p50 ${r.p50.toFixed(2).padStart(6)} ms   p99 ${r.p99.toFixed(2).padStart(6)} ms`
  console.log(`tasks: ${TASKS} at saturation (window ${WINDOW}), ${SEQ} sequential; ${WORKERS} workers x ${SLOTS} slots; echo handler`)
  console.log(`NATS JetStream (file storage)                 ${fmt(nats)}`)
  console.log(`@aistack/task, all nodes in one thread        ${fmt(ours)}`)
  console.log(`@aistack/task, workers in a worker thread     ${fmt(threaded)}`)
  for (const [name, r] of [['one thread', ours], ['worker thread', threaded]]) {
    const tput = r.throughput / nats.throughput
    const p50 = r.p50 / nats.p50
    const p99 = r.p99 / nats.p99
    console.log(`ratios (${name}): throughput ${tput.toFixed(2)}x NATS (bar >= 0.3)  p50 ${p50.toFixed(2)}x NATS (bar <= 3)  p99 ${p99.toFixed(2)}x NATS  -> bar ${tput >= 0.3 && p50 <= 3 ? 'met' : 'NOT met'}`)
  }
  process.exit(0)
}
