import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { AGENT_CARD_PATH, A2A_PROTOCOL_VERSION, Role } from '@a2a-js/sdk'
import { AgentEvent, DefaultRequestHandler, InMemoryTaskStore } from '@a2a-js/sdk/server'
import { UserBuilder, agentCardHandler, jsonRpcHandler } from '@a2a-js/sdk/server/express'
import express from 'express'
import { toolArguments } from '../src/capabilities/remote.js'
import { api, removeTempDirs, runCli, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'
import type { AgentCard } from '@a2a-js/sdk'
import type { AgentExecutor } from '@a2a-js/sdk/server'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

const MCP_SERVER = fileURLToPath(new URL('./fixtures/mcp-server.js', import.meta.url))

/** An A2A agent written with the SDK: it answers "echo: <text>" */
async function startA2aAgent (): Promise<{ url: string, server: Server }> {
  const executor: AgentExecutor = {
    execute: async (ctx, bus) => {
      const text = ctx.userMessage.parts.map(p => p.content?.$case === 'text' ? p.content.value : '').join('')
      bus.publish(AgentEvent.message({
        messageId: randomUUID(),
        contextId: ctx.contextId,
        taskId: '',
        role: Role.ROLE_AGENT,
        parts: [{ content: { $case: 'text', value: `echo: ${text}` }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
        metadata: undefined,
        extensions: [],
        referenceTaskIds: []
      }))
    },
    cancelTask: async () => {}
  }
  const app = express()
  const server = createServer(app)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const card: AgentCard = {
    name: 'echo agent',
    description: 'Echo a message back, repeating what was said',
    supportedInterfaces: [{ url: `${url}/a2a`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: A2A_PROTOCOL_VERSION }],
    provider: undefined,
    version: '1.0.0',
    capabilities: { streaming: false, pushNotifications: false, extensions: [], extendedAgentCard: false },
    securitySchemes: {},
    securityRequirements: [],
    defaultInputModes: ['text/plain'],
    defaultOutputModes: ['text/plain'],
    skills: [{ id: 'echo', name: 'echo', description: 'Repeat a message back word for word', tags: [], examples: [], inputModes: [], outputModes: [], securityRequirements: [] }],
    signatures: []
  }
  const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), executor)
  app.use(express.json())
  app.use(`/${AGENT_CARD_PATH}`, agentCardHandler({ agentCardProvider: handler }))
  app.use('/a2a', jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }))
  return { url, server }
}

describe('MCP tools and A2A agents as capabilities', function () {
  this.timeout(180_000)
  let a2a: { url: string, server: Server }
  let owner: NodeProcess
  let asker: NodeProcess

  before(async () => {
    a2a = await startA2aAgent()
    const home = await tempDir()
    await writeFile(join(home, 'config.json'), JSON.stringify({
      capabilities: [
        // descriptions taken from the MCP tool and the A2A skill
        { name: 'reverse-text', handler: { type: 'mcp', command: [process.execPath, MCP_SERVER], tool: 'reverse_text' } },
        { name: 'echo-agent', handler: { type: 'a2a', url: a2a.url, skill: 'echo' } }
      ]
    }))
    owner = await startNodeProcess(home)
    asker = await startNodeProcess(await tempDir(), ['--bootstrap', owner.run.multiaddrs[0]])
  })

  after(async () => {
    await Promise.all([owner, asker].filter(n => n != null).map(async n => n.stop()))
    await new Promise(resolve => a2a?.server.close(resolve))
    await removeTempDirs()
  })

  it('takes the descriptions from the tool and the agent card', async () => {
    const { json } = await api(owner.run, 'GET', '/v1/capabilities')
    const byName = Object.fromEntries(json.capabilities.map((c: any) => [c.name, c]))
    assert.match(byName['reverse-text'].description, /Reverse the order of the letters/)
    assert.match(byName['echo-agent'].description, /Repeat a message back/)
  })

  it('an MCP tool is found by meaning and answers through aistack ask on another node', async () => {
    const answer = await waitFor(async () => {
      const r = await runCli(['ask', 'spell this text backwards', '--input', 'hello', '--home', asker.home, '--json'])
      return r.code === 0 ? JSON.parse(r.stdout) : undefined
    }, { timeoutMs: 60_000, intervalMs: 500, what: 'an answer from the MCP tool' })
    assert.equal(answer.capability, 'reverse-text')
    assert.equal(answer.output, 'olleh')
    assert.equal(answer.peerId, owner.run.peerId)
  })

  it('an MCP tool\'s error result is the capability\'s error', async () => {
    const r = await api(owner.run, 'POST', '/v1/ask', { body: { query: 'spell this text backwards', input: 'fail' } })
    assert.notEqual(r.status, 200)
    assert.match(r.text, /asked to fail/)
  })

  it('an A2A agent answers through the network', async () => {
    const answer = await waitFor(async () => {
      const r = await api(asker.run, 'POST', '/v1/ask', { body: { query: 'repeat my message back word for word', input: 'hi there' } })
      return r.status === 200 ? r.json : undefined
    }, { timeoutMs: 60_000, intervalMs: 500, what: 'an answer from the A2A agent' })
    assert.equal(answer.capability, 'echo-agent')
    assert.equal(answer.output, 'echo: hi there')
  })

  it('maps a text input to a tool\'s only property, and refuses one it cannot map', () => {
    const tool = { name: 't', inputSchema: { type: 'object' as const, properties: { text: {} }, required: ['text'] } }
    assert.deepEqual(toolArguments(tool, 'abc'), { text: 'abc' })
    assert.deepEqual(toolArguments(tool, { text: 'x' }), { text: 'x' })
    const two = { name: 't2', inputSchema: { type: 'object' as const, properties: { a: {}, b: {} } } }
    assert.throws(() => toolArguments(two, 'abc'), { name: 'HandlerInputError' })
  })
})
