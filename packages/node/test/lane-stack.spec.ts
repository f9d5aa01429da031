import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { NOISE_PROTOCOL, PQ_NOISE_PROTOCOL } from '@aistack/handshake'
import { createLibp2p } from 'libp2p'
import { validateConfig } from '../src/config.js'
import laneStack, { lanePqMode } from '../src/lane-stack.js'
import { LANE_STACK } from '../src/node.js'
import type { PqMode } from '@aistack/handshake'
import type { Libp2p } from '@libp2p/interface'

describe('sembatch bulk lane: config and stack', function () {
  this.timeout(60_000)

  describe('the sembatch section of config.json', () => {
    it('defaults to the lane on a port the system picks, and merges a partial section over that', () => {
      assert.deepEqual(validateConfig({}).sembatch, { bulkLane: true, lanePort: 0 })
      assert.deepEqual(validateConfig({ sembatch: { lanePort: 4012 } }).sembatch, { bulkLane: true, lanePort: 4012 })
      assert.deepEqual(validateConfig({ sembatch: { bulkLane: false, $comment: 'no lane' } }).sembatch, { bulkLane: false, lanePort: 0 })
    })

    it('refuses bad values and unknown fields with a message naming the field', () => {
      for (const lanePort of [65536, -1, 4012.5, '4012', null]) {
        assert.throws(() => validateConfig({ sembatch: { lanePort } }, 'config.json'), (err: Error) => {
          assert.equal(err.name, 'ConfigError')
          assert.equal(err.message, 'config.json: sembatch.lanePort must be a port number from 0 to 65535')
          return true
        })
      }
      assert.throws(() => validateConfig({ sembatch: { bulkLane: 'yes' } }), /config: sembatch\.bulkLane must be true or false/)
      assert.throws(() => validateConfig({ sembatch: { port: 4012 } }), /sembatch\.port is not a known field/)
      assert.throws(() => validateConfig({ sembatch: [] }), /sembatch must be an object/)
      assert.throws(() => validateConfig({ sembatch: true }), /sembatch must be an object/)
    })
  })

  describe('the lane stack module', () => {
    const nodes: Libp2p[] = []

    /** a bare libp2p as the lane worker builds one, from the lane stack of a node in `pq` mode */
    async function laneNode (pq: PqMode): Promise<Libp2p> {
      const node = await createLibp2p({
        ...laneStack({ pq }),
        addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
        connectionMonitor: { enabled: false }
      })
      nodes.push(node)
      return node
    }

    /** the connection encrypter `from` and `to` agree on, or the dial's error */
    async function handshake (from: PqMode, to: PqMode): Promise<string> {
      const a = await laneNode(from)
      const b = await laneNode(to)
      try {
        const connection = await a.dial(b.getMultiaddrs()[0], { signal: AbortSignal.timeout(10_000) })
        return connection.encryption ?? 'none'
      } catch (err: any) {
        return `failed: ${String(err.name)}: ${String(err.message)}`
      }
    }

    afterEach(async () => {
      await Promise.all(nodes.splice(0).map(async n => n.stop()))
    })

    it('is the compiled file beside node.js, whose default export the worker calls', async () => {
      assert.ok(LANE_STACK.startsWith('file:'))
      const file = fileURLToPath(LANE_STACK)
      assert.match(file, /[/\\]dist[/\\]src[/\\]lane-stack\.js$/)
      assert.ok(existsSync(file), `${file} exists`)
      const mod = await import(LANE_STACK)
      const stack = mod.default({ pq: 'required' })
      assert.equal(stack.transports.length, 1)
      assert.equal(stack.connectionEncrypters.length, 1)
      assert.equal(stack.streamMuxers.length, 1)
    })

    it('offers the hybrid only unless the node is in off mode: no lane libp2p can be talked down to /noise', () => {
      assert.equal(lanePqMode('preferred'), 'required')
      assert.equal(lanePqMode('required'), 'required')
      assert.equal(lanePqMode('off'), 'off')
    })

    it('lanes of preferred and required nodes handshake with the hybrid', async () => {
      assert.equal(await handshake('preferred', 'preferred'), PQ_NOISE_PROTOCOL)
      assert.equal(await handshake('preferred', 'required'), PQ_NOISE_PROTOCOL)
    })

    it('a preferred node\'s lane refuses a peer that offers only /noise, both ways; off lanes use /noise', async () => {
      assert.equal(await handshake('off', 'preferred'), 'failed: EncryptionFailedError: Protocol selection failed - could not negotiate /noise')
      assert.equal(await handshake('preferred', 'off'), `failed: EncryptionFailedError: Protocol selection failed - could not negotiate ${PQ_NOISE_PROTOCOL}`)
      assert.equal(await handshake('off', 'off'), NOISE_PROTOCOL)
    })
  })
})
