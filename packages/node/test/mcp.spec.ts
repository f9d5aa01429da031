import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { toolNameFor } from '../src/gateways/mcp.js'
import { BIN, api, removeTempDirs, runCli, startNodeProcess, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'

/** An exec capability that upper-cases its input */
function shout (name = 'shout-text'): unknown {
  const script = 'let s=\'\';process.stdin.on(\'data\',d=>s+=d).on(\'end\',()=>process.stdout.write(s.toUpperCase()))'
  return {
    name,
    description: 'Make a text upper case, in capital letters',
    examples: ['make this text upper case', 'shout this'],
    handler: { type: 'exec', command: [process.execPath, '-e', script], timeoutMs: 10_000 }
  }
}

function textOf (result: any): string {
  return (result.content as any[]).filter(c => c.type === 'text').map(c => c.text).join('')
}

describe('MCP gateway: the network as one MCP server', function () {
  this.timeout(180_000)
  let server: NodeProcess
  let client: NodeProcess

  before(async () => {
    const home = await tempDir()
    await writeFile(join(home, 'config.json'), JSON.stringify({ capabilities: [shout()] }))
    server = await startNodeProcess(home)
    client = await startNodeProcess(await tempDir(), ['--bootstrap', server.run.multiaddrs[0]])
    // a search brings the record into the client node's cache, whatever gossip did
    const known = await waitFor(async () => {
      const { json } = await api(client.run, 'GET', '/v1/capabilities/search?q=make%20this%20text%20upper%20case&k=3')
      if (!(json?.results ?? []).some((r: any) => r.name === 'shout-text')) return false
      return (await api(client.run, 'GET', '/v1/capabilities/network')).json
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'shout-text found by the client node' })
    assert.ok(known.capabilities.some((c: any) => c.name === 'shout-text' && c.peerId === server.run.peerId), JSON.stringify(known))
  })

  after(async () => {
    await Promise.all([server, client].filter(n => n != null).map(async n => n.stop()))
    await removeTempDirs()
  })

  it('names tools after capabilities within MCP\'s tool-name alphabet, without collisions', () => {
    const taken = new Set(['ask'])
    assert.equal(toolNameFor('translate.fr:v2', taken), 'translate_fr_v2')
    assert.equal(toolNameFor('ask', taken), 'ask_2')
    taken.add('ask_2')
    assert.equal(toolNameFor('ask', taken), 'ask_3')
  })

  it('over stdio (`aistack mcp`): lists the tools and answers ask from a capability on another node', async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'mcp', '--home', client.home], stderr: 'pipe' })
    const mcp = new Client({ name: 'test', version: '1.0.0' })
    await mcp.connect(transport)
    try {
      const { tools } = await mcp.listTools()
      const names = tools.map(t => t.name)
      for (const name of ['find_capabilities', 'ask', 'submit_task', 'get_task', 'shout-text']) assert.ok(names.includes(name), `${name} in ${names.join(', ')}`)
      const capTool = tools.find(t => t.name === 'shout-text')
      assert.match(capTool?.description ?? '', /upper case/)
      assert.deepEqual((capTool?.inputSchema as any).required, ['input'])

      const answer = await mcp.callTool({ name: 'ask', arguments: { query: 'make this text upper case', input: 'hello agents' } })
      assert.notEqual(answer.isError, true, textOf(answer))
      assert.equal(textOf(answer), 'HELLO AGENTS')
      assert.equal((answer.structuredContent as any).peerId, server.run.peerId)

      const found = await mcp.callTool({ name: 'find_capabilities', arguments: { query: 'capital letters', k: 3 } })
      assert.match(textOf(found), /shout-text/)

      const viaTool = await mcp.callTool({ name: 'shout-text', arguments: { input: 'by name' } })
      assert.equal(textOf(viaTool), 'BY NAME')

      const submitted = await mcp.callTool({ name: 'submit_task', arguments: { capability: 'shout-text', input: 'queued' } })
      const id = (submitted.structuredContent as any).id as string
      assert.ok(typeof id === 'string' && id.length > 0)
      const done = await waitFor(async () => {
        const got = await mcp.callTool({ name: 'get_task', arguments: { id } })
        return (got.structuredContent as any).task.state === 'completed' ? got : undefined
      }, { timeoutMs: 30_000, intervalMs: 100, what: 'the submitted task to complete' })
      assert.equal(textOf(done), 'QUEUED')

      // a request no capability is near enough to: an error result with the reason, not a crash
      const none = await mcp.callTool({ name: 'ask', arguments: { query: 'zzqx vlorp quantum kumquat' } })
      assert.equal(none.isError, true)
      assert.match(textOf(none), /ask failed/)

      // arguments of the wrong shape: the protocol's own error
      await assert.rejects(mcp.callTool({ name: 'find_capabilities', arguments: { query: 7 } }), /query must be/)
    } finally {
      await mcp.close()
    }
  })

  it('over Streamable HTTP at /mcp: 401 without the token; with it, tools and list_changed when a capability is added', async () => {
    const noToken = await fetch(`${client.run.api.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
    })
    assert.equal(noToken.status, 401)

    const transport = new StreamableHTTPClientTransport(new URL(`${client.run.api.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${client.run.api.token}` } }
    })
    const mcp = new Client({ name: 'test-http', version: '1.0.0' })
    let changed = 0
    mcp.setNotificationHandler(ToolListChangedNotificationSchema, () => { changed++ })
    await mcp.connect(transport)
    try {
      const before = (await mcp.listTools()).tools.map(t => t.name)
      assert.ok(before.includes('shout-text'))
      const answer = await mcp.callTool({ name: 'ask', arguments: { query: 'make this text upper case', input: 'over http' } })
      assert.equal(textOf(answer), 'OVER HTTP')

      // a capability added at run time on the client node reaches the session as list_changed
      const added = await api(client.run, 'POST', '/v1/capabilities', { body: shout('shout-again') })
      assert.equal(added.status, 201, added.text)
      await waitFor(() => changed > 0, { timeoutMs: 30_000, intervalMs: 100, what: 'notifications/tools/list_changed' })
      const after = (await mcp.listTools()).tools.map(t => t.name)
      assert.ok(after.includes('shout-again'), after.join(', '))
    } finally {
      await transport.terminateSession().catch(() => {})
      await mcp.close()
    }
  })

  it('`aistack mcp` keeps serving when the node restarts on its home with a new address and token', async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'mcp', '--home', client.home], stderr: 'pipe' })
    const mcp = new Client({ name: 'test-restart', version: '1.0.0' })
    await mcp.connect(transport)
    try {
      const before = await mcp.callTool({ name: 'find_capabilities', arguments: { query: 'capital letters' } })
      assert.notEqual(before.isError, true, textOf(before))
      await client.stop()
      client = await startNodeProcess(client.home, ['--bootstrap', server.run.multiaddrs[0]])
      const after = await mcp.callTool({ name: 'get_task', arguments: { id: 'no-such-task' } })
      // answered by the restarted node (a 404 for the id), not "cannot reach the node"
      assert.equal(after.isError, true)
      assert.match(textOf(after), /get_task failed: .*no-such-task/)
    } finally {
      await mcp.close()
    }
  })

  it('`aistack mcp` with no node running says in one line how to start one', async () => {
    const home = await tempDir()
    const r = await runCli(['mcp', '--home', home])
    assert.equal(r.code, 1)
    assert.equal(r.stdout, '')
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, r.stderr)
    assert.match(lines[0], /aistack start --home/)
  })
})
