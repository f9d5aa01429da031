// Loaded into a node process by `npm run bench:telemetry -- --parts` (node --import): counts the
// bytes of every gossipsub RPC this node sends and receives by part: messages of the telemetry
// topic (received: first copies and duplicates) and of other topics, IHAVE (telemetry topic and
// others), IWANT, IDONTWANT, GRAFT/PRUNE, subscriptions, and the RPCs themselves (each costs a
// length prefix, a yamux frame header and a noise tag on the wire besides its bytes). The counts
// go to `$AISTACK_BENCH_PARTS_DIR/<pid>.json` every second. `$AISTACK_BENCH_GOSSIP_OPTS` (JSON)
// overrides gossipsub options at start (e.g. {"idontwantMinDataSize": 0}), to weigh them. Bench use only.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.env.AISTACK_BENCH_PARTS_DIR
const base = new URL('../../node_modules/@libp2p/gossipsub/dist/src/', import.meta.url)
const { GossipSub } = await import(new URL('gossipsub.js', base).href)
const { RPC } = await import(new URL('message/rpc.js', base).href)
const { TelemetryRecord } = await import(new URL('../../protocols/telemetry/dist/src/pb/telemetry.js', import.meta.url).href)
const { CHANGE_THRESHOLDS: T } = await import(new URL('../../protocols/telemetry/dist/src/constants.js', import.meta.url).href)
/** the last state of each author, to tell which field moved past its threshold in a delta */
const states = new Map()
const moved = (a, b, abs, ratio) => {
  if (a == null || b == null) return a !== b
  const d = Math.abs(Number(a) - Number(b))
  return d > 0 && d >= abs && d >= ratio * Math.max(Math.abs(Number(a)), 1)
}
function triggers (prev, r) {
  const out = []
  if (r.capabilitiesSet) out.push('capabilities')
  if (r.alertsSet) out.push('alerts')
  const check = (f, abs, ratio) => { if (r[f] != null && moved(prev[f], r[f], abs, ratio)) out.push(f) }
  check('cpuPermille', T.cpuPermille, 0)
  check('memUsedPermille', T.memUsedPermille, 0)
  check('rssBytes', 0, T.memoryRatio)
  check('heapUsedBytes', 0, T.memoryRatio)
  check('eventLoopP99Us', T.eventLoopUs, T.eventLoopRatio)
  check('connections', T.connections, T.connectionsRatio)
  check('bytesInPerSec', T.bytesPerSec, T.bytesPerSecRatio)
  check('bytesOutPerSec', T.bytesPerSec, T.bytesPerSecRatio)
  return out
}

const counts = { sent: {}, received: {} }
const seen = new Set()
const add = (dir, part, bytes) => {
  const c = counts[dir][part] ??= { n: 0, bytes: 0 }
  c.n++
  c.bytes += bytes
}
const size = (rpc) => RPC.encode({ subscriptions: [], messages: [], ...rpc }).byteLength
const isTelemetry = (topic) => typeof topic === 'string' && topic.endsWith('/telemetry')
const idOf = (m) => m.from == null || m.seqno == null ? undefined : `${Buffer.from(m.from).toString('hex')}/${Buffer.from(m.seqno).toString('hex')}`

function count (direction, rpc, times = 1) {
  for (let t = 0; t < times; t++) {
    add(direction, 'rpc', RPC.encode(rpc).byteLength)
    if ((rpc.subscriptions?.length ?? 0) > 0) add(direction, 'subscriptions', size({ subscriptions: rpc.subscriptions }))
    for (const m of rpc.messages ?? []) {
      let part = isTelemetry(m.topic) ? 'msg telemetry' : 'msg other'
      if (direction === 'received') {
        const id = idOf(m)
        if (id != null && seen.has(id)) part += ' duplicate'
        else if (id != null) { seen.add(id); if (seen.size > 100_000) seen.clear() }
      }
      add(direction, part, size({ messages: [m] }))
      if (isTelemetry(m.topic)) add(direction, 'telemetry data', m.data?.byteLength ?? 0)
      // what made a node send: full records, and the fields of deltas (first copies only)
      if (isTelemetry(m.topic) && direction === 'received' && !part.endsWith('duplicate')) {
        try {
          const r = TelemetryRecord.decode(m.data)
          const author = Buffer.from(m.from).toString('hex')
          const prev = states.get(author)
          if (r.full) add(direction, 'record full', m.data.byteLength)
          else add(direction, `record delta, past threshold: ${prev == null ? 'unknown' : triggers(prev, r).join(',') || 'none'}`, m.data.byteLength)
          // the sender compares with the last record it sent: keep the state the records say
          const next = { ...(prev ?? {}) }
          for (const [k, v] of Object.entries(r)) if (v != null) next[k] = v
          states.set(author, next)
        } catch {}
      }
    }
    const c = rpc.control
    if (c == null) continue
    for (const ihave of c.ihave ?? []) add(direction, isTelemetry(ihave.topicID) ? 'ihave telemetry' : 'ihave other', size({ control: { ihave: [ihave], iwant: [], graft: [], prune: [], idontwant: [] } }))
    for (const kind of ['iwant', 'graft', 'prune', 'idontwant']) {
      for (const x of c[kind] ?? []) add(direction, kind, size({ control: { ihave: [], iwant: [], graft: [], prune: [], idontwant: [], [kind]: [x] } }))
    }
  }
}

const overrides = JSON.parse(process.env.AISTACK_BENCH_GOSSIP_OPTS ?? '{}')
const start = GossipSub.prototype.start
GossipSub.prototype.start = async function () {
  Object.assign(this.opts, overrides)
  return start.call(this)
}

const sendRpc = GossipSub.prototype.sendRpc
GossipSub.prototype.sendRpc = function (id, rpc) {
  const ok = sendRpc.call(this, id, rpc)
  if (ok) count('sent', rpc)
  return ok
}
const sendRpcInBatch = GossipSub.prototype.sendRpcInBatch
GossipSub.prototype.sendRpcInBatch = function (tosend, rpc) {
  sendRpcInBatch.call(this, tosend, rpc)
  count('sent', rpc, tosend.size)
}
const handleReceivedRpc = GossipSub.prototype.handleReceivedRpc
GossipSub.prototype.handleReceivedRpc = async function (from, rpc) {
  count('received', rpc)
  return handleReceivedRpc.call(this, from, rpc)
}

if (dir != null) {
  setInterval(() => { writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify(counts)) }, 1000).unref()
}
