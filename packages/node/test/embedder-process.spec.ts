import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeTinyModel } from '@aistack/embeddings'
import { api, removeTempDirs, runCli, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'
import type { AddressInfo } from 'node:net'

const GROUPS = [['resize'], ['photo', 'picture'], ['translate'], ['text'], ['french'], ['embed'], ['texts']]
const EMBED_CAPABILITY = { name: 'embed-texts', description: 'embed texts', handler: { type: 'builtin', name: 'embed' } }

describe('embedders of aistack start and aistack models', function () {
  this.timeout(180_000)
  const running: NodeProcess[] = []
  let hubDir: string
  let hub: http.Server
  let hubUrl: string

  before(async () => {
    hubDir = await tempDir('aistack-hub-')
    await writeTinyModel(hubDir, 'Xenova/all-MiniLM-L6-v2', GROUPS)
    hub = http.createServer((req, res) => {
      const m = /^\/(.+)\/resolve\/main\/(.+)$/.exec(req.url ?? '')
      if (m == null) { res.writeHead(404).end(); return }
      readFile(join(hubDir, m[1], m[2])).then(body => res.writeHead(200, { 'content-length': body.length }).end(body), () => res.writeHead(404).end())
    })
    await new Promise<void>(resolve => hub.listen(0, '127.0.0.1', resolve))
    hubUrl = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`
  })

  afterEach(async () => { await Promise.all(running.splice(0).map(async p => p.stop())) })
  after(async () => {
    hub.close()
    await removeTempDirs()
  })

  it('a node without an embedder config uses the offline default aistack-hybrid-v2', async () => {
    const home = await tempDir()
    await writeFile(join(home, 'config.json'), JSON.stringify({ capabilities: [EMBED_CAPABILITY] }))
    const node = await startNodeProcess(home)
    running.push(node)
    const asked = await runCli(['ask', 'embed texts', '--input', 'resize a photo', '--home', home, '--json'])
    assert.equal(asked.code, 0, asked.stderr)
    const { output } = JSON.parse(asked.stdout)
    assert.equal(output.model, 'aistack-hybrid-v2')
    assert.equal(output.dim, 484)
  })

  it('an embed answer from another node process is the one its owner gives itself (vectors travel as f32 tensors)', async () => {
    const ownerHome = await tempDir()
    await writeFile(join(ownerHome, 'config.json'), JSON.stringify({ capabilities: [EMBED_CAPABILITY] }))
    const owner = await startNodeProcess(ownerHome)
    running.push(owner)
    const askerHome = await tempDir()
    const asker = await startNodeProcess(askerHome, ['--bootstrap', owner.run.multiaddrs[0]])
    running.push(asker)
    /** `aistack ask` of two texts on a node: its code, stderr and answer */
    const ask = async (home: string): Promise<{ code: number | null, stderr: string, answer?: any }> => {
      const asked = await runCli(['ask', 'embed texts', '--input', JSON.stringify(['resize a photo', 'translate this text to french']), '--json-input', '--home', home, '--json'])
      return { ...asked, answer: asked.code === 0 ? JSON.parse(asked.stdout) : undefined }
    }
    const mine = await ask(ownerHome)
    assert.equal(mine.code, 0, mine.stderr)
    const own = mine.answer
    assert.equal(own.peerId, owner.run.peerId)
    let remote: any
    await waitFor(async () => {
      remote = (await ask(askerHome)).answer
      return remote != null
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'the asker finds the owner\'s embed capability' })
    assert.equal(remote.peerId, owner.run.peerId)
    assert.equal(remote.output.vectors.length, 2)
    assert.deepEqual(remote.output, own.output)
  })

  it('over the network, the offline default ranks the intended capability first for >= 65% of the held-out paraphrases', async () => {
    const heldOut = JSON.parse(await readFile(join(dirname(fileURLToPath(import.meta.url)), '../../../embeddings/test/fixtures/heldout-paraphrases.json'), 'utf8'))
    const caps: Array<{ name: string, description: string, queries: Record<string, string> }> = heldOut.capabilities
    const ownerHome = await tempDir()
    await writeFile(join(ownerHome, 'config.json'), JSON.stringify({
      capabilities: caps.map(c => ({ name: c.name, description: c.description, handler: { type: 'builtin', name: 'echo' } }))
    }))
    const owner = await startNodeProcess(ownerHome)
    running.push(owner)
    const searcher = await startNodeProcess(await tempDir(), ['--bootstrap', owner.run.multiaddrs[0]])
    running.push(searcher)
    const search = async (q: string, k: number): Promise<string[]> => {
      const { status, json, text } = await api(searcher.run, 'GET', `/v1/capabilities/search?q=${encodeURIComponent(q)}&k=${k}`)
      assert.equal(status, 200, text)
      return json.results.map((r: any) => r.name)
    }
    await waitFor(async () => (await search(caps[0].description, 1))[0] === caps[0].name, { timeoutMs: 60_000, intervalMs: 250, what: 'the owner\'s records reach the searcher' })
    let hits = 0
    const misses: string[] = []
    for (const c of caps) {
      for (const d of ['light', 'moderate', 'hard']) {
        const [first] = await search(c.queries[d], 1)
        if (first === c.name) hits++
        else misses.push(`${d}: "${c.queries[d]}" -> ${first}`)
      }
    }
    const share = hits / (caps.length * 3)
    assert.ok(share >= 0.65, `top-1 ${share}; misses:\n${misses.join('\n')}`)
  })

  it('start with a local model that is not on disk stops with one line naming `aistack models pull`', async () => {
    const home = await tempDir()
    await writeFile(join(home, 'config.json'), JSON.stringify({ embedder: { type: 'local' } }))
    const { code, stderr } = await runCli(['start', '--home', home, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
    assert.equal(code, 2, stderr)
    assert.equal(stderr.trim().split('\n').length, 1, stderr)
    assert.match(stderr, /local model all-MiniLM-L6-v2 is not in .*models.* run `aistack models pull all-MiniLM-L6-v2`/)
  })

  it('models pull downloads into <home>/models, models list shows it, and start runs it in-process', async () => {
    const home = await tempDir()
    const empty = await runCli(['models', 'list', '--home', home])
    assert.equal(empty.code, 0, empty.stderr)
    assert.match(empty.stdout, /no models in .*; get one with `aistack models pull all-MiniLM-L6-v2`/)

    const pulled = await runCli(['models', 'pull', '--home', home, '--from', hubUrl])
    assert.equal(pulled.code, 0, pulled.stderr)
    assert.match(pulled.stdout, /all-MiniLM-L6-v2 is in .*models.all-MiniLM-L6-v2; use it with "embedder": \{"type": "local", "model": "all-MiniLM-L6-v2"\}/)
    assert.match(pulled.stderr, /downloading onnx\/model_quantized\.onnx \(4\/4\)/)

    const listed = await runCli(['models', 'list', '--home', home, '--json'])
    assert.equal(listed.code, 0, listed.stderr)
    const { models } = JSON.parse(listed.stdout)
    assert.deepEqual(models.map((m: any) => [m.name, m.missing]), [['all-MiniLM-L6-v2', []]])

    await writeFile(join(home, 'config.json'), JSON.stringify({ embedder: { type: 'local', model: 'all-MiniLM-L6-v2' }, capabilities: [EMBED_CAPABILITY] }))
    const node = await startNodeProcess(home)
    running.push(node)
    const asked = await runCli(['ask', 'embed texts', '--input', 'resize a picture', '--home', home, '--json'])
    assert.equal(asked.code, 0, asked.stderr)
    const { output } = JSON.parse(asked.stdout)
    assert.equal(output.model, 'all-MiniLM-L6-v2')
    assert.equal(output.dim, 8)
    const found = await runCli(['find', 'embed texts', '--home', home, '--json'])
    assert.equal(found.code, 0, found.stderr)
    assert.equal(JSON.parse(found.stdout).results[0].name, 'embed-texts')
  })

  it('models pull from a hub without the model fails with exit 1 and one line naming the file', async () => {
    const home = await tempDir()
    const { code, stderr } = await runCli(['models', 'pull', 'someone/missing-model', '--home', home], { env: { HF_ENDPOINT: hubUrl } })
    assert.equal(code, 1)
    assert.match(stderr.trim(), /^aistack: models pull: cannot fetch http:\/\/127\.0\.0\.1:\d+\/someone\/missing-model\/resolve\/main\/config\.json: HTTP 404$/)
    const bad = await runCli(['models', 'fetch', '--home', home])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /unknown subcommand "fetch"/)
    const help = await runCli(['models', '--help'])
    assert.equal(help.code, 0)
    for (const word of ['pull', 'list', '--from', '--dir', 'HF_ENDPOINT']) assert.ok(help.stdout.includes(word), word)
  })
})
