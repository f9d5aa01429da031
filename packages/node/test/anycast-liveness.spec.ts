import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, removeTempDirs, runCli, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'

function execCapability (name: string, description: string, prefix: string): unknown {
  const script = `let s='';process.stdin.on('data',d=>s+=d).on('end',()=>process.stdout.write(${JSON.stringify(prefix)}+':'+s))`
  return { name, description, handler: { type: 'exec', command: [process.execPath, '-e', script], timeoutMs: 10_000 } }
}

async function homeWith (capabilities: unknown[]): Promise<string> {
  const home = await tempDir()
  await writeFile(join(home, 'config.json'), JSON.stringify({ capabilities }))
  return home
}

async function timed<T> (fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now()
  const out = await fn()
  return [out, performance.now() - t0]
}

describe('semantic anycast on a lone node process', function () {
  this.timeout(120_000)
  let node: NodeProcess

  before(async () => {
    node = await startNodeProcess(await homeWith([execCapability('csv-to-json', 'Convert CSV tables into JSON', 'csv')]))
  })

  after(async () => {
    await node.stop()
    await removeTempDirs()
  })

  it('answers a search and a no-candidate ask within 1 s, and explains the lookup', async () => {
    // the first request may wait for the node to finish announcing; time the next ones
    await api(node.run, 'GET', '/v1/capabilities/search?q=warm%20up')
    const [found, searchMs] = await timed(async () => api(node.run, 'GET', '/v1/capabilities/search?q=convert%20a%20CSV%20table%20to%20JSON&explain=1'))
    assert.equal(found.status, 200, found.text)
    assert.equal(found.json.results[0].name, 'csv-to-json')
    assert.equal(found.json.results[0].source, 'own')
    assert.equal(found.json.results[0].liveness, 'live')
    assert.match(found.json.explain.reason, /no peers/)
    assert.ok(searchMs < 1000, `search took ${searchMs} ms`)
    const [none, askMs] = await timed(async () => api(node.run, 'POST', '/v1/ask', { body: { query: 'quantum chromodynamics lattice simulation', input: null } }))
    assert.equal(none.status, 404, none.text)
    assert.ok(askMs < 1000, `ask took ${askMs} ms`)
    const cli = await runCli(['find', 'convert a CSV table to JSON', '--explain', '--home', node.home])
    assert.equal(cli.code, 0, cli.stderr)
    assert.match(cli.stdout, /csv-to-json/)
    assert.match(cli.stdout, /lookup: own .*no peers/)
    assert.match(cli.stdout, /phases: queue \d+ ms/)
  })
})

describe('semantic anycast liveness across node processes', function () {
  this.timeout(300_000)
  const nodes: NodeProcess[] = []
  let asker: NodeProcess
  let best: NodeProcess
  let second: NodeProcess
  const query = 'Convert CSV tables into JSON'

  before(async () => {
    asker = await startNodeProcess(await tempDir())
    nodes.push(asker)
    const bootstrap = ['--bootstrap', asker.run.multiaddrs[0]]
    // the exact description ranks the best owner first
    best = await startNodeProcess(await homeWith([execCapability('csv-to-json', query, 'best')]), bootstrap)
    nodes.push(best)
    second = await startNodeProcess(await homeWith([execCapability('csv-json', 'Turn CSV files into JSON documents', 'second')]), bootstrap)
    nodes.push(second)
    await waitFor(async () => {
      const { json } = await api(asker.run, 'GET', `/v1/capabilities/search?q=${encodeURIComponent(query)}&k=5`)
      const peers = (json?.results ?? []).map((r: any) => r.peerId)
      return peers[0] === best.run.peerId && peers.includes(second.run.peerId)
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'both owners visible to the asker, the best first' })
  })

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    await removeTempDirs()
  })

  it('a killed owner costs at most one failed attempt, leaves the results within 30 s, and is found again when restarted', async () => {
    const ok = await api(asker.run, 'POST', '/v1/ask', { body: { query, input: 'a,b' } })
    assert.equal(ok.status, 200, ok.text)
    assert.equal(ok.json.peerId, best.run.peerId)

    best.child.kill('SIGKILL')
    await best.stop()
    const killedAt = performance.now()
    const first = await api(asker.run, 'POST', '/v1/ask', { body: { query, input: 'a,b', timeoutMs: 20_000 } })
    assert.equal(first.status, 200, first.text)
    assert.equal(first.json.peerId, second.run.peerId)
    assert.ok(first.json.attempts <= 2, `attempts ${String(first.json.attempts)}`)
    for (let i = 0; i < 3; i++) {
      const next = await api(asker.run, 'POST', '/v1/ask', { body: { query, input: 'a,b', timeoutMs: 20_000 } })
      assert.equal(next.json.peerId, second.run.peerId)
      assert.equal(next.json.attempts, 1, 'the dead owner is demoted at once')
    }
    await waitFor(async () => {
      const { json } = await api(asker.run, 'GET', `/v1/capabilities/search?q=${encodeURIComponent(query)}&k=5`)
      return json?.results?.[0]?.peerId === second.run.peerId && !json.results.some((r: any) => r.peerId === best.run.peerId)
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'the dead owner to leave the results' })
    const goneMs = performance.now() - killedAt
    assert.ok(goneMs < 35_000, `dead owner left the results after ${goneMs} ms`)

    // restarted on its home (same peer id)
    const restarted = await startNodeProcess(best.home, ['--bootstrap', asker.run.multiaddrs[0]])
    nodes.push(restarted)
    const upAt = performance.now()
    await waitFor(async () => {
      const { json } = await api(asker.run, 'GET', `/v1/capabilities/search?q=${encodeURIComponent(query)}&k=5`)
      return json?.results?.[0]?.peerId === restarted.run.peerId
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'the restarted owner first again' })
    const foundMs = performance.now() - upAt
    assert.ok(foundMs < 10_000, `restarted owner found after ${foundMs} ms`)
    const back = await api(asker.run, 'POST', '/v1/ask', { body: { query, input: 'a,b' } })
    assert.equal(back.json.peerId, restarted.run.peerId)
    assert.equal(back.json.attempts, 1)
  })
})
