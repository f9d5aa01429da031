// Fuzzes every decoder of wire input with seeded random and mutated frames and reports, per
// decoder, how many inputs ran, were accepted or rejected cleanly, failed (a crash-like error,
// a non-Error throw or an input slower than --slow-ms), the slowest input and the heap
// high-water mark. Exit status 1 when any decoder failed. The targets are in fuzz-targets.js.
//
//   npm run fuzz -- [--count 100000] [--seed 1] [--max-bytes 4096] [--slow-ms 1000] [--only NAME]
import { benchArgs } from './bench/args.js'
import { fuzzTarget, fuzzTargets } from './fuzz-targets.js'

const USAGE = `Usage: npm run fuzz -- [--count 100000] [--seed 1] [--max-bytes 4096] [--slow-ms 1000] [--only NAME]
Drives each wire decoder (handshake payload, hybrid transport frames, signed envelopes, anycast
and task protobuf messages, the task stream's frame decoder) with --count seeded inputs: a third
random bytes of up to --max-bytes, the rest mutations of valid messages. --only runs the
decoders whose name contains NAME. Exits 1 if any decoder crashed, threw a non-Error or was slow.`

const args = benchArgs(USAGE, { count: 100_000, seed: 1, 'max-bytes': 4096, 'slow-ms': 1000, only: '' })
const targets = (await fuzzTargets()).filter(t => args.only === '' || t.name.includes(args.only))
if (targets.length === 0) {
  console.error(`no decoder matches --only "${args.only}"\n${USAGE}`)
  process.exit(2)
}

console.log(`fuzz: ${args.count} inputs per decoder, seed ${args.seed}, random inputs up to ${args['max-bytes']} bytes, node ${process.version}`)
console.log('decoder                        inputs  accepted  rejected  failures  slowest ms  max heap MiB')
let failed = 0
const t0 = performance.now()
for (const [i, target] of targets.entries()) {
  const r = await fuzzTarget(target, { count: args.count, seed: args.seed + i, maxBytes: args['max-bytes'], slowMs: args['slow-ms'] })
  failed += r.failures
  console.log(`${r.name.padEnd(30)} ${String(r.count).padStart(6)}  ${String(r.accepted).padStart(8)}  ${String(r.rejected).padStart(8)}  ${String(r.failures).padStart(8)}  ${String(r.slowestMs).padStart(10)}  ${String(r.maxHeapMiB).padStart(12)}`)
  for (const e of r.examples) console.log(`  failure: ${e.failure}\n    input: ${e.input}`)
}
console.log(`${targets.length} decoders, ${failed} failures, ${((performance.now() - t0) / 1000).toFixed(1)} s`)
process.exitCode = failed > 0 ? 1 : 0
