// Benchmark: the cost of @aistack/telemetry on a testnet of `aistack start`
// processes (TCP on 127.0.0.1, bootstrapped through the first node). The same
// testnet runs twice, in turns: with telemetry at the interval given, and with
// `telemetry.enabled: false` (no records sent; the node still joins the
// topic: the baseline). Per node and per second it reports the bytes on all connections
// (libp2p_data_transfer_bytes_total, in and out), the telemetry record bytes
// published and received (aistack_telemetry_traffic_bytes), and the CPU time
// of the node process (/proc/<pid>/stat), after `--settle` seconds for the
// nodes to find each other, over `--seconds`. The difference between the two
// turns is the cost of telemetry.
//
//   npm run bench:telemetry -- --help
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { benchArgs, failUsage } from './args.js'

const USAGE = `Usage: npm run bench:telemetry -- [--nodes 16] [--interval 5000] [--settle 30] [--seconds 60] [--parts on]
--nodes: node processes in the testnet; --interval: telemetry interval in ms;
--settle: seconds between the last node's start and the measurement; --seconds: measured window;
--parts on: also count gossipsub's bytes per RPC part (messages, duplicates, IHAVE, IWANT,
IDONTWANT, GRAFT/PRUNE) in every node (scripts/bench/gossipsub-parts.js);
--gossip JSON: with --parts on, gossipsub options set in every node of both turns, to weigh
them (e.g. --gossip '{"idontwantMinDataSize":0}'); --baseline off: skip the turn without telemetry.`
const args = benchArgs(USAGE, { nodes: 16, interval: 5000, settle: 30, seconds: 60, parts: 'off', gossip: '{}', baseline: 'on' })
try { JSON.parse(args.gossip) } catch { failUsage(`--gossip takes JSON, not "${args.gossip}"`, USAGE) }
const PARTS = fileURLToPath(new URL('./gossipsub-parts.js', import.meta.url))
const BIN = fileURLToPath(new URL('../../packages/node/dist/src/bin.js', import.meta.url))
const CLK_TCK = 100

const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))

function cpuSeconds (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

async function metrics (run) {
  const res = await fetch(`${run.api.url}/metrics`, { headers: { authorization: `Bearer ${run.api.token}` } })
  const text = await res.text()
  const value = (re) => { const m = re.exec(text); return m == null ? 0 : Number(m[1]) }
  return {
    in: value(/^libp2p_data_transfer_bytes_total\{protocol="global received"\} (\S+)/m),
    out: value(/^libp2p_data_transfer_bytes_total\{protocol="global sent"\} (\S+)/m),
    published: value(/^aistack_telemetry_traffic_bytes\{direction="published"\} (\S+)/m),
    received: value(/^aistack_telemetry_traffic_bytes\{direction="received"\} (\S+)/m),
    accepted: value(/^aistack_telemetry_records\{outcome="accepted"\} (\S+)/m),
    ignored: value(/^aistack_telemetry_records\{outcome="ignored"\} (\S+)/m),
    rejected: value(/^aistack_telemetry_records\{outcome="rejected"\} (\S+)/m)
  }
}

async function network (run) {
  const res = await fetch(`${run.api.url}/v1/network`, { headers: { authorization: `Bearer ${run.api.token}` } })
  return res.json()
}

async function startNode (dir, i, telemetry, bootstrap) {
  const home = join(dir, `node-${i}`)
  const config = { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, telemetry, logLevel: 'warn' }
  const { mkdirSync } = await import('node:fs')
  mkdirSync(home, { recursive: true })
  writeFileSync(join(home, 'config.json'), JSON.stringify(config))
  const preload = args.parts === 'on' ? ['--import', PARTS] : []
  const env = { ...process.env, AISTACK_BENCH_PARTS_DIR: dir, AISTACK_BENCH_GOSSIP_OPTS: args.gossip }
  const child = spawn(process.execPath, [...preload, BIN, 'start', '--home', home, '--api', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'], env })
  let err = ''
  child.stderr.on('data', d => { err += String(d) })
  const deadline = Date.now() + 120_000
  while (true) {
    if (child.exitCode != null) throw new Error(`node ${i} exited: ${err}`)
    if (Date.now() > deadline) throw new Error(`node ${i} did not start in 120 s`)
    const file = join(home, 'run.json')
    if (existsSync(file)) {
      try {
        const run = JSON.parse(readFileSync(file, 'utf8'))
        if (run.pid === child.pid) return { child, run }
      } catch {}
    }
    await sleep(100)
  }
}

/** The gossipsub part counts a node wrote (--parts on), or undefined */
function parts (dir, pid) {
  try { return JSON.parse(readFileSync(join(dir, `${pid}.json`), 'utf8')) } catch { return undefined }
}

/** Bytes per second per node of each gossipsub RPC part between two snapshots of all nodes */
function partRates (before, after, secs) {
  const out = {}
  for (let i = 0; i < after.length; i++) {
    for (const direction of ['sent', 'received']) {
      for (const [part, c] of Object.entries(after[i]?.[direction] ?? {})) {
        const b = before[i]?.[direction]?.[part] ?? { n: 0, bytes: 0 }
        const o = out[`${direction} ${part}`] ??= { n: 0, bytes: 0 }
        o.n += (c.n - b.n) / secs / after.length
        o.bytes += (c.bytes - b.bytes) / secs / after.length
      }
    }
  }
  return out
}

async function turn (label, telemetry) {
  const dir = mkdtempSync(join(tmpdir(), 'aistack-bench-telemetry-'))
  const nodes = []
  try {
    nodes.push(await startNode(dir, 0, telemetry, []))
    const bootstrap = [nodes[0].run.multiaddrs.find(a => a.includes('/tcp/'))]
    for (let i = 1; i < args.nodes; i++) nodes.push(await startNode(dir, i, telemetry, bootstrap))
    await sleep(args.settle * 1000)
    const before = await Promise.all(nodes.map(async n => ({ m: await metrics(n.run), cpu: cpuSeconds(n.child.pid), at: Date.now(), parts: parts(dir, n.child.pid) })))
    await sleep(args.seconds * 1000)
    const after = await Promise.all(nodes.map(async n => ({ m: await metrics(n.run), cpu: cpuSeconds(n.child.pid), at: Date.now(), parts: parts(dir, n.child.pid) })))
    const table = await network(nodes[0].run)
    const counts = after.reduce((s, a) => ({ accepted: s.accepted + a.m.accepted, ignored: s.ignored + a.m.ignored, rejected: s.rejected + a.m.rejected }), { accepted: 0, ignored: 0, rejected: 0 })
    console.log(`  records judged by all nodes since start: ${counts.accepted} accepted, ${counts.ignored} ignored, ${counts.rejected} rejected`)
    const per = nodes.map((_, i) => {
      const secs = (after[i].at - before[i].at) / 1000
      const d = (k) => (after[i].m[k] - before[i].m[k]) / secs
      return { bytes: d('in') + d('out'), in: d('in'), out: d('out'), published: d('published'), received: d('received'), cpu: (after[i].cpu - before[i].cpu) / secs * 100 }
    })
    const mean = (k) => per.reduce((s, p) => s + p[k], 0) / per.length
    const max = (k) => Math.max(...per.map(p => p[k]))
    const result = {
      label,
      up: table.up,
      bytesPerSec: mean('bytes'),
      bytesInPerSec: mean('in'),
      bytesOutPerSec: mean('out'),
      recordBytesPublishedPerSec: mean('published'),
      recordBytesReceivedPerSec: mean('received'),
      cpuPercent: mean('cpu'),
      cpuPercentMax: max('cpu')
    }
    if (args.parts === 'on') {
      const rates = partRates(before.map(b => b.parts), after.map(a => a.parts), args.seconds)
      console.log('  gossipsub RPC parts per node: bytes/s (count/s), protobuf bytes without stream framing')
      for (const [part, r] of Object.entries(rates).sort()) console.log(`    ${part.padEnd(36)} ${r.bytes.toFixed(1).padStart(8)} B/s (${r.n.toFixed(2)}/s)`)
      result.parts = rates
    }
    console.log(`${label.padEnd(22)} up ${String(result.up).padStart(2)}/${args.nodes}  bytes/s per node ${result.bytesPerSec.toFixed(0).padStart(6)} (in ${result.bytesInPerSec.toFixed(0)}, out ${result.bytesOutPerSec.toFixed(0)})  records/s published ${result.recordBytesPublishedPerSec.toFixed(1)} B, received ${result.recordBytesReceivedPerSec.toFixed(1)} B  CPU ${result.cpuPercent.toFixed(2)} % of a core (max ${result.cpuPercentMax.toFixed(2)} %)`)
    return result
  } finally {
    await Promise.all(nodes.map(async n => {
      n.child.kill('SIGTERM')
      await new Promise(resolve => { if (n.child.exitCode != null) resolve(); else n.child.once('exit', resolve) })
    }))
    rmSync(dir, { recursive: true, force: true })
  }
}

console.log(`telemetry cost: ${args.nodes} node processes, interval ${args.interval} ms, settle ${args.settle} s, window ${args.seconds} s${args.gossip !== '{}' ? `, gossipsub options ${args.gossip}` : ''}; load average before ${loadavg().map(x => x.toFixed(2)).join(' ')}`)
const on = await turn('telemetry on', { intervalMs: args.interval })
if (args.baseline === 'off') process.exit(0)
const off = await turn('telemetry off (baseline)', { enabled: false, intervalMs: args.interval })
console.log(`load average after ${loadavg().map(x => x.toFixed(2)).join(' ')}`)
const extraBytes = on.bytesPerSec - off.bytesPerSec
const extraCpu = on.cpuPercent - off.cpuPercent
console.log(`telemetry per node: ${extraBytes.toFixed(0)} bytes/s on the wire (on/off ratio ${(on.bytesPerSec / Math.max(1, off.bytesPerSec)).toFixed(2)}; goal <= 1024), ${extraCpu.toFixed(2)} % of a core (on/off ratio ${(on.cpuPercent / Math.max(0.001, off.cpuPercent)).toFixed(2)}; goal <= 1 %)`)
