#!/usr/bin/env node
import { main } from './cli/main.js'

main(process.argv.slice(2)).then(code => {
  process.exitCode = code
}, err => {
  process.stderr.write(`aistack: ${String(err?.stack ?? err)}\n`)
  process.exitCode = 1
})
