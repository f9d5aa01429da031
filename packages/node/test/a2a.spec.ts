import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Role, TaskState } from '@a2a-js/sdk'
import { ClientFactory, JsonRpcTransportFactory } from '@a2a-js/sdk/client'
import { A2AClient } from 'a2a-sdk-v03/client'
import { BoundedTaskStore, inputOf, partOf } from '../src/gateways/a2a.js'
import { api, removeTempDirs, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'
import type { Message, Task } from '@a2a-js/sdk'

function execCapability (name: string, description: string, examples: string[], script: string): unknown {
  return { name, description, examples, handler: { type: 'exec', command: [process.execPath, '-e', script], timeoutMs: 30_000 } }
}

const SHOUT = 'let s=\'\';process.stdin.on(\'data\',d=>s+=d).on(\'end\',()=>process.stdout.write(s.toUpperCase()))'
// answers after 1.5 s: long enough to be seen working
const SLOW = 'let s=\'\';process.stdin.on(\'data\',d=>s+=d).on(\'end\',()=>setTimeout(()=>process.stdout.write(\'slow:\'+s),1500))'

function userMessage (text: string, metadata: Record<string, unknown>): Message {
  return {
    messageId: randomUUID(),
    contextId: '',
    taskId: '',
    role: Role.ROLE_USER,
    parts: [partOf(text)],
    metadata,
    extensions: [],
    referenceTaskIds: []
  }
}

function textOfMessage (m: Message | undefined): string {
  return (m?.parts ?? []).map(p => p.content?.$case === 'text' ? p.content.value : '').join('')
}

describe('A2A gateway: the node as one A2A agent', function () {
  this.timeout(180_000)
  let server: NodeProcess
  let gateway: NodeProcess
  let authFetch: typeof fetch

  before(async () => {
    const home = await tempDir()
    await writeFile(join(home, 'config.json'), JSON.stringify({
      capabilities: [
        execCapability('shout-text', 'Make a text upper case, in capital letters', ['make this text upper case', 'shout this'], SHOUT),
        execCapability('slow-report', 'Write a long quarterly report slowly', ['write the quarterly report'], SLOW)
      ]
    }))
    server = await startNodeProcess(home)
    const gatewayHome = await tempDir()
    await writeFile(join(gatewayHome, 'config.json'), JSON.stringify({ a2a: { skills: 'network' } }))
    gateway = await startNodeProcess(gatewayHome, ['--bootstrap', server.run.multiaddrs[0]])
    const token = gateway.run.api.token
    authFetch = async (url, init) => {
      const headers = new Headers(init?.headers)
      headers.set('authorization', `Bearer ${token}`)
      return await fetch(url, { ...init, headers })
    }
    for (const q of ['make this text upper case', 'write the quarterly report']) {
      await waitFor(async () => {
        const { json } = await api(gateway.run, 'GET', `/v1/capabilities/search?q=${encodeURIComponent(q)}&k=3`)
        return (json?.results ?? []).some((r: any) => r.peerId === server.run.peerId)
      }, { timeoutMs: 60_000, intervalMs: 200, what: `"${q}" found by the gateway node` })
    }
  })

  after(async () => {
    await Promise.all([server, gateway].filter(n => n != null).map(async n => n.stop()))
    await removeTempDirs()
  })

  it('serves the agent card without a token, naming the bearer scheme; /a2a needs the token', async () => {
    const res = await fetch(`${gateway.run.api.url}/.well-known/agent-card.json`, { headers: { 'A2A-Version': '1.0' } })
    assert.equal(res.status, 200)
    const card = await res.json()
    assert.equal(card.supportedInterfaces[0].url, `${gateway.run.api.url}/a2a`)
    assert.equal(card.supportedInterfaces[0].protocolBinding, 'JSONRPC')
    assert.ok(JSON.stringify(card.securitySchemes).includes('Bearer'), JSON.stringify(card.securitySchemes))
    // a2a.skills "network": the skills are the capabilities the node knows, not only its own
    assert.ok(card.skills.some((s: any) => s.id === 'shout-text'), JSON.stringify(card.skills))
    const denied = await fetch(`${gateway.run.api.url}/a2a`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    assert.equal(denied.status, 401)
  })

  it('the 1.x client: a message routed by metadata.query gets the answer of a capability on another node', async () => {
    const factory = new ClientFactory({ transports: [new JsonRpcTransportFactory({ fetchImpl: authFetch })], cardResolver: undefined as any })
    const client = await factory.createFromUrl(gateway.run.api.url)
    const result = await client.sendMessage({ tenant: '', message: userMessage('hello agents', { query: 'make this text upper case' }), configuration: undefined, metadata: undefined })
    assert.ok('parts' in result, JSON.stringify(result))
    assert.equal(textOfMessage(result as Message), 'HELLO AGENTS')

    // by skill name, no query: the text is only the input
    const bySkill = await client.sendMessage({ tenant: '', message: userMessage('named skill', { skill: 'shout-text' }), configuration: undefined, metadata: undefined })
    assert.equal(textOfMessage(bySkill as Message), 'NAMED SKILL')
  })

  it('streaming, and a long task followed with GetTask and ListTasks', async () => {
    const factory = new ClientFactory({ transports: [new JsonRpcTransportFactory({ fetchImpl: authFetch })] } as any)
    const client = await factory.createFromUrl(gateway.run.api.url)

    const events: string[] = []
    let streamed = ''
    for await (const event of client.sendMessageStream({ tenant: '', message: userMessage('streamed', { skill: 'shout-text' }), configuration: undefined, metadata: undefined })) {
      events.push(event.payload?.$case ?? 'none')
      if (event.payload?.$case === 'message') streamed = textOfMessage(event.payload.value)
    }
    assert.equal(streamed, 'STREAMED', events.join(','))

    const started = await client.sendMessage({
      tenant: '',
      message: userMessage('q3', { query: 'write the quarterly report' }),
      configuration: { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately: true },
      metadata: undefined
    })
    assert.ok('status' in started, JSON.stringify(started))
    const id = (started as Task).id
    const done = await waitFor(async () => {
      const t = await client.getTask({ tenant: '', id, historyLength: undefined })
      return t.status?.state === TaskState.TASK_STATE_COMPLETED ? t : undefined
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'the long task to complete' })
    assert.equal(textOfMessage(done.status?.message), 'slow:q3')
    const listed = await client.listTasks({ tenant: '', contextId: '', status: TaskState.TASK_STATE_UNSPECIFIED, pageToken: '', statusTimestampAfter: undefined } as any)
    assert.ok(listed.tasks.some(t => t.id === id))
  })

  it('the 0.3 client (message/send) works against the same endpoint', async () => {
    const client = await A2AClient.fromCardUrl(`${gateway.run.api.url}/.well-known/agent-card.json`, { fetchImpl: authFetch })
    const response: any = await client.sendMessage({
      message: { kind: 'message', role: 'user', messageId: randomUUID(), parts: [{ kind: 'text', text: 'old client' }], metadata: { query: 'make this text upper case' } }
    })
    assert.equal(response.error, undefined, JSON.stringify(response.error))
    const result = response.result
    const text = result.kind === 'message' ? result.parts[0].text : result.status?.message?.parts?.[0]?.text
    assert.equal(text, 'OLD CLIENT')
  })

  it('bad input gets JSON-RPC error objects and the node lives', async () => {
    const post = async (body: string): Promise<any> => {
      const res = await authFetch(`${gateway.run.api.url}/a2a`, { method: 'POST', headers: { 'content-type': 'application/json', 'A2A-Version': '1.0' }, body })
      return { status: res.status, json: await res.json().catch(() => undefined) }
    }
    const unknown = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'NoSuchMethod', params: {} }))
    assert.equal(unknown.json?.error?.code, -32601, JSON.stringify(unknown))
    const malformed = await post('{"jsonrpc": "2.0", "id": 2, "method": ')
    assert.ok(malformed.json?.error?.code === -32700 || malformed.status === 400, JSON.stringify(malformed))
    const huge = await post(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'SendMessage', params: { message: { parts: [{ text: 'x'.repeat(6 * 1024 * 1024) }] } } }))
    assert.ok(huge.status === 413 || huge.json?.error != null, JSON.stringify(huge).slice(0, 300))
    assert.equal(huge.status, 413)
    assert.equal(huge.json?.error?.code, -32600)
    const deep = await post('{"jsonrpc":"2.0","id":4,"method":"SendMessage","params":' + '['.repeat(10_000) + ']'.repeat(10_000) + '}')
    assert.equal(deep.json?.error?.code, -32600, JSON.stringify(deep))
    const health = await fetch(`${gateway.run.api.url}/healthz`)
    assert.equal(health.status, 200)
  })

  it('keeps a bounded number of A2A tasks, and reads a message\'s input from its text or data part', async () => {
    const store = new BoundedTaskStore(3)
    const ctx = {} as any
    for (let i = 0; i < 5; i++) await store.save({ id: `t${i}`, contextId: 'c', status: undefined, artifacts: [], history: [], metadata: undefined }, ctx)
    assert.equal(await store.load('t0', ctx), undefined)
    assert.equal((await store.load('t4', ctx))?.id, 't4')
    const page = await store.list({ tenant: '', contextId: '', status: TaskState.TASK_STATE_UNSPECIFIED, pageSize: 2, pageToken: '' } as any, ctx)
    assert.deepEqual(page.tasks.map(t => t.id), ['t4', 't3'])
    assert.equal(page.totalSize, 3)
    assert.equal(page.nextPageToken, '2')
    assert.equal(inputOf(userMessage('text', {})), 'text')
    assert.deepEqual(inputOf({ ...userMessage('', {}), parts: [partOf({ a: 1 })] }), { a: 1 })
  })
})
