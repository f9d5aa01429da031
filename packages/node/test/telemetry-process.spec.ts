import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { api, removeTempDirs, runCli, startNodeProcess, takeSseMessages, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'
import type { AddressInfo } from 'node:net'

const INTERVAL_MS = 1000

async function homeWith (config: Record<string, unknown>): Promise<string> {
  const home = await tempDir()
  await writeFile(join(home, 'config.json'), JSON.stringify({ telemetry: { intervalMs: INTERVAL_MS }, ...config }))
  return home
}

/** An OTLP/HTTP receiver: collects the bodies POSTed to /v1/traces */
async function otlpReceiver (): Promise<{ url: string, bodies: string[], close: () => Promise<void> }> {
  const bodies: string[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', d => { body += String(d) })
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(body)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}/v1/traces`, bodies, close: async () => { await new Promise(resolve => server.close(resolve)) } }
}

describe('telemetry across node processes', function () {
  this.timeout(240_000)
  const nodes: NodeProcess[] = []
  let otlp: Awaited<ReturnType<typeof otlpReceiver>>
  let gpuFile: string

  before(async () => {
    otlp = await otlpReceiver()
    // a stand-in nvidia-smi on the PATH of node 1 that reports what a file says
    const bin = join(await tempDir(), 'bin')
    await mkdir(bin)
    gpuFile = join(bin, 'utilization')
    await writeFile(gpuFile, '99')
    await writeFile(join(bin, 'nvidia-smi'), `#!/bin/sh\necho "0, Stand-in GPU, $(cat '${gpuFile}'), 2048, 16384"\n`)
    await chmod(join(bin, 'nvidia-smi'), 0o755)

    nodes.push(await startNodeProcess(await homeWith({ telemetry: { intervalMs: INTERVAL_MS, otlp: { endpoint: otlp.url } } })))
    const bootstrap = ['--bootstrap', nodes[0].run.multiaddrs[0]]
    nodes.push(await startNodeProcess(await homeWith({
      capabilities: [{ name: 'echo', description: 'Echo back the input text unchanged', handler: { type: 'builtin', name: 'echo' } }]
    }), bootstrap, { env: { PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` } }))
    for (let i = 2; i < 5; i++) nodes.push(await startNodeProcess(await homeWith({}), bootstrap))
  })

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    await otlp?.close()
    await removeTempDirs()
  })

  it('GET /v1/network on one node lists all five up with fresh telemetry, and a killed node turns down', async () => {
    const ids = nodes.map(n => n.run.peerId)
    const started = Date.now()
    const network = await waitFor(async () => {
      const { json } = await api(nodes[0].run, 'GET', '/v1/network')
      const fresh = (json?.nodes ?? []).filter((n: any) => n.status === 'up' && n.complete === true && n.lastSeenMs < 3 * INTERVAL_MS && n.rssBytes > 0)
      return ids.every(id => fresh.some((n: any) => n.peerId === id)) ? json : undefined
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'five nodes up in node 0\'s table' })
    const tookMs = Date.now() - started
    assert.ok(tookMs < 15_000, `the table filled in ${tookMs} ms`)
    assert.equal(network.nodes.length, 5)
    assert.equal(network.nodes[0].peerId, ids[0])
    assert.equal(network.nodes[0].self, true)
    const echo = network.nodes.find((n: any) => n.peerId === ids[1])
    assert.deepEqual(echo.capabilities.map((c: any) => c.name), ['echo'])
    assert.equal(echo.capabilities[0].capacity > 0, true)
    assert.equal(network.nodes.find((n: any) => n.peerId === ids[2]).gpus, undefined)

    // aistack top --once --json prints the same table
    const top = await runCli(['top', '--once', '--json', '--home', nodes[0].home])
    assert.equal(top.code, 0, top.stderr)
    const printed = JSON.parse(top.stdout)
    assert.deepEqual(printed.nodes.map((n: any) => n.peerId).sort(), [...ids].sort())
    const text = await runCli(['top', '--once', '--sort', 'cpu', '--home', nodes[0].home])
    assert.equal(text.code, 0, text.stderr)
    assert.equal(text.stdout.trim().split('\n').length, 6, text.stdout)
    assert.match(text.stdout, /PEER +STATUS/)
    const bad = await runCli(['top', '--once', '--sort', 'shoe-size', '--home', nodes[0].home])
    assert.equal(bad.code, 2)

    // /metrics carries the table
    const metrics = await api(nodes[0].run, 'GET', '/metrics')
    assert.match(metrics.text, /aistack_telemetry_nodes\{status="up"\} 5/)
    assert.match(metrics.text, new RegExp(`aistack_telemetry_capability_capacity\\{peer="${ids[1]}",capability="echo"\\}`))

    const victim = nodes[4]
    victim.child.kill('SIGKILL')
    await victim.stop()
    const killedAt = Date.now()
    await waitFor(async () => {
      const { json } = await api(nodes[0].run, 'GET', '/v1/network')
      return json.nodes.find((n: any) => n.peerId === victim.run.peerId)?.status === 'down'
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'the killed node to be down' })
    assert.ok(Date.now() - killedAt < 30_000, `down after ${Date.now() - killedAt} ms`)
    const { json } = await api(nodes[0].run, 'GET', '/v1/network')
    assert.equal(json.nodes.filter((n: any) => n.status === 'up').length, 4)
  })

  it('a stand-in nvidia-smi shows GPU fields and raises and clears the GPU alerts', async () => {
    const gpuNode = nodes[1]
    const response = await fetch(`${gpuNode.run.api.url}/v1/events?type=telemetry`, { headers: { authorization: `Bearer ${gpuNode.run.api.token}` } })
    assert.equal(response.status, 200)
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    const events: any[] = []
    let buffer = ''
    const readUntil = async (pred: () => boolean): Promise<void> => {
      await waitFor(async () => {
        if (pred()) return true
        const { value, done } = await reader.read()
        if (done === true) throw new Error('the event stream ended')
        const taken = takeSseMessages(buffer + new TextDecoder().decode(value))
        buffer = taken.rest
        events.push(...taken.messages)
        return pred()
      }, { timeoutMs: 60_000, intervalMs: 10, what: 'telemetry alert events' })
    }
    const alertIs = (name: string, active: boolean) => (): boolean => events.some(e => e.event === 'telemetry.alert' && e.data.alert.name === name && e.data.alert.active === active)

    // the node was overloaded from the start: the alert is active; the next sample at 10 % turns it idle
    await waitFor(async () => {
      const { json } = await api(nodes[0].run, 'GET', '/v1/network')
      const row = json.nodes.find((n: any) => n.peerId === gpuNode.run.peerId)
      return row?.gpus?.[0]?.utilization === 99 && row.alerts.includes('gpu-overloaded:gpu0')
    }, { timeoutMs: 30_000, intervalMs: 250, what: 'GPU fields and the overload alert in node 0\'s table' })
    const metrics = await api(gpuNode.run, 'GET', '/metrics')
    assert.match(metrics.text, /aistack_telemetry_alert\{kind="gpu-overloaded",subject="gpu0"\} 1/)
    assert.match(metrics.text, /aistack_telemetry_gpu_utilization_percent\{peer="[^"]+",gpu="0"\} 99/)

    await writeFile(gpuFile, '10')
    await readUntil(() => alertIs('gpu-overloaded:gpu0', false)() && alertIs('gpu-idle:gpu0', true)())
    await writeFile(gpuFile, '60')
    await readUntil(alertIs('gpu-idle:gpu0', false))
    const cleared = events.find(e => e.data.alert?.name === 'gpu-idle:gpu0' && e.data.alert.active === false)
    assert.equal(cleared.data.origin, gpuNode.run.peerId)
    await reader.cancel()
    const after = await api(gpuNode.run, 'GET', '/metrics')
    assert.doesNotMatch(after.text, /aistack_telemetry_alert\{kind="gpu-/)
  })

  it('an ask answered by another node returns a trace id; the trace holds the spans of both nodes, is printed and exported over OTLP', async () => {
    await waitFor(async () => {
      const { json } = await api(nodes[0].run, 'GET', '/v1/capabilities/search?q=echo%20the%20input&k=3')
      return (json?.results ?? []).some((r: any) => r.name === 'echo')
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'the echo capability visible to node 0' })
    const ask = await runCli(['ask', 'echo back the input text', '--input', 'hello', '--home', nodes[0].home, '--json'])
    assert.equal(ask.code, 0, ask.stderr)
    const answer = JSON.parse(ask.stdout)
    assert.equal(answer.peerId, nodes[1].run.peerId)
    assert.match(answer.traceId, /^[0-9a-f]{32}$/)

    const trace = await api(nodes[0].run, 'GET', `/v1/traces/${answer.traceId as string}`)
    assert.equal(trace.status, 200, trace.text)
    assert.equal(trace.json.traceId, answer.traceId)
    const [span] = trace.json.spans
    assert.equal(span.name, 'ask')
    assert.equal(span.peerId, nodes[0].run.peerId)
    assert.equal(span.parentId, null)
    assert.equal(span.attributes['aistack.peer'], nodes[1].run.peerId)
    assert.equal(span.attributes['aistack.capability'], 'echo')
    assert.ok(span.durationMs > 0)
    // one span per attempt with the semantic path, and under it the answering node's spans
    const named = (name: string): any[] => trace.json.spans.filter((s: any) => s.name === name)
    const [attempt] = named('anycast.attempt')
    assert.equal(named('anycast.attempt').length, answer.attempts)
    assert.equal(attempt.peerId, nodes[0].run.peerId)
    assert.equal(attempt.parentId, span.spanId)
    assert.equal(attempt.attributes['aistack.peer'], nodes[1].run.peerId)
    assert.equal(attempt.attributes['aistack.capability'], 'echo')
    assert.equal(attempt.attributes['aistack.similarity'], answer.similarity)
    assert.ok(['cache', 'dht'].includes(attempt.attributes['aistack.source']), attempt.attributes['aistack.source'])
    assert.match(attempt.attributes['aistack.reason'], /^(best|exact) match$/)
    assert.equal(attempt.attributes['aistack.remote_spans'], 2)
    const [serve] = named('anycast.serve')
    assert.equal(serve.peerId, nodes[1].run.peerId)
    assert.equal(serve.parentId, attempt.spanId)
    assert.equal(serve.attributes['aistack.from'], nodes[0].run.peerId)
    assert.equal(serve.attributes['aistack.status'], 'OK')
    const [run] = named('capability.run')
    assert.equal(run.peerId, nodes[1].run.peerId)
    assert.equal(run.parentId, serve.spanId)
    assert.equal(run.attributes['aistack.capability'], 'echo')
    assert.ok(serve.durationMs >= run.durationMs)

    const printed = await runCli(['trace', answer.traceId, '--home', nodes[0].home])
    assert.equal(printed.code, 0, printed.stderr)
    assert.match(printed.stdout, new RegExp(`^trace ${answer.traceId as string}`))
    assert.match(printed.stdout, /└─ ask {2}\+0\.0 ms {2}[\d.]+ ms {2}on .* capability=echo/)
    const short = (id: string): string => `${id.slice(0, 8)}…${id.slice(-6)}`
    assert.match(printed.stdout, new RegExp(`\n {3}└─ anycast\\.attempt .* on ${short(nodes[0].run.peerId)} .*reason=`))
    assert.match(printed.stdout, new RegExp(`\n {6}└─ anycast\\.serve .* on ${short(nodes[1].run.peerId)} `))
    assert.match(printed.stdout, new RegExp(`\n {9}└─ capability\\.run .* on ${short(nodes[1].run.peerId)} `))
    assert.equal((await api(nodes[0].run, 'GET', '/v1/traces/0123')).status, 400)
    assert.equal((await api(nodes[0].run, 'GET', `/v1/traces/${'ab'.repeat(16)}`)).status, 404)

    // the OTLP exporter sends spans in batches within about a second; the answering node's
    // spans go under a resource naming that node
    const exported = (): Array<{ resource: any, span: any }> => otlp.bodies.flatMap(b => JSON.parse(b).resourceSpans.flatMap((r: any) =>
      r.scopeSpans.flatMap((s: any) => s.spans.map((span: any) => ({ resource: r.resource, span })))))
      .filter(e => e.span.traceId === answer.traceId)
    await waitFor(() => exported().length >= 4, { timeoutMs: 30_000, intervalMs: 100, what: 'the spans at the OTLP receiver' })
    const instance = (e: { resource: any }): string => e.resource.attributes.find((a: any) => a.key === 'service.instance.id')?.value.stringValue
    assert.ok(exported().some(e => e.span.name === 'ask' && instance(e) === nodes[0].run.peerId))
    const remote = exported().find(e => e.span.name === 'anycast.serve')
    assert.ok(remote != null, 'the remote span was exported')
    assert.equal(instance(remote), nodes[1].run.peerId)
    assert.equal(remote.span.spanId, serve.spanId)
    assert.equal(remote.span.parentSpanId, attempt.spanId)
  })

  it('a task run by another node carries the trace: the submitter\'s trace holds the worker\'s span', async () => {
    const submitted = await api(nodes[0].run, 'POST', '/v1/tasks', { body: { capability: 'echo', input: 'traced task' } })
    assert.equal(submitted.status, 202, submitted.text)
    const { id, traceId } = submitted.json
    assert.match(traceId, /^[0-9a-f]{32}$/)
    const task = await waitFor(async () => {
      const { json } = await api(nodes[0].run, 'GET', `/v1/tasks/${id as string}`)
      return json?.state === 'completed' ? json : undefined
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'the task to complete' })
    assert.equal(task.traceId, traceId)
    assert.equal(task.worker, nodes[1].run.peerId)

    const trace = await waitFor(async () => {
      const { json } = await api(nodes[0].run, 'GET', `/v1/traces/${traceId as string}`)
      return json?.spans?.some((s: any) => s.name === 'task.run') === true ? json : undefined
    }, { timeoutMs: 30_000, intervalMs: 250, what: 'the worker\'s span in the submitter\'s trace' })
    const submit = trace.spans.find((s: any) => s.name === 'task.submit')
    assert.equal(submit.peerId, nodes[0].run.peerId)
    assert.equal(submit.parentId, null)
    assert.equal(submit.attributes['aistack.task'], id)
    const run = trace.spans.find((s: any) => s.name === 'task.run')
    assert.equal(run.peerId, nodes[1].run.peerId)
    assert.equal(run.parentId, submit.spanId)
    assert.equal(run.attributes['aistack.task'], id)
    assert.equal(run.attributes['aistack.capability'], 'echo')
    assert.equal(run.attributes['aistack.outcome'], 'ok')
  })
})
