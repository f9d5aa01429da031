#!/usr/bin/env node
// Prints the known-answer outputs of Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256
// for inputs derived from one base byte (see docs/protocols/handshake.md):
//   npm run -s vectors -- --base 0x10
import { parseArgs } from 'node:util'
import { runVector } from '../protocols/handshake/dist/src/index.js'

const { values } = parseArgs({
  options: { base: { type: 'string', default: '0x10' } }
})
const base = Number(values.base)
if (!Number.isInteger(base) || base < 0 || base > 0xf9) {
  process.stderr.write(`invalid --base ${values.base}: expected a byte from 0x00 to 0xf9\n`)
  process.exit(2)
}
process.stdout.write(JSON.stringify(runVector(base)) + '\n')
