// The AIStack dashboard: polls the node's API (with the token from the URL fragment) and draws
// the network, capabilities, this node's connections, telemetry over time, tasks, events and
// traces. See docs/dashboard.md.
import '../dashboard.css'
import { Api, readToken } from './api.js'
import { ago, el, mib, p95Of, setRows, short } from './dom.js'
import { NetworkGraph } from './graph.js'
import { NodeChart } from './charts.js'
import { traceLines } from './trace.js'

const NETWORK_EVERY_MS = 2000
const PEERS_EVERY_MS = 5000
const CAPABILITIES_EVERY_MS = 10_000
const TASKS_EVERY_MS = 5000
const MAX_EVENTS = 100

const $ = id => document.getElementById(id)

function setStatus (text, error = false) {
  const node = $('status')
  node.textContent = text
  node.classList.toggle('error', error)
}

/** Runs `task` now and then every `ms` (after each run ends), reporting failures in the header. */
function every (ms, task) {
  const run = async () => {
    try {
      await task()
    } catch (err) {
      setStatus(err.status === 401 ? 'the token was refused: open the URL `aistack dashboard` prints' : `API: ${err.message}`, true)
    }
    setTimeout(run, ms)
  }
  run()
}

const state = { network: undefined, peers: [], capabilities: [] }

function renderNodes (network) {
  $('summary').textContent = `network ${network.network} · ${network.up} of ${network.nodes.length} nodes up · this node ${short(network.self)}`
  setRows($('nodes').tBodies[0], network.nodes.map(n => {
    const caps = (n.capabilities ?? []).map(c => c.name).join(', ')
    const p95 = p95Of(n)
    return el('tr', { 'data-peer': n.peerId, 'data-status': n.status },
      el('td', { class: n.self ? 'mono self' : 'mono', title: n.peerId }, short(n.peerId)),
      el('td', { class: n.status }, n.status),
      el('td', {}, ago(n.lastSeenMs)),
      el('td', { class: 'num' }, n.cpuPercent == null ? '' : `${n.cpuPercent.toFixed(1)} %`),
      el('td', { class: 'num' }, mib(n.rssBytes)),
      el('td', { class: 'num' }, n.connections ?? ''),
      el('td', {}, caps),
      el('td', { class: 'num' }, p95 == null ? '' : `${p95.toFixed(1)} ms`),
      el('td', {}, (n.alerts ?? []).join(', ')))
  }))
}

function renderPeers (peers) {
  setRows($('peers').tBodies[0], peers.map(p => el('tr', { 'data-peer': p.peerId },
    el('td', { class: 'mono', title: `${p.peerId}\n${p.multiaddr}` }, short(p.peerId)),
    el('td', {}, `${p.transport} (${p.direction})`),
    el('td', { class: p.pq ? 'pq' : '' }, p.encryption),
    el('td', { class: 'num' }, p.latencyMs == null ? '' : `${Math.round(p.latencyMs)} ms`))))
}

/**
 * Who serves what: the capability records this node holds (GET /v1/capabilities/network) joined
 * with the capabilities each node reports in its telemetry, with the node's liveness.
 */
function renderCapabilities () {
  const byName = new Map()
  const add = (name, peerId) => {
    if (!byName.has(name)) byName.set(name, new Set())
    byName.get(name).add(peerId)
  }
  for (const c of state.capabilities) add(c.name, c.peerId)
  for (const n of state.network?.nodes ?? []) for (const c of n.capabilities ?? []) add(c.name, n.peerId)
  const statusOf = peerId => state.network?.nodes.find(n => n.peerId === peerId)?.status ?? 'unknown'
  const names = [...byName.keys()].sort()
  setRows($('capabilities').tBodies[0], names.map(name => el('tr', { 'data-capability': name },
    el('td', {}, name),
    el('td', {}, ...[...byName.get(name)].flatMap((p, i) => [i > 0 ? ', ' : null, el('span', { class: `mono ${statusOf(p)}`, title: `${p}: ${statusOf(p)}` }, short(p))])))))
}

function renderTasks (tasks) {
  setRows($('tasks').tBodies[0], tasks.slice().reverse().map(t => el('tr', { 'data-task': t.id, 'data-state': t.state },
    el('td', { class: 'mono', title: t.id }, t.id.slice(0, 8)),
    el('td', {}, t.state),
    el('td', {}, t.capability ?? t.query ?? ''),
    el('td', { class: 'mono' }, t.worker == null ? '' : short(t.worker)),
    el('td', {}, new Date(t.updatedAt).toLocaleTimeString()))))
}

function addEvent (type, data) {
  const list = $('events')
  const who = data.origin ?? data.peerId ?? data.worker
  const what = data.taskId ?? data.id ?? data.alert ?? data.capability ?? ''
  list.prepend(el('li', { 'data-type': type }, `${new Date().toLocaleTimeString()} ${type} ${what}${who != null ? ` · ${short(String(who))}` : ''}`))
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove()
}

async function showTrace (api, id) {
  const out = $('trace')
  out.textContent = 'loading…'
  try {
    out.textContent = traceLines(await api.get(`/v1/traces/${encodeURIComponent(id)}`)).join('\n')
  } catch (err) {
    out.textContent = err.message
  }
}

function start () {
  const token = readToken()
  if (token == null) {
    setStatus('no token: open the URL `aistack dashboard` prints (it carries #token=…)', true)
    return
  }
  const api = new Api(token)
  const graph = new NetworkGraph($('graph'))
  const charts = [
    new NodeChart($('chart-cpu'), n => n.cpuPercent),
    new NodeChart($('chart-mem'), n => n.rssBytes == null ? undefined : n.rssBytes / 1048576),
    new NodeChart($('chart-p95'), p95Of)
  ]
  every(NETWORK_EVERY_MS, async () => {
    const network = await api.get('/v1/network')
    state.network = network
    renderNodes(network)
    renderCapabilities()
    graph.update(network, state.peers)
    const now = Date.now()
    for (const chart of charts) chart.push(now, network.nodes)
    setStatus(`updated ${new Date(now).toLocaleTimeString()}`)
  })
  every(PEERS_EVERY_MS, async () => {
    state.peers = (await api.get('/v1/peers')).peers
    renderPeers(state.peers)
    if (state.network != null) graph.update(state.network, state.peers)
  })
  every(CAPABILITIES_EVERY_MS, async () => {
    state.capabilities = (await api.get('/v1/capabilities/network')).capabilities
    renderCapabilities()
  })
  const refreshTasks = async () => { renderTasks((await api.get('/v1/tasks?limit=50')).tasks) }
  every(TASKS_EVERY_MS, refreshTasks)
  let pending = false
  const onEvent = (type, data) => {
    addEvent(type, data)
    if (type.startsWith('task.') && !pending) {
      // an event refreshes the task list at most once a second
      pending = true
      setTimeout(() => { pending = false; refreshTasks().catch(() => {}) }, 1000)
    }
  }
  const controller = new AbortController()
  api.follow('/v1/events', onEvent, (connected, err) => {
    if (err != null) addEvent('events.disconnected', { id: err.message })
  }, controller.signal)
  $('trace-form').addEventListener('submit', evt => {
    evt.preventDefault()
    showTrace(api, $('trace-id').value.trim().toLowerCase())
  })
}

start()
