#!/usr/bin/env node
import { main } from './cli/main.js'
import { execForNode } from './runtime.js'

const fail = (err: any): void => {
  process.stderr.write(`aistack: ${String(err?.message ?? err).split('\n')[0]}${process.env.AISTACK_STACK === '1' ? `\n${String(err?.stack)}` : ''}\n`)
  // as main's: 2 for a usage error
  process.exitCode = err?.name === 'UsageError' ? 2 : 1
}

try {
  // `aistack start` runs V8 with --single-threaded-gc: this replaces the process (same pid) before it loads the node
  execForNode()
  main(process.argv.slice(2)).then(code => {
    process.exitCode = code
  }, fail)
} catch (err) {
  fail(err)
}
