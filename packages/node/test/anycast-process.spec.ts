import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, removeTempDirs, runCli, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'

/** An exec capability: a small Node script that reads stdin and prints `<prefix>:<input>`. */
function execCapability (name: string, description: string, prefix: string, examples: string[]): unknown {
  const script = `let s='';process.stdin.on('data',d=>s+=d).on('end',()=>process.stdout.write(${JSON.stringify(prefix)}+':'+s))`
  return { name, description, examples, handler: { type: 'exec', command: [process.execPath, '-e', script], timeoutMs: 10_000 } }
}

async function homeWith (capabilities: unknown[]): Promise<string> {
  const home = await tempDir()
  await writeFile(join(home, 'config.json'), JSON.stringify({ capabilities }))
  return home
}

describe('semantic anycast across node processes', function () {
  this.timeout(180_000)
  const nodes: NodeProcess[] = []
  let asker: NodeProcess
  let translator: NodeProcess
  let summarizer: NodeProcess

  before(async () => {
    translator = await startNodeProcess(await homeWith([
      execCapability('translate-french', 'Translate English text into French', 'fr', ['translate this sentence to French', 'say hello in French'])
    ]))
    nodes.push(translator)
    const bootstrap = ['--bootstrap', translator.run.multiaddrs[0]]
    summarizer = await startNodeProcess(await homeWith([
      execCapability('summarize-text', 'Summarize a long document into a short paragraph', 'summary', ['summarize this report', 'give me a short summary of the article'])
    ]), bootstrap)
    nodes.push(summarizer)
    asker = await startNodeProcess(await tempDir(), bootstrap)
    nodes.push(asker)
    // both capabilities known to the asking node (by gossip or through the DHT)
    await waitFor(async () => {
      const { json } = await api(asker.run, 'GET', '/v1/capabilities/search?q=translate%20or%20summarize&k=10')
      const names = (json?.results ?? []).map((r: any) => r.name)
      return names.includes('translate-french') && names.includes('summarize-text')
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'both capabilities visible to the asker' })
  })

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    await removeTempDirs()
  })

  it('aistack ask is answered by the node whose capability is nearest in meaning', async () => {
    const french = await runCli(['ask', 'please translate this sentence into French', '--input', 'good morning', '--home', asker.home, '--json'])
    assert.equal(french.code, 0, french.stderr)
    const answer = JSON.parse(french.stdout)
    assert.equal(answer.output, 'fr:good morning')
    assert.equal(answer.capability, 'translate-french')
    assert.equal(answer.peerId, translator.run.peerId)

    const summary = await runCli(['ask', 'write a short summary of this long report', '--input', 'a long report', '--home', asker.home])
    assert.equal(summary.code, 0, summary.stderr)
    assert.equal(summary.stdout, 'summary:a long report\n', `the summarizer answers, with a newline at the end; ${summary.stderr}`)
    assert.match(summary.stderr, new RegExp(`answered by summarize-text on ${summarizer.run.peerId}`))
  })

  it('aistack find ranks the right capability first', async () => {
    const found = await runCli(['find', 'summarize an article', '-k', '2', '--home', asker.home, '--json'])
    assert.equal(found.code, 0, found.stderr)
    const { results } = JSON.parse(found.stdout)
    assert.equal(results[0].name, 'summarize-text')
    assert.equal(results[0].peerId, summarizer.run.peerId)
    assert.ok(results[0].similarity > (results[1]?.similarity ?? 0))
  })

  it('registers and removes a capability at run time through the API', async () => {
    const spec = execCapability('reverse-words', 'Reverse the order of words in a sentence', 'rev', ['reverse these words'])
    const added = await api(summarizer.run, 'POST', '/v1/capabilities', { body: spec })
    assert.equal(added.status, 201, added.text)
    assert.equal(added.json.name, 'reverse-words')
    const listed = await api(summarizer.run, 'GET', '/v1/capabilities')
    assert.deepEqual(listed.json.capabilities.map((c: any) => c.name).sort(), ['reverse-words', 'summarize-text'])
    const duplicate = await api(summarizer.run, 'POST', '/v1/capabilities', { body: spec })
    assert.equal(duplicate.status, 409)
    const removed = await api(summarizer.run, 'DELETE', '/v1/capabilities/reverse-words')
    assert.equal(removed.status, 200)
    assert.equal((await api(summarizer.run, 'DELETE', '/v1/capabilities/reverse-words')).status, 404)
  })

  it('refuses bad requests with a message that names the field', async () => {
    const builtin = await api(asker.run, 'POST', '/v1/capabilities', { body: { name: 'echo-it', description: 'Echo', handler: { type: 'builtin', name: 'echo' } } })
    assert.equal(builtin.status, 400)
    assert.match(builtin.json.error.message, /body\.handler\.type/)
    const noCommand = await api(asker.run, 'POST', '/v1/capabilities', { body: { name: 'bad-exec', description: 'Bad', handler: { type: 'exec', command: [] } } })
    assert.equal(noCommand.status, 400)
    assert.match(noCommand.json.error.message, /body\.handler\.command/)
    const noQuery = await api(asker.run, 'POST', '/v1/ask', { body: { input: 'x' } })
    assert.equal(noQuery.status, 400)
    assert.match(noQuery.json.error.message, /query/)
    const noQ = await api(asker.run, 'GET', '/v1/capabilities/search?k=3')
    assert.equal(noQ.status, 400)
    const badK = await api(asker.run, 'GET', '/v1/capabilities/search?q=x&k=0')
    assert.equal(badK.status, 400)
    assert.match(badK.json.error.message, /\bk\b/)
    const cli = await runCli(['ask', '--home', asker.home])
    assert.equal(cli.code, 2)
    assert.match(cli.stderr, /the text to ask is missing/)
  })
})

describe('capabilities in config.json', function () {
  this.timeout(60_000)
  after(async () => { await removeTempDirs() })

  it('a bad capability definition stops start with a message naming the field', async () => {
    const home = await homeWith([{ name: 'ok-one', description: 'Fine', handler: { type: 'builtin', name: 'echo' } }, { name: 'broken', description: 'Broken', handler: { type: 'exec', command: 'ls -l' } }])
    const result = await runCli(['start', '--home', home, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
    assert.equal(result.code, 2)
    assert.match(result.stderr, /config\.json: capabilities\[1\]\.handler\.command/)
  })
})
