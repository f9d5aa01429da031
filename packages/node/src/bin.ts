#!/usr/bin/env node
import { main } from './cli/main.js'

main(process.argv.slice(2)).then(code => {
  process.exitCode = code
}, err => {
  process.stderr.write(`aistack: ${String(err?.message ?? err).split('\n')[0]}${process.env.AISTACK_STACK === '1' ? `\n${String(err?.stack)}` : ''}\n`)
  process.exitCode = 1
})
