import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, removeTempDirs, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'

/** A capability answered by the built-in echo handler (config.json only) */
function echoCapability (name: string, description: string): unknown {
  return { name, description, handler: { type: 'builtin', name: 'echo' } }
}

/** An exec capability, as registered at run time through the API */
function execCapability (name: string, description: string): unknown {
  const script = "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>process.stdout.write(s))"
  return { name, description, handler: { type: 'exec', command: [process.execPath, '-e', script], timeoutMs: 10_000 } }
}

async function homeWith (capabilities: unknown[]): Promise<string> {
  const home = await tempDir()
  await writeFile(join(home, 'config.json'), JSON.stringify({ capabilities }))
  return home
}

const CAPS: Record<string, string> = {
  'csv-to-json': 'Convert CSV tables into JSON',
  'translate-french': 'Translate English text into French',
  'summarize-text': 'Summarize a long document into a short paragraph',
  'resize-image': 'Resize a picture to a given width and height',
  'transcribe-audio': 'Transcribe spoken audio recordings into written text',
  'sentiment-score': 'Tell whether a product review is positive or negative',
  'extract-invoice': 'Extract totals and dates from scanned invoices',
  'sql-from-question': 'Write an SQL query that answers a question about a database',
  'weather-forecast': 'Forecast tomorrow\'s weather for a city',
  'unit-convert': 'Convert between metric and imperial units',
  'spell-check': 'Find and fix spelling mistakes in a paragraph',
  'regex-builder': 'Build a regular expression from examples of matching strings',
  'code-review': 'Review a pull request and point out bugs',
  'pdf-to-text': 'Pull the plain text out of a PDF file',
  'calendar-slot': 'Find a free meeting slot in several calendars',
  'keyword-tags': 'Suggest keyword tags for a blog post',
  'math-solver': 'Solve algebra equations step by step'
}

/** Capabilities of the 7 serving nodes: 20 records, 3 capabilities served by two nodes */
const SERVED: string[][] = [
  ['csv-to-json', 'translate-french', 'summarize-text'],
  ['resize-image', 'transcribe-audio', 'sentiment-score'],
  ['extract-invoice', 'sql-from-question', 'csv-to-json'],
  ['weather-forecast', 'unit-convert', 'spell-check'],
  ['regex-builder', 'code-review', 'translate-french'],
  ['pdf-to-text', 'calendar-slot', 'summarize-text'],
  ['keyword-tags', 'math-solver']
]

const ADDED: Record<string, string> = { 'reverse-words': 'Reverse the order of the words in a sentence' }

interface Pair { owner: string, name: string }

/** Whether `node`'s search for the description of `pair.name` returns `pair.owner` for it */
async function sees (node: NodeProcess, pair: Pair, description = CAPS[pair.name] ?? ADDED[pair.name]): Promise<boolean> {
  const { status, json, text } = await api(node.run, 'GET', `/v1/capabilities/search?q=${encodeURIComponent(description)}&k=10`)
  if (status !== 200) throw new Error(`search answered ${status}: ${text}`)
  return (json.results as any[]).some(r => r.peerId === pair.owner && r.name === pair.name)
}

/** Whether `node` holds the record of `pair` (GET /v1/capabilities/network) */
async function holds (node: NodeProcess, pair: Pair): Promise<boolean> {
  const { status, json, text } = await api(node.run, 'GET', '/v1/capabilities/network')
  if (status !== 200) throw new Error(`network list answered ${status}: ${text}`)
  return (json.capabilities as any[]).some(r => r.peerId === pair.owner && r.name === pair.name)
}

type Check = (node: NodeProcess, pair: Pair) => Promise<boolean>

/**
 * Every node polls, at once and each pair on its own, `check` until it is true for the pair
 * (or, with `gone`, false); resolves to the ms each node took from `t0` to get there for all.
 */
async function untilAll (nodes: NodeProcess[], pairs: Pair[], t0: number, check: Check, { gone = false, timeoutMs = 60_000 }: { gone?: boolean, timeoutMs?: number } = {}): Promise<number[]> {
  return Promise.all(nodes.map(async node => {
    const times = await Promise.all(pairs.map(async pair => {
      await waitFor(async () => await check(node, pair) !== gone, { timeoutMs, intervalMs: 100 }).catch(err => {
        throw new Error(`node ${node.run.peerId.slice(-6)}: ${pair.name} of ${pair.owner.slice(-6)} ${gone ? 'still there' : 'missing'} - ${String(err.message)}`)
      })
      return performance.now() - t0
    }))
    return Math.max(...times)
  }))
}

const ms = (times: number[]): string => `${Math.round(Math.max(...times))} ms (per node: ${times.map(t => Math.round(t)).join(', ')})`

describe('semantic anycast visibility on an 8-node process network', function () {
  this.timeout(600_000)
  const nodes: NodeProcess[] = []
  const pairs: Pair[] = []
  let bootstrap: string[]

  before(async () => {
    // started one after another, like a real network: a bootstrap node, then 7 serving nodes
    const first = await startNodeProcess(await tempDir())
    nodes.push(first)
    bootstrap = ['--bootstrap', first.run.multiaddrs[0]]
    for (const names of SERVED) {
      const node = await startNodeProcess(await homeWith(names.map(n => echoCapability(n, CAPS[n]))), bootstrap)
      nodes.push(node)
      for (const name of names) pairs.push({ owner: node.run.peerId, name })
    }
  })

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    await removeTempDirs()
  })

  it('every node holds and finds every (owner, capability) pair within 10 s of the last start, and a change within 5 s', async () => {
    assert.equal(pairs.length, 20)
    const lastReady = performance.now()
    const known = await untilAll(nodes, pairs, lastReady, holds)
    console.log(`      ${nodes.length} nodes, ${pairs.length} records: every node holds all ${nodes.length * pairs.length} (node, record) pairs ${ms(known)} after the last start`)
    const found = await untilAll(nodes, pairs, lastReady, sees)
    console.log(`      ... and its search returns each of them ${ms(found)} after the last start`)
    assert.ok(Math.max(...known) < 10_000, `full visibility took ${Math.round(Math.max(...known))} ms`)
    assert.ok(Math.max(...found) < 10_000, `every search returned every pair only after ${Math.round(Math.max(...found))} ms`)

    // a capability added at run time on one node, then removed
    const owner = nodes[4]
    const added: Pair = { owner: owner.run.peerId, name: 'reverse-words' }
    const t1 = performance.now()
    const res = await api(owner.run, 'POST', '/v1/capabilities', { body: execCapability(added.name, ADDED[added.name]) })
    assert.equal(res.status, 201, res.text)
    const addKnown = await untilAll(nodes, [added], t1, holds)
    const addFound = await untilAll(nodes, [added], t1, sees)
    const t2 = performance.now()
    const removed = await api(owner.run, 'DELETE', `/v1/capabilities/${added.name}`)
    assert.equal(removed.status, 200, removed.text)
    const goneKnown = await untilAll(nodes, [added], t2, holds, { gone: true })
    const goneFound = await untilAll(nodes, [added], t2, sees, { gone: true })
    console.log(`      a capability added at run time held by every node after ${ms(addKnown)}, found by every search after ${ms(addFound)}`)
    console.log(`      its removal reached every node after ${ms(goneKnown)}, every search after ${ms(goneFound)}`)
    assert.ok(Math.max(...addKnown) < 5000, 'an added capability reaches every node within 5 s')
    assert.ok(Math.max(...goneKnown) < 5000, 'a removed capability leaves every node within 5 s')
    assert.ok(Math.max(...addFound) < 5000, `an added capability is found by every search within 5 s (${Math.round(Math.max(...addFound))} ms)`)
    assert.ok(Math.max(...goneFound) < 5000, `a removed capability leaves every search within 5 s (${Math.round(Math.max(...goneFound))} ms)`)
  })

  it('a new agent serving a capability another node already matches well shows up everywhere within 10 s', async () => {
    const name = 'pdf-to-text'
    const held = pairs.filter(p => p.name === name)
    // every node is confident in the owner it knows: an exact match, fresh in its cache
    await untilAll(nodes, held, performance.now(), sees)
    for (const node of nodes) {
      const { json } = await api(node.run, 'GET', `/v1/capabilities/search?q=${encodeURIComponent(CAPS[name])}&k=10`)
      assert.equal(json.results[0].name, name)
      assert.ok(json.results[0].similarity > 0.9)
    }
    const newcomer = await startNodeProcess(await homeWith([echoCapability(name, CAPS[name])]), bootstrap)
    nodes.push(newcomer)
    const ready = performance.now()
    const times = await untilAll(nodes.slice(0, -1), [{ owner: newcomer.run.peerId, name }], ready, sees)
    console.log(`      a second owner of ${name} found by the searches of all ${times.length} other nodes ${ms(times)} after it started`)
    assert.ok(Math.max(...times) < 10_000, `the new owner took ${Math.round(Math.max(...times))} ms to show up`)
  })
})
