import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { readRunFile } from '../src/run-file.js'
import { BIN, removeTempDirs, tempDir, waitFor } from './helpers.js'
import type { ChildProcess } from 'node:child_process'

/**
 * Separate hosts as network namespaces: a bridge namespace and one namespace per host, joined by
 * veth pairs, on a private subnet that exists only inside them. The test creates and removes them.
 */
const tag = `as${process.pid % 100000}`
const bridgeNs = `${tag}br`
const hostNs = (i: number): string => `${tag}h${i}`
const hostIp = (i: number): string => `10.211.0.${10 + i}`

function ip (...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' })
}

function canUseNetns (): boolean {
  if (process.getuid?.() !== 0) return false
  try {
    ip('netns', 'add', `${tag}probe`)
    ip('netns', 'del', `${tag}probe`)
    return true
  } catch {
    return false
  }
}

function createHosts (count: number): void {
  ip('netns', 'add', bridgeNs)
  ip('-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge')
  ip('-n', bridgeNs, 'link', 'set', 'br0', 'up')
  for (let i = 0; i < count; i++) {
    const ns = hostNs(i)
    ip('netns', 'add', ns)
    ip('link', 'add', `${tag}v${i}`, 'type', 'veth', 'peer', 'name', `${tag}b${i}`)
    ip('link', 'set', `${tag}v${i}`, 'netns', ns, 'name', 'eth0')
    ip('link', 'set', `${tag}b${i}`, 'netns', bridgeNs)
    ip('-n', bridgeNs, 'link', 'set', `${tag}b${i}`, 'master', 'br0', 'up')
    ip('-n', ns, 'addr', 'add', `${hostIp(i)}/24`, 'dev', 'eth0')
    ip('-n', ns, 'link', 'set', 'eth0', 'up')
    ip('-n', ns, 'link', 'set', 'lo', 'up')
  }
}

function removeHosts (count: number): void {
  for (const ns of [bridgeNs, ...Array.from({ length: count }, (_, i) => hostNs(i))]) {
    try { ip('netns', 'del', ns) } catch {}
  }
}

/** Runs the CLI inside a host's namespace and returns its stdout. */
function cliIn (i: number, args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', hostNs(i), process.execPath, BIN, ...args], { encoding: 'utf8' })
}

describe('nodes on separate hosts (network namespaces)', function () {
  this.timeout(120_000)
  const count = 3
  const children: ChildProcess[] = []

  before(function () {
    if (!canUseNetns()) this.skip()
  })

  after(async () => {
    for (const child of children) child.kill('SIGTERM')
    await Promise.all(children.map(async c => {
      if (c.exitCode != null || c.signalCode != null) return
      await new Promise(resolve => {
        const timer = setTimeout(() => { c.kill('SIGKILL') }, 15_000)
        c.once('exit', () => { clearTimeout(timer); resolve(undefined) })
      })
    }))
    removeHosts(count)
    await removeTempDirs()
  })

  it('three hosts join through the first and see each other on their own addresses', async () => {
    createHosts(count)
    const homes: string[] = []
    let bootstrap: string | undefined
    for (let i = 0; i < count; i++) {
      const home = await tempDir()
      homes.push(home)
      const args = ['netns', 'exec', hostNs(i), process.execPath, BIN, 'start', '--home', home,
        '--listen', `/ip4/${hostIp(i)}/tcp/4011`, '--api', '127.0.0.1:0']
      if (bootstrap != null) args.push('--bootstrap', bootstrap)
      const child = spawn('ip', args, { stdio: 'ignore' })
      children.push(child)
      const run = await waitFor(async () => readRunFile(home), { what: `node on ${hostNs(i)}` })
      bootstrap ??= run.multiaddrs.find(a => a.startsWith(`/ip4/${hostIp(0)}/`))
      assert.ok(bootstrap != null, 'the first node listens on its host address')
    }
    for (let i = 0; i < count; i++) {
      const others = [0, 1, 2].filter(j => j !== i).map(hostIp)
      await waitFor(() => {
        const { peers } = JSON.parse(cliIn(i, ['peers', '--home', homes[i], '--json']))
        const addrs: string[] = peers.map((p: any) => p.multiaddr)
        return others.every(o => addrs.some(a => a.startsWith(`/ip4/${o}/tcp/`)))
      }, { timeoutMs: 60_000, intervalMs: 500, what: `host ${i} connected to the other hosts` })
    }
  })
})
