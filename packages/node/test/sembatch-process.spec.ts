import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { BIN, api, removeTempDirs, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { NodeProcess } from './helpers.js'

describe('sembatch across node processes: ask/batch and streamed answers', function () {
  this.timeout(180_000)
  const nodes: NodeProcess[] = []
  let asker: NodeProcess
  let server: NodeProcess
  let llm: Server
  /** the test lets the fake LLM produce its last tokens when it has seen the first one printed */
  let release = Promise.withResolvers<void>()
  let lastTokenSent = false

  before(async () => {
    // an OpenAI-compatible server that streams its tokens, waiting after the first
    llm = createServer((req, res) => {
      let body = ''
      req.on('data', d => { body += String(d) }).on('end', () => {
        const wanted = JSON.parse(body)
        if (wanted.stream !== true) {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ choices: [{ message: { content: 'Once upon a time' } }] }))
          return
        }
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        const token = (t: string): string => `data: ${JSON.stringify({ choices: [{ delta: { content: t } }] })}\n\n`
        res.write(token('Once'))
        release.promise.then(() => {
          res.write(token(' upon'))
          res.write(token(' a time'))
          lastTokenSent = true
          res.end('data: [DONE]\n\n')
        }, () => {})
      })
    })
    await new Promise<void>(resolve => llm.listen(0, '127.0.0.1', resolve))
    const llmUrl = `http://127.0.0.1:${(llm.address() as AddressInfo).port}/v1`
    const home = await tempDir()
    await writeFile(join(home, 'config.json'), JSON.stringify({
      capabilities: [{
        name: 'story-teller',
        description: 'Write a short fairy tale story with a language model',
        examples: ['tell me a fairy tale', 'write a bedtime story'],
        handler: { type: 'openai', baseUrl: llmUrl, model: 'test-model', timeoutMs: 60_000 }
      }, {
        name: 'shout-echo',
        description: 'Repeat the given text back unchanged, an echo service',
        examples: ['echo this text back', 'repeat what I say'],
        handler: { type: 'builtin', name: 'echo', maxInputBytes: 200, concurrency: 8 }
      }]
    }))
    server = await startNodeProcess(home)
    nodes.push(server)
    asker = await startNodeProcess(await tempDir(), ['--bootstrap', server.run.multiaddrs[0]])
    nodes.push(asker)
    await waitFor(async () => {
      const { json } = await api(asker.run, 'GET', '/v1/capabilities/search?q=echo%20this%20text%20back&k=5')
      return (json?.results ?? []).some((r: any) => r.name === 'shout-echo')
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'the capability visible to the asker' })
    await waitFor(async () => {
      const { json } = await api(asker.run, 'GET', '/v1/capabilities/search?q=tell%20me%20a%20fairy%20tale&k=5')
      return json?.results?.[0]?.name === 'story-teller'
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'the story capability visible to the asker' })
  })

  after(async () => {
    release.resolve()
    await Promise.all(nodes.map(async n => n.stop()))
    await new Promise(resolve => llm.close(resolve))
    await removeTempDirs()
  })

  it('answers 500 inputs in input order, with a failure for the one input over the limit', async () => {
    const inputs: unknown[] = Array.from({ length: 500 }, (_, i) => ({ n: i, text: `item ${i}` }))
    inputs[123] = 'x'.repeat(500)
    const { status, json, text } = await api(asker.run, 'POST', '/v1/ask/batch', { body: { query: 'echo this text back', inputs } })
    assert.equal(status, 200, text)
    assert.equal(json.peerId, server.run.peerId)
    assert.equal(json.capability, 'shout-echo')
    assert.equal(json.transport, 'sembatch')
    assert.equal(json.outputs.length, 500)
    json.outputs.forEach((o: any, i: number) => {
      if (i === 123) {
        assert.equal(o.error?.code, 'RemoteError')
        assert.match(o.error.message, /InputTooLargeError/)
      } else {
        assert.deepEqual(o, { output: { n: i, text: `item ${i}` } })
      }
    })
  })

  it('aistack ask --stream prints the first token before the last is produced', async () => {
    release = Promise.withResolvers<void>()
    lastTokenSent = false
    const child = spawn(process.execPath, [BIN, 'ask', 'tell me a fairy tale', '--stream', '--home', asker.home], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let sawFirstEarly = false
    child.stdout.on('data', d => {
      stdout += String(d)
      if (stdout.includes('Once') && !lastTokenSent) {
        sawFirstEarly = true
        release.resolve()
      }
    })
    child.stderr.on('data', d => { stderr += String(d) })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
    clearTimeout(timer)
    assert.equal(code, 0, stderr)
    assert.ok(sawFirstEarly, 'the first token was printed before the last was produced')
    assert.equal(stdout, 'Once upon a time')
    assert.match(stderr, /answered by story-teller .* over sembatch/)
  })

  it('POST /v1/ask with "stream": true answers in server-sent events; without it, whole', async () => {
    release = Promise.withResolvers<void>()
    release.resolve()
    const res = await fetch(asker.run.api.url + '/v1/ask', {
      method: 'POST',
      headers: { authorization: `Bearer ${asker.run.api.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'tell me a fairy tale', input: 'go', stream: true })
    })
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/)
    const text = await res.text()
    const pieces = [...text.matchAll(/event: piece\ndata: (.*)\n/g)].map(m => JSON.parse(m[1]).piece)
    assert.deepEqual(pieces, ['Once', ' upon', ' a time'])
    assert.match(text, /event: done\ndata: .*"capability":"story-teller"/)
    const whole = await api(asker.run, 'POST', '/v1/ask', { body: { query: 'tell me a fairy tale', input: 'go' } })
    assert.equal(whole.json.output, 'Once upon a time')
  })

  it('refuses a body without inputs with 400', async () => {
    const { status, json } = await api(asker.run, 'POST', '/v1/ask/batch', { body: { query: 'echo', inputs: [] } })
    assert.equal(status, 400)
    assert.equal(json.error.code, 'bad_request')
  })
})
