// Loaded into a node process by `npm run bench:telemetry -- --parts` (node --import): counts the
// bytes of every gossipsub RPC this node sends and receives by part: messages of the telemetry
// topic (received: first copies and duplicates) and of other topics, IHAVE (telemetry topic and
// others), IWANT, IDONTWANT, GRAFT/PRUNE, subscriptions, and the RPCs themselves (each costs a
// length prefix, a yamux frame header and a noise tag on the wire besides its bytes). The counts
// go to `$AISTACK_BENCH_PARTS_DIR/<pid>.json` every second. Bench use only.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.env.AISTACK_BENCH_PARTS_DIR
const base = new URL('../../node_modules/@libp2p/gossipsub/dist/src/', import.meta.url)
const { GossipSub } = await import(new URL('gossipsub.js', base).href)
const { RPC } = await import(new URL('message/rpc.js', base).href)

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
    }
    const c = rpc.control
    if (c == null) continue
    for (const ihave of c.ihave ?? []) add(direction, isTelemetry(ihave.topicID) ? 'ihave telemetry' : 'ihave other', size({ control: { ihave: [ihave], iwant: [], graft: [], prune: [], idontwant: [] } }))
    for (const kind of ['iwant', 'graft', 'prune', 'idontwant']) {
      for (const x of c[kind] ?? []) add(direction, kind, size({ control: { ihave: [], iwant: [], graft: [], prune: [], idontwant: [], [kind]: [x] } }))
    }
  }
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
