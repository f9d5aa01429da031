// The four floods of docs/security.md ("Floods measured on a node process") at full size against
// real `aistack start` processes: ASSIGN frames, tombstones, records and connections. Runs their
// test files with AISTACK_FLOOD_FULL=1 and prints each flood's figures (RSS, CPU, /healthz
// latency before, during and after), with the machine and its load average before and after.
// The limits each flood is held to are asserted by the tests; a failed limit fails this run.
//
//   npm run -s bench:floods -- [--only assign,tombstones,records,connections]
import { spawn } from 'node:child_process'
import { cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { benchArgs, failUsage } from './args.js'

const USAGE = `Usage: npm run -s bench:floods -- [--only assign,tombstones,records,connections]
Runs the floods at full size against aistack node processes and prints their figures.`
const FLOODS = {
  assign: { file: 'packages/node/dist/test/assign-flood.spec.js' },
  tombstones: { file: 'packages/node/dist/test/gossip-floods.spec.js', grep: 'tombstone flood' },
  records: { file: 'packages/node/dist/test/gossip-floods.spec.js', grep: 'record flood' },
  connections: { file: 'packages/node/dist/test/connection-limits.spec.js' }
}
const args = benchArgs(USAGE, { only: Object.keys(FLOODS).join(',') })
const chosen = args.only.split(',').map(s => s.trim()).filter(Boolean)
for (const name of chosen) if (FLOODS[name] == null) failUsage(`--only: unknown flood "${name}"`, USAGE)

const root = fileURLToPath(new URL('../..', import.meta.url))
const mocha = fileURLToPath(new URL('../../node_modules/mocha/bin/mocha.js', import.meta.url))

/** runs one flood's test; resolves to its output and exit status */
async function run (name) {
  const { file, grep } = FLOODS[name]
  const argv = [mocha, '--no-config', '--timeout', '600000', '--exit', ...(grep != null ? ['--grep', grep] : []), file]
  const child = spawn(process.execPath, argv, { cwd: root, env: { ...process.env, AISTACK_FLOOD_FULL: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', d => { out += String(d) })
  child.stderr.on('data', d => { out += String(d) })
  const code = await new Promise(resolve => child.once('exit', resolve))
  return { out, code }
}

const load = () => loadavg().map(l => l.toFixed(1)).join(' ')
console.log(`machine: ${cpus().length} vCPU (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}`)
console.log(`load average before: ${load()}`)
let failed = 0
for (const name of chosen) {
  const t0 = Date.now()
  const { out, code } = await run(name)
  // the figures are the lines the tests print: a title line and indented lines under it
  const figures = out.split('\n').filter(l => /flood|RSS|healthz|CPU|stored|dropped/.test(l) && !/^\s*(✔|\d+\))/.test(l))
  console.log(`\n== ${name} (${((Date.now() - t0) / 1000).toFixed(0)} s, ${code === 0 ? 'limits held' : 'FAILED'})`)
  console.log(figures.join('\n'))
  if (code !== 0) {
    failed++
    console.log(out.split('\n').filter(l => /Error|expected|failing/.test(l)).slice(0, 10).join('\n'))
  }
}
console.log(`\nload average after: ${load()}`)
process.exit(failed > 0 ? 1 : 0)
